"""JobStore: a thin typed repository over aiosqlite (WAL). SQL lives in module constants.

The schema's migrations (bot/migrations.py) are keyed by `PRAGMA user_version` and applied under the
database's write lock, so two processes starting on a fresh file migrate it once. Several processes
may share the file (a CLI beside `run`): taking work (a queued job, a due poll, a stale submit) is one
conditional UPDATE that only one of them wins, and "database is locked" is waited out, never raised.
Read-modify-write operations inside one process hold one lock, so a webhook and the poller applying
snapshots to the same job cannot interleave. The process has one connection, so every statement takes
that lock too (unless its task is the one holding it): a statement of another task run while a
transaction is open would be part of it, committed with it or rolled back with it (a claim undone
after its submit went out would be sent again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.domain import TERMINAL, Job, JobState, Owner, Placement, can_transition, merge_snapshot
from bot.migrations import MIGRATIONS
from providers.base import Action, GenerationRequest, TaskResult, TaskSnapshot

log = logging.getLogger(__name__)
R = TypeVar("R")
_LOCK_RETRIES = 12  # on top of busy_timeout (5 s) each: a minute of another process's write lock


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration script, one by one."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text

_COLUMNS = (
    "id", "kind", "parent_id", "action_index", "provider", "provider_task_id", "request", "state",
    "progress", "preview_url", "result", "actions", "provider_data", "error", "owner_platform",
    "owner_id", "owner_name", "chat_platform", "chat_id", "message_id", "thread_id", "created_at",
    "updated_at", "deadline", "next_poll_at", "poll_failures", "submit_attempts", "tried_providers",
    "submit_key", "submit_started", "claimed_until", "origin", "reply_to",
)  # fmt: skip
_PLACEMENT = ("chat_platform", "chat_id", "message_id", "thread_id", "reply_to")
#: What `save` writes: never the identity, never the placement (only `place` sets where a job is shown),
#: never the claim (only the claim statements take and hand over a submit).
_MUTABLE = tuple(
    c for c in _COLUMNS
    if c not in ("id", "kind", "parent_id", "action_index", "created_at", "origin", "submit_key", *_PLACEMENT)
)  # fmt: skip

INSERT_JOB = f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
INSERT_NEW = INSERT_JOB + " ON CONFLICT DO NOTHING"
_TERMINAL_SQL = f"({', '.join(repr(s.value) for s in JobState if s in TERMINAL)})"
_RETURNING = f" RETURNING {', '.join(_COLUMNS)}"
_AT_PROVIDER = "('submitting', 'submitted', 'running')"
#: Work limited to jobs asked for on one platform (the two parameters: that platform, twice), or all.
_ONLY = "(? IS NULL OR owner_platform = ?)"
# A write from a stale copy must not undo a newer one: a terminal row is final, a state only moves
# forwards and progress never drops (the poller, webhooks and commands all write the same rows).
_SETS = ", ".join("progress = MAX(progress, ?)" if c == "progress" else f"{c} = ?" for c in _MUTABLE)
UPDATE_JOB = (
    f"UPDATE jobs SET {_SETS}"
    f" WHERE id = ? AND state NOT IN {_TERMINAL_SQL} AND state IN (SELECT value FROM json_each(?))"
    f" RETURNING {', '.join(_PLACEMENT)}, progress"
)
SET_PLACEMENT = f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in _PLACEMENT)} WHERE id = ?"
GET_BY_ORIGIN = f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE origin = ?"
# Claims: one statement each, so of several processes only one takes a job. A queued job is claimed
# with a fresh attempt key and a lease, and only while the provider has room (counted in the same
# statement, so two processes can't both fill the last slot).
CLAIM_QUEUED = (
    "UPDATE jobs SET state = 'submitting', submit_key = id || '-' || lower(hex(randomblob(4))),"
    " submit_started = ?, claimed_until = ?, updated_at = ?"
    " WHERE id IN (SELECT id FROM jobs WHERE state = 'queued' AND provider = ?"
    f" AND (next_poll_at IS NULL OR next_poll_at <= ?) AND {_ONLY} ORDER BY created_at, rowid"
    f" LIMIT max(0, ? - (SELECT COUNT(*) FROM jobs WHERE provider = ? AND state IN {_AT_PROVIDER})))"
    " AND state = 'queued'" + _RETURNING
)
#: A submit whose lease ran out (its process died, or its outcome is unknown): one process reconciles.
CLAIM_STALE_SUBMITS = (
    "UPDATE jobs SET claimed_until = ? WHERE id IN (SELECT id FROM jobs WHERE state = 'submitting'"
    f" AND claimed_until <= ? AND {_ONLY} ORDER BY claimed_until LIMIT ?)"
    " AND state = 'submitting' AND claimed_until <= ?"
    + _RETURNING
)
#: Only the holder of the attempt records its task (a cancel or a reconcile elsewhere may have won).
RECORD_SUBMIT = (
    "UPDATE jobs SET state = 'submitted', provider_task_id = ?, next_poll_at = ?, poll_failures = 0,"
    " claimed_until = NULL, updated_at = ? WHERE id = ? AND state = 'submitting' AND submit_key = ?"
    + _RETURNING
)
#: Hand a claimed submit back to the queue (it is known not to have reached the provider).
RELEASE_SUBMIT = (
    "UPDATE jobs SET state = 'queued', provider = ?, tried_providers = ?, submit_attempts = ?,"
    " next_poll_at = ?, claimed_until = NULL, updated_at = ?"
    " WHERE id = ? AND state = 'submitting' AND submit_key = ?" + _RETURNING
)
#: Keep the claim but look again at `claimed_until` (an unknown outcome, to be reconciled then).
EXTEND_CLAIM = "UPDATE jobs SET claimed_until = ? WHERE id = ? AND state = 'submitting' AND submit_key = ?"
#: Due polls are taken by pushing their next poll past a lease; the poll sets the real next time.
CLAIM_POLLS = (
    "UPDATE jobs SET next_poll_at = ? WHERE id IN (SELECT value FROM json_each(?))"
    " AND state IN ('submitted', 'running') AND next_poll_at <= ? RETURNING id"
)
UNREPLIED = (
    f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE chat_platform = ? AND message_id IS NULL"
    " ORDER BY created_at LIMIT ?"
)
UNPLACE = (
    "UPDATE jobs SET chat_platform = NULL, chat_id = NULL, thread_id = NULL, reply_to = NULL WHERE id = ?"
)
INBOX_ADD = (
    "INSERT INTO inbox (source, key, seq, payload, received_at) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT DO NOTHING"
)
INBOX_PENDING = (
    "SELECT key, seq, payload FROM inbox WHERE source = ? AND done_at IS NULL ORDER BY seq LIMIT ?"
)
INBOX_DONE = "UPDATE inbox SET done_at = ? WHERE source = ? AND key = ?"
INBOX_LAST = "SELECT MAX(seq) FROM inbox WHERE source = ?"
INBOX_PRUNE = (
    "DELETE FROM inbox WHERE done_at < ?"
    " AND seq < (SELECT MAX(seq) FROM inbox AS newest WHERE newest.source = inbox.source)"
)
SELECT = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
GET_JOB = SELECT + " WHERE id = ?"
GET_BY_TASK = SELECT + " WHERE provider = ? AND provider_task_id = ?"
GET_BY_MESSAGE = SELECT + " WHERE chat_platform = ? AND chat_id = ? AND message_id = ?"
GET_ACTIVE_CHILD = (
    SELECT + " WHERE parent_id = ? AND kind = ? AND action_index = ?"
    " AND state NOT IN ('failed', 'cancelled', 'timed_out')"
)
DUE = (
    SELECT + f" WHERE state IN ('submitted', 'running') AND next_poll_at <= ? AND {_ONLY}"
    " ORDER BY next_poll_at LIMIT ?"
)
QUEUED = (
    SELECT + " WHERE state = 'queued' AND provider = ? AND (next_poll_at IS NULL OR next_poll_at <= ?)"
    " ORDER BY created_at, rowid LIMIT ?"
)
QUEUED_PROVIDERS = "SELECT DISTINCT provider FROM jobs WHERE state = 'queued'"
QUEUE_POSITION = (
    "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND provider = ?"
    " AND (created_at < ? OR (created_at = ? AND rowid <= (SELECT rowid FROM jobs WHERE id = ?)))"
)
ACTIVE_COUNT = f"SELECT COUNT(*) FROM jobs WHERE provider = ? AND state IN {_AT_PROVIDER}"
COUNT_BY_STATE = "SELECT provider, state, COUNT(*) FROM jobs GROUP BY provider, state"
EXPIRED = SELECT + f" WHERE state NOT IN {_TERMINAL_SQL} AND deadline <= ? AND {_ONLY}"
LIVE_ELSEWHERE = (
    SELECT + " WHERE state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')"
    " AND provider NOT IN (SELECT value FROM json_each(?))"
)
NEXT_DUE = (
    "SELECT MIN(t) FROM (SELECT MIN(next_poll_at) AS t FROM jobs WHERE state IN ('submitted', 'running')"
    " UNION ALL SELECT MIN(claimed_until) FROM jobs WHERE state = 'submitting'"
    " UNION ALL SELECT MIN(deadline) FROM jobs"
    " WHERE state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out'))"
)
RECENT = SELECT + " ORDER BY created_at DESC, rowid DESC LIMIT ?"
RECENT_BY_OWNER = (
    SELECT + " WHERE owner_platform = ? AND owner_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?"
)
PUT_CALLBACK_SECRET = "INSERT INTO callback_secrets (job_id, secret) VALUES (?, ?) ON CONFLICT DO NOTHING"
GET_CALLBACK_SECRET = "SELECT secret FROM callback_secrets WHERE job_id = ?"
GET_CALLBACK_TARGET = (
    f"SELECT c.secret, {', '.join(f'j.{c}' for c in _COLUMNS)} FROM callback_secrets c"
    " JOIN jobs j ON j.id = c.job_id WHERE c.job_id = ?"
)
UNDELIVERED = (
    SELECT + " WHERE chat_platform = ? AND message_id IS NOT NULL AND delivered_state IS NULL"
    f" AND state IN {_TERMINAL_SQL} AND updated_at >= ? ORDER BY updated_at LIMIT ?"
)
MARK_DELIVERED = "UPDATE jobs SET delivered_state = ? WHERE id = ?"
GET_SETTINGS = "SELECT key, value FROM user_settings WHERE platform = ? AND user_id = ?"
PUT_SETTING = (
    "INSERT INTO user_settings (platform, user_id, key, value) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (platform, user_id, key) DO UPDATE SET value = excluded.value"
)


def _row_values(job: Job) -> dict[str, Any]:
    placement = job.placement
    return {
        "id": job.id,
        "kind": job.kind.value,
        "parent_id": job.parent_id,
        "action_index": job.index,
        "provider": job.provider,
        "provider_task_id": job.provider_task_id,
        "request": job.request.model_dump_json(),
        "state": job.state.value,
        "progress": job.progress,
        "preview_url": job.preview_url,
        "result": job.result.model_dump_json() if job.result else None,
        "actions": json.dumps(job.actions),
        "provider_data": json.dumps(job.provider_data),
        "error": job.error,
        "owner_platform": job.owner.platform,
        "owner_id": job.owner.user_id,
        "owner_name": job.owner.name,
        "chat_platform": placement.platform if placement else None,
        "chat_id": placement.chat_id if placement else None,
        "message_id": placement.message_id if placement else None,
        "thread_id": placement.thread_id if placement else None,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "deadline": job.deadline,
        "next_poll_at": job.next_poll_at,
        "poll_failures": job.poll_failures,
        "submit_attempts": job.submit_attempts,
        "tried_providers": json.dumps(job.tried_providers),
        "submit_key": job.submit_key,
        "submit_started": job.submit_started,
        "claimed_until": job.claimed_until,
        "origin": job.origin,
        "reply_to": placement.reply_to if placement else None,
    }


def _placement(platform: str | None, chat_id: str, message_id: str | None, thread_id: str | None,
               reply_to: str | None) -> Placement | None:
    if not platform:
        return None
    return Placement(platform=platform, chat_id=chat_id, message_id=message_id, thread_id=thread_id,
                     reply_to=reply_to)


def _from_row(row: Sequence[Any]) -> Job:
    r = dict(zip(_COLUMNS, row, strict=True))
    placement = _placement(*(r[c] for c in _PLACEMENT))
    return Job(
        id=r["id"],
        kind=Action(r["kind"]),
        parent_id=r["parent_id"],
        index=r["action_index"],
        provider=r["provider"],
        provider_task_id=r["provider_task_id"],
        request=GenerationRequest.model_validate_json(r["request"]),
        state=JobState(r["state"]),
        progress=r["progress"],
        preview_url=r["preview_url"],
        result=TaskResult.model_validate_json(r["result"]) if r["result"] else None,
        actions=json.loads(r["actions"]),
        provider_data=json.loads(r["provider_data"]),
        error=r["error"],
        owner=Owner(platform=r["owner_platform"], user_id=r["owner_id"], name=r["owner_name"]),
        placement=placement,
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        deadline=r["deadline"],
        next_poll_at=r["next_poll_at"],
        poll_failures=r["poll_failures"],
        submit_attempts=r["submit_attempts"],
        tried_providers=json.loads(r["tried_providers"]),
        submit_key=r["submit_key"],
        submit_started=r["submit_started"],
        claimed_until=r["claimed_until"],
        origin=r["origin"],
    )


class JobStore:
    """All job persistence. Methods take and return domain objects."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None  # the task inside `_exclusive`, if any

    @classmethod
    async def open(cls, path: Path | str) -> JobStore:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), isolation_level=None)
        store = cls(db)
        await store._retrying(db.execute, "PRAGMA busy_timeout=5000")
        await store._retrying(db.execute, "PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")  # durable across process kills in WAL mode
        await store._migrate()
        return store

    async def close(self) -> None:
        await self._db.close()

    @property
    def connection(self) -> aiosqlite.Connection:
        """The shared connection, for the small repositories beside this one (ledger, bans)."""
        return self._db

    async def ping(self) -> bool:
        """True when the database answers (for /healthz)."""
        return bool(await self._scalar("SELECT 1") == 1)

    async def active_child(self, parent_id: str, kind: Action, index: int) -> Job | None:
        """The live job of an earlier press of the same button, if there is one."""
        return await self._one(GET_ACTIVE_CHILD, (parent_id, kind.value, index))

    async def _migrate(self) -> None:
        """Bring the schema up to date under the write lock (BEGIN IMMEDIATE): a second process
        starting at the same moment waits, then finds the work done."""
        async with self.transaction():
            version = int(await self._scalar("PRAGMA user_version") or 0)
            if version > len(MIGRATIONS):
                raise RuntimeError(f"The database is at schema version {version}, newer than this version "
                                   f"of imagine-bot knows ({len(MIGRATIONS)}); upgrade imagine-bot.")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                # statement by statement: executescript would commit the open transaction first
                for statement in _statements(script):
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {number}")

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """The connection to this task alone for the block; re-entrant within the task holding it."""
        task = asyncio.current_task()
        if task is not None and self._holder is task:
            yield
            return
        async with self._lock:
            self._holder = task
            try:
                yield
            finally:
                self._holder = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One write transaction, taken at once (so it never fails half-way on a lock). Other tasks'
        statements wait for it to end instead of joining it."""
        async with self._exclusive():
            await self._retrying(self._db.execute, "BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    @staticmethod
    async def _retrying(call: Callable[..., Awaitable[R]], *args: Any) -> R:
        """`call(*args)`, waiting out another process's write lock beyond busy_timeout, with backoff."""
        for attempt in range(_LOCK_RETRIES):
            try:
                return await call(*args)
            except sqlite3.OperationalError as exc:
                if not _is_lock_error(exc) or attempt == _LOCK_RETRIES - 1:
                    raise
                log.info("database busy (%s); retrying", exc)
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    # execute_fetchall is one trip to aiosqlite's thread; execute + fetchone + close would be three
    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self._exclusive():
            return list(await self._retrying(self._db.execute_fetchall, sql, tuple(params)))

    async def _execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one write; returns the number of rows it changed."""
        async with self._exclusive():
            cursor = await self._retrying(self._db.execute, sql, tuple(params))
            return int(cursor.rowcount)

    async def _one(self, sql: str, params: Iterable[Any]) -> Job | None:
        rows = await self._rows(sql, params)
        return _from_row(rows[0]) if rows else None

    async def _many(self, sql: str, params: Iterable[Any]) -> list[Job]:
        return [_from_row(row) for row in await self._rows(sql, params)]

    async def _scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = await self._rows(sql, params)
        return rows[0][0] if rows else None

    # -- writes ----------------------------------------------------------------------------------

    async def insert(self, job: Job) -> tuple[Job, bool]:
        """Store a new job. A job with the `origin` of one already stored (the same platform event,
        processed again after a restart) is not stored twice: returns the stored one and False."""
        if await self._execute(INSERT_NEW, _row_values(job).values()) == 1:
            return job, True
        existing = await self._one(GET_BY_ORIGIN, (job.origin,)) if job.origin else None
        assert existing is not None, "a conflicting job must share the origin"
        return existing, False

    async def insert_child(self, job: Job) -> tuple[Job, bool]:
        """Insert an action's job unless the same (parent, action, index) is already live.

        Returns the job that represents the press and whether it is the new one.
        """
        if await self._execute(INSERT_NEW, _row_values(job).values()) == 1:
            return job, True
        existing = await self._one(GET_ACTIVE_CHILD, (job.parent_id, job.kind.value, job.index))
        assert existing is not None, "a conflicting live child must exist"
        return existing, False

    async def save(self, job: Job) -> Job | None:
        """Write a job's changes. Returns it as stored (with the stored placement and progress), or
        None when the write was refused because the stored job is terminal or further along."""
        values = _row_values(job)
        sources = json.dumps([s.value for s in JobState if s is job.state or can_transition(s, job.state)])
        rows = await self._rows(UPDATE_JOB, (*(values[c] for c in _MUTABLE), job.id, sources))
        if not rows:
            return None
        row = rows[0]
        return job.model_copy(update={"placement": _placement(*row[:5]), "progress": row[5]})

    async def place(self, job_id: str, placement: Placement) -> Job | None:
        """Record where a job is shown; returns the job as stored."""
        values = (placement.platform, placement.chat_id, placement.message_id, placement.thread_id,
                  placement.reply_to, job_id)
        await self._execute(SET_PLACEMENT, values)
        return await self.get(job_id)

    async def unplace(self, job_id: str) -> None:
        """The job's first reply can't be sent (the chat is gone): it is shown nowhere."""
        await self._execute(UNPLACE, (job_id,))

    async def unreplied(self, platform: str, limit: int = 500) -> list[Job]:
        """Jobs shown on `platform` whose first reply has no message yet (the reply outbox)."""
        return await self._many(UNREPLIED, (platform, limit))

    # -- claims ----------------------------------------------------------------------------------

    async def claim_queued(self, provider: str, now: float, lease: float, capacity: int,
                           platform: str | None = None) -> list[Job]:
        """Take the provider's oldest queued jobs (of `platform`'s owners, if given) that fit its
        `capacity` (counting every job live at it, in any process) for submitting: each comes back
        `submitting`, with a fresh attempt key."""
        params = (now, now + lease, now, provider, now, platform, platform, capacity, provider)
        return sorted(await self._many(CLAIM_QUEUED, params), key=lambda job: job.created_at)

    async def claim_stale_submits(self, now: float, lease: float, platform: str | None = None,
                                  limit: int = 100) -> list[Job]:
        """Take submits whose lease ran out (their process died, or their outcome is unknown)."""
        return await self._many(CLAIM_STALE_SUBMITS, (now + lease, now, platform, platform, limit, now))

    async def record_submit(self, job: Job, task_id: str, next_poll_at: float, now: float) -> Job | None:
        """The attempt `job.submit_key` created `task_id`: `submitted`. None if the attempt lost its
        claim meanwhile (the job was cancelled, or another process reconciled it)."""
        return await self._one(RECORD_SUBMIT, (task_id, next_poll_at, now, job.id, job.submit_key))

    async def release_submit(self, job: Job, retry_at: float | None, now: float) -> Job | None:
        """Back to `queued` (with `job`'s provider, tried list and attempts): its submit is known not to
        have reached the provider. None if the attempt lost its claim meanwhile."""
        params = (job.provider, json.dumps(job.tried_providers), job.submit_attempts, retry_at, now,
                  job.id, job.submit_key)  # fmt: skip
        return await self._one(RELEASE_SUBMIT, params)

    async def extend_claim(self, job: Job, until: float) -> None:
        await self._execute(EXTEND_CLAIM, (until, job.id, job.submit_key))

    async def claim_polls(self, jobs: Sequence[Job], horizon: float, lease_end: float) -> set[str]:
        """Take the polls of `jobs` still due by `horizon` (another process may have taken some)."""
        if not jobs:
            return set()
        rows = await self._rows(CLAIM_POLLS, (lease_end, json.dumps([job.id for job in jobs]), horizon))
        return {str(row[0]) for row in rows}

    # -- the inbox -------------------------------------------------------------------------------

    async def inbox_add(self, source: str, entries: Sequence[tuple[str, int, str]], now: float) -> None:
        """Commit platform events `(key, seq, payload)` before they are acknowledged (one transaction;
        an event seen before is kept as it was)."""
        async with self.transaction():
            for key, seq, payload in entries:
                await self._db.execute(INBOX_ADD, (source, key, seq, payload, now))

    async def inbox_pending(self, source: str, limit: int = 1000) -> list[tuple[str, int, str]]:
        """Events of `source` not yet processed, oldest first."""
        return [(str(k), int(q), str(p)) for k, q, p in await self._rows(INBOX_PENDING, (source, limit))]

    async def inbox_done(self, source: str, key: str, now: float) -> None:
        await self._execute(INBOX_DONE, (now, source, key))

    async def inbox_last(self, source: str) -> int | None:
        """The highest sequence number seen from `source` (Telegram: the last update id committed)."""
        value = await self._scalar(INBOX_LAST, (source,))
        return int(value) if value is not None else None

    async def inbox_prune(self, before: float) -> None:
        """Forget events processed before `before` (the newest of each source stays: its seq)."""
        await self._execute(INBOX_PRUNE, (before,))



    async def apply_snapshot(
        self, provider: str, snapshot: TaskSnapshot, now: float, next_poll_at: float | None = None
    ) -> Job | None:
        """Merge a provider report into its job. Returns the updated job, or None if nothing changed
        (unknown task, duplicate, out-of-order or regressing report). `next_poll_at`, when given,
        is stored for a job that is still running either way."""
        async with self._exclusive():
            job = await self._one(GET_BY_TASK, (provider, snapshot.task_id))
            if job is None:
                return None
            updated = merge_snapshot(job, snapshot, now)
            current = updated or job
            if next_poll_at is not None and not current.terminal and current.next_poll_at != next_poll_at:
                current = current.model_copy(update={"next_poll_at": next_poll_at})
            if current is not job:
                stored = await self.save(current)
                current = stored or current
            return current if updated is not None else None

    async def callback_secret(self, job_id: str, candidate: str) -> str:
        """The job's webhook secret: `candidate` the first time, the stored one ever after."""
        await self._execute(PUT_CALLBACK_SECRET, (job_id, candidate))
        return str(await self._scalar(GET_CALLBACK_SECRET, (job_id,)))

    async def callback_target(self, job_id: str) -> tuple[str, Job] | None:
        """The webhook secret handed out for a job, with the job (one query: this is per delivery)."""
        rows = await self._rows(GET_CALLBACK_TARGET, (job_id,))
        return (str(rows[0][0]), _from_row(rows[0][1:])) if rows else None

    async def put_setting(self, platform: str, user_id: str, key: str, value: str) -> None:
        await self._execute(PUT_SETTING, (platform, user_id, key, value))

    async def mark_delivered(self, job_id: str, state: JobState) -> None:
        """Record that the job's message now shows `state` (a terminal one)."""
        await self._execute(MARK_DELIVERED, (state.value, job_id))

    # -- reads -----------------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        return await self._one(GET_JOB, (job_id,))

    async def by_task(self, provider: str, task_id: str) -> Job | None:
        return await self._one(GET_BY_TASK, (provider, task_id))

    async def by_origin(self, origin: str) -> Job | None:
        return await self._one(GET_BY_ORIGIN, (origin,))

    async def by_message(self, platform: str, chat_id: str, message_id: str) -> Job | None:
        return await self._one(GET_BY_MESSAGE, (platform, chat_id, message_id))

    async def due(self, now: float, platform: str | None = None, limit: int = 500) -> list[Job]:
        return await self._many(DUE, (now, platform, platform, limit))

    async def queued(self, provider: str, now: float, limit: int) -> list[Job]:
        """The provider's queued jobs that may be submitted now, oldest first."""
        return await self._many(QUEUED, (provider, now, limit))

    async def queued_providers(self) -> list[str]:
        return [str(row[0]) for row in await self._rows(QUEUED_PROVIDERS)]

    async def queue_position(self, job: Job) -> int:
        """1-based position among the provider's queued jobs (0 if not queued)."""
        if job.state is not JobState.QUEUED:
            return 0
        return int(await self._scalar(QUEUE_POSITION, (job.provider, job.created_at, job.created_at, job.id)))

    async def active_count(self, provider: str) -> int:
        return int(await self._scalar(ACTIVE_COUNT, (provider,)))

    async def counts(self) -> dict[tuple[str, str], int]:
        return {(str(p), str(s)): int(n) for p, s, n in await self._rows(COUNT_BY_STATE)}

    async def live_elsewhere(self, providers: Sequence[str]) -> list[Job]:
        """Unfinished jobs whose provider is not one of `providers` (e.g. removed from the config)."""
        return await self._many(LIVE_ELSEWHERE, (json.dumps(list(providers)),))

    async def expired(self, now: float, platform: str | None = None) -> list[Job]:
        return await self._many(EXPIRED, (now, platform, platform))

    async def next_due(self) -> float | None:
        value = await self._scalar(NEXT_DUE)
        return float(value) if value is not None else None

    async def recent(self, limit: int = 20, owner: Owner | None = None) -> list[Job]:
        if owner is None:
            return await self._many(RECENT, (limit,))
        return await self._many(RECENT_BY_OWNER, (owner.platform, owner.user_id, limit))

    async def undelivered(self, platform: str, since: float, limit: int = 200) -> list[Job]:
        """Finished jobs shown on `platform` whose final state was never recorded as delivered."""
        return await self._many(UNDELIVERED, (platform, since, limit))

    async def settings(self, platform: str, user_id: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in await self._rows(GET_SETTINGS, (platform, user_id))}
