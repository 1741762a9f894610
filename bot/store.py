"""JobStore: a thin typed repository over aiosqlite (WAL). SQL lives in module constants.

The schema's migrations (bot/migrations.py) are keyed by `PRAGMA user_version`. Read-modify-write
operations hold one lock, so a webhook and the poller applying snapshots to the same job cannot
interleave.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from bot.domain import Job, JobState, Owner, Placement, can_transition, merge_snapshot
from bot.migrations import MIGRATIONS
from providers.base import Action, GenerationRequest, TaskResult, TaskSnapshot

_COLUMNS = (
    "id", "kind", "parent_id", "action_index", "provider", "provider_task_id", "request", "state",
    "progress", "preview_url", "result", "actions", "provider_data", "error", "owner_platform",
    "owner_id", "owner_name", "chat_platform", "chat_id", "message_id", "thread_id", "created_at",
    "updated_at", "deadline", "next_poll_at", "poll_failures", "submit_attempts", "tried_providers",
)  # fmt: skip
_PLACEMENT = ("chat_platform", "chat_id", "message_id", "thread_id")
#: What `save` writes: never the identity, never the placement (only `place` sets where a job is shown).
_MUTABLE = tuple(
    c for c in _COLUMNS if c not in ("id", "kind", "parent_id", "action_index", "created_at", *_PLACEMENT)
)

INSERT_JOB = f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
INSERT_CHILD = INSERT_JOB + " ON CONFLICT DO NOTHING"
_TERMINAL_SQL = "('succeeded', 'failed', 'cancelled', 'timed_out')"
# A write from a stale copy must not undo a newer one: a terminal row is final, a state only moves
# forwards and progress never drops (the poller, webhooks and commands all write the same rows).
_SETS = ", ".join("progress = MAX(progress, ?)" if c == "progress" else f"{c} = ?" for c in _MUTABLE)
UPDATE_JOB = (
    f"UPDATE jobs SET {_SETS}"
    f" WHERE id = ? AND state NOT IN {_TERMINAL_SQL} AND state IN (SELECT value FROM json_each(?))"
    f" RETURNING {', '.join(_PLACEMENT)}, progress"
)
SET_PLACEMENT = f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in _PLACEMENT)} WHERE id = ?"
SELECT = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
GET_JOB = SELECT + " WHERE id = ?"
GET_BY_TASK = SELECT + " WHERE provider = ? AND provider_task_id = ?"
GET_BY_MESSAGE = SELECT + " WHERE chat_platform = ? AND chat_id = ? AND message_id = ?"
GET_ACTIVE_CHILD = (
    SELECT + " WHERE parent_id = ? AND kind = ? AND action_index = ?"
    " AND state NOT IN ('failed', 'cancelled', 'timed_out')"
)
DUE = SELECT + " WHERE state IN ('submitted', 'running') AND next_poll_at <= ? ORDER BY next_poll_at LIMIT ?"
QUEUED = (
    SELECT + " WHERE state = 'queued' AND provider = ? AND (next_poll_at IS NULL OR next_poll_at <= ?)"
    " ORDER BY created_at, rowid LIMIT ?"
)
QUEUED_PROVIDERS = "SELECT DISTINCT provider FROM jobs WHERE state = 'queued'"
QUEUE_POSITION = (
    "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND provider = ?"
    " AND (created_at < ? OR (created_at = ? AND rowid <= (SELECT rowid FROM jobs WHERE id = ?)))"
)
ACTIVE_COUNT = "SELECT COUNT(*) FROM jobs WHERE provider = ? AND state IN ('submitted', 'running')"
COUNT_BY_STATE = "SELECT provider, state, COUNT(*) FROM jobs GROUP BY provider, state"
EXPIRED = SELECT + " WHERE state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out') AND deadline <= ?"
LIVE_ELSEWHERE = (
    SELECT + " WHERE state NOT IN ('succeeded', 'failed', 'cancelled', 'timed_out')"
    " AND provider NOT IN (SELECT value FROM json_each(?))"
)
NEXT_DUE = (
    "SELECT MIN(t) FROM (SELECT MIN(next_poll_at) AS t FROM jobs WHERE state IN ('submitted', 'running')"
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
    }


def _placement(platform: str | None, chat_id: str, message_id: str | None, thread_id: str | None
               ) -> Placement | None:
    if not platform:
        return None
    return Placement(platform=platform, chat_id=chat_id, message_id=message_id, thread_id=thread_id)


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
    )


class JobStore:
    """All job persistence. Methods take and return domain objects."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> JobStore:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")  # durable across process kills in WAL mode
        await db.execute("PRAGMA busy_timeout=5000")
        store = cls(db)
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
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row else 0
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await self._db.executescript(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")

    # execute_fetchall is one trip to aiosqlite's thread; execute + fetchone + close would be three
    async def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return list(await self._db.execute_fetchall(sql, tuple(params)))

    async def _one(self, sql: str, params: Iterable[Any]) -> Job | None:
        rows = await self._rows(sql, params)
        return _from_row(rows[0]) if rows else None

    async def _many(self, sql: str, params: Iterable[Any]) -> list[Job]:
        return [_from_row(row) for row in await self._rows(sql, params)]

    async def _scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = await self._rows(sql, params)
        return rows[0][0] if rows else None

    # -- writes ----------------------------------------------------------------------------------

    async def insert(self, job: Job) -> None:
        await self._db.execute(INSERT_JOB, tuple(_row_values(job).values()))

    async def insert_child(self, job: Job) -> tuple[Job, bool]:
        """Insert an action's job unless the same (parent, action, index) is already live.

        Returns the job that represents the press and whether it is the new one.
        """
        async with self._lock:
            cursor = await self._db.execute(INSERT_CHILD, tuple(_row_values(job).values()))
            if cursor.rowcount == 1:
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
        return job.model_copy(update={"placement": _placement(*row[:4]), "progress": row[4]})

    async def place(self, job_id: str, placement: Placement) -> Job | None:
        """Record where a job is shown; returns the job as stored."""
        values = (placement.platform, placement.chat_id, placement.message_id, placement.thread_id, job_id)
        await self._db.execute(SET_PLACEMENT, values)
        return await self.get(job_id)

    async def apply_snapshot(
        self, provider: str, snapshot: TaskSnapshot, now: float, next_poll_at: float | None = None
    ) -> Job | None:
        """Merge a provider report into its job. Returns the updated job, or None if nothing changed
        (unknown task, duplicate, out-of-order or regressing report). `next_poll_at`, when given,
        is stored for a job that is still running either way."""
        async with self._lock:
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
        await self._db.execute(PUT_CALLBACK_SECRET, (job_id, candidate))
        return str(await self._scalar(GET_CALLBACK_SECRET, (job_id,)))

    async def callback_target(self, job_id: str) -> tuple[str, Job] | None:
        """The webhook secret handed out for a job, with the job (one query: this is per delivery)."""
        rows = await self._rows(GET_CALLBACK_TARGET, (job_id,))
        return (str(rows[0][0]), _from_row(rows[0][1:])) if rows else None

    async def put_setting(self, platform: str, user_id: str, key: str, value: str) -> None:
        await self._db.execute(PUT_SETTING, (platform, user_id, key, value))

    async def mark_delivered(self, job_id: str, state: JobState) -> None:
        """Record that the job's message now shows `state` (a terminal one)."""
        await self._db.execute(MARK_DELIVERED, (state.value, job_id))

    # -- reads -----------------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        return await self._one(GET_JOB, (job_id,))

    async def by_task(self, provider: str, task_id: str) -> Job | None:
        return await self._one(GET_BY_TASK, (provider, task_id))

    async def by_message(self, platform: str, chat_id: str, message_id: str) -> Job | None:
        return await self._one(GET_BY_MESSAGE, (platform, chat_id, message_id))

    async def due(self, now: float, limit: int = 500) -> list[Job]:
        return await self._many(DUE, (now, limit))

    async def queued(self, provider: str, now: float, limit: int) -> list[Job]:
        """The provider's queued jobs that may be submitted now, oldest first."""
        return await self._many(QUEUED, (provider, now, limit))

    async def queued_providers(self) -> list[str]:
        async with self._db.execute(QUEUED_PROVIDERS) as cursor:
            return [str(row[0]) for row in await cursor.fetchall()]

    async def queue_position(self, job: Job) -> int:
        """1-based position among the provider's queued jobs (0 if not queued)."""
        if job.state is not JobState.QUEUED:
            return 0
        return int(await self._scalar(QUEUE_POSITION, (job.provider, job.created_at, job.created_at, job.id)))

    async def active_count(self, provider: str) -> int:
        return int(await self._scalar(ACTIVE_COUNT, (provider,)))

    async def counts(self) -> dict[tuple[str, str], int]:
        async with self._db.execute(COUNT_BY_STATE) as cursor:
            return {(str(p), str(s)): int(n) for p, s, n in await cursor.fetchall()}

    async def live_elsewhere(self, providers: Sequence[str]) -> list[Job]:
        """Unfinished jobs whose provider is not one of `providers` (e.g. removed from the config)."""
        return await self._many(LIVE_ELSEWHERE, (json.dumps(list(providers)),))

    async def expired(self, now: float) -> list[Job]:
        return await self._many(EXPIRED, (now,))

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
        async with self._db.execute(GET_SETTINGS, (platform, user_id)) as cursor:
            return {str(k): str(v) for k, v in await cursor.fetchall()}
