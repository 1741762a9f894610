"""JobStore: everything the bot persists, behind one typed repository over an `Engine` (SQLite or
PostgreSQL, bot/store/engine.py). Its SQL is in `bot.store.sql`; no other module writes SQL or names a
table. Jobs, claims, the inbox, callback secrets, user settings and delivery records are its own
methods; the credit ledger, bans, admin overrides, stored inputs, albums and Remix prompt requests are
its parts (`ledger`, `bans`, `ops`, `inputs`, `albums`, `workers`, `prompts`), on the same engine and
transactions.

Taking work (a queued job, a due poll, a stale submit) is one conditional UPDATE that only one process
wins; a job's read-modify-write (a provider snapshot) is one transaction that locks the row
(PostgreSQL) or the database (SQLite), so a webhook and the poller, in one process or two, cannot
interleave.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from bot.domain import Job, JobState, Owner, Placement, can_transition, merge_snapshot
from bot.store import sql
from bot.store.engine import Engine, open_engine
from bot.store.inputs import Albums, Inputs
from bot.store.migrations import POSTGRES, SQLITE
from bot.store.ops import BanList, Ledger, OpsSettings
from bot.store.prompts import PromptRequests
from bot.store.rows import changed, from_row, placement_of, row_values
from bot.store.web import WebStore
from bot.store.workers import Workers
from providers.base import Action, TaskSnapshot

log = logging.getLogger(__name__)


class InboxEntry(NamedTuple):
    """A platform event as committed: its key (update id, interaction id), order, body and chat."""

    key: str
    seq: int
    payload: str
    chat: str | None = None


_UPDATES: dict[tuple[tuple[str, ...], bool], str] = {}  # update_job(columns, unchanged), by its arguments


class JobStore:
    """All persistence. Methods take and return domain objects."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.ledger = Ledger(engine)
        self.bans = BanList(engine)
        self.ops = OpsSettings(engine)
        self.inputs = Inputs(engine)
        self.albums = Albums(engine)
        self.workers = Workers(engine)
        self.prompts = PromptRequests(engine)  # Remix prompts asked for on Telegram, not yet answered
        self.web = WebStore(engine)

    @classmethod
    async def open(cls, database: Path | str, create: bool = True) -> JobStore:
        """The store at `database` (a SQLite path or a postgresql:// URL), migrated to this version.
        `create=False` (read-only commands): a SQLite file that is not there yet is a DatabaseError
        saying so, and no file is made."""
        engine = await open_engine(database, create=create)
        try:
            await engine.migrate(POSTGRES if engine.dialect.numbered else SQLITE)
        except BaseException:
            await engine.close()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self.engine.close()

    async def ping(self) -> bool:
        """True when the database answers (for /healthz)."""
        return await self.engine.ping()

    def transaction(self) -> Any:
        """One write transaction for the block (see `Engine.transaction`)."""
        return self.engine.transaction()

    async def active_child(self, parent_id: str, kind: Action, index: int) -> Job | None:
        """The live job of an earlier press of the same button, if there is one."""
        return await self._one(sql.GET_ACTIVE_CHILD, (parent_id, kind.value, index))

    async def _rows(self, statement: str, params: Iterable[Any] = ()) -> list[Any]:
        return await self.engine.rows(statement, tuple(params))

    async def _execute(self, statement: str, params: Iterable[Any] = ()) -> int:
        """Run one write; returns the number of rows it changed."""
        return await self.engine.execute(statement, tuple(params))

    async def _one(self, statement: str, params: Iterable[Any]) -> Job | None:
        rows = await self._rows(statement, params)
        return from_row(rows[0]) if rows else None

    async def _many(self, statement: str, params: Iterable[Any]) -> list[Job]:
        return [from_row(row) for row in await self._rows(statement, params)]

    async def _scalar(self, statement: str, params: Iterable[Any] = ()) -> Any:
        rows = await self._rows(statement, params)
        return rows[0][0] if rows else None

    # -- writes ----------------------------------------------------------------------------------

    async def insert(self, job: Job) -> tuple[Job, bool]:
        """Store a new job. A job with the `origin` of one already stored (the same platform event,
        processed again after a restart) is not stored twice: returns the stored one and False."""
        if await self._execute(sql.INSERT_NEW, row_values(job)) == 1:
            await self.inputs.use(job.id, job.request.images)
            return job, True
        existing = await self._one(sql.GET_BY_ORIGIN, (job.origin,)) if job.origin else None
        if existing is None:  # the same insert, sent again after its answer was lost
            existing = await self.get(job.id)
        assert existing is not None, "a conflicting job must share the origin"
        return existing, False

    async def insert_child(self, job: Job) -> tuple[Job, bool]:
        """Insert an action's job unless the same (parent, action, index) is already live.

        Returns the job that represents the press and whether it is the new one.
        """
        if await self._execute(sql.INSERT_NEW, row_values(job)) == 1:
            await self.inputs.use(job.id, job.request.images)
            return job, True
        existing = await self._one(sql.GET_ACTIVE_CHILD, (job.parent_id, job.kind.value, job.index))
        assert existing is not None, "a conflicting live child must exist"
        return existing, False

    async def save(self, job: Job, before: Job | None = None, *, unchanged: bool = False) -> Job | None:
        """Write a job's changes: the columns that differ from `before` (the version it was made from),
        or every mutable one. Returns it as stored (with the stored placement and progress), or None
        when the write was refused because the stored job is terminal or further along (or, when
        `unchanged`, because it was written since `before` was read)."""
        columns = (changed(before, job) or ("updated_at",)) if before is not None else sql.MUTABLE
        sources = json.dumps([s.value for s in JobState if s is job.state or can_transition(s, job.state)])
        key = (columns, unchanged and before is not None)
        statement = _UPDATES.get(key) or _UPDATES.setdefault(key, sql.update_job(*key))
        params = (*row_values(job, columns), job.id, sources)
        rows = await self._rows(statement, (*params, before.updated_at) if key[1] and before else params)
        if not rows:
            return None
        row = rows[0]
        return job.model_copy(update={"placement": placement_of(*row[:5]), "progress": row[5]})

    async def place(self, job_id: str, placement: Placement) -> Job | None:
        """Record where a job is shown; returns the job as stored."""
        values = (placement.platform, placement.chat_id, placement.message_id, placement.thread_id,
                  placement.reply_to, job_id)
        await self._execute(sql.SET_PLACEMENT, values)
        return await self.get(job_id)

    async def unplace(self, job_id: str) -> None:
        """The job's first reply can't be sent (the chat is gone): it is shown nowhere."""
        await self._execute(sql.UNPLACE, (job_id,))

    async def unreplied(self, platform: str, limit: int = 500) -> list[Job]:
        """Jobs shown on `platform` whose first reply has no message yet (the reply outbox)."""
        return await self._many(sql.UNREPLIED, (platform, limit))

    # -- claims ----------------------------------------------------------------------------------

    async def claim_queued(self, provider: str, now: float, lease: float, capacity: int,
                           platform: str | None = None) -> list[Job]:
        """Take the provider's oldest queued jobs (of `platform`'s owners, if given) that fit its
        `capacity` (counting every job live at it, in any process) for submitting: each comes back
        `submitting`, with a fresh attempt key."""
        params = (secrets.token_hex(4), now, now + lease, now, provider, now, platform, platform, capacity,
                  provider)  # fmt: skip
        async with self._serialized(f"claim:{provider}"):
            claimed = await self._many(sql.CLAIM_QUEUED, params)
        return sorted(claimed, key=lambda job: job.created_at)

    @asynccontextmanager
    async def _serialized(self, key: str) -> AsyncIterator[None]:
        """One process at a time through the block, for `key`: a transaction holding the engine's lock
        on the key where it has one (PostgreSQL; on SQLite a write statement holds the whole file)."""
        lock = self.engine.dialect.key_lock
        if lock is None:
            yield
            return
        async with self.transaction():
            await self._execute(lock, (key,))
            yield

    async def claim_stale_submits(self, now: float, lease: float, platform: str | None = None,
                                  limit: int = 100) -> list[Job]:
        """Take submits whose lease ran out (their process died, or their outcome is unknown)."""
        return await self._many(sql.CLAIM_STALE_SUBMITS, (now + lease, now, platform, platform, limit, now))

    async def record_submit(self, job: Job, task_id: str, next_poll_at: float, now: float) -> Job | None:
        """The attempt `job.submit_key` created `task_id`: `submitted`. None if the attempt lost its
        claim meanwhile (the job was cancelled, or another process reconciled it)."""
        return await self._one(sql.RECORD_SUBMIT, (task_id, next_poll_at, now, job.id, job.submit_key))

    async def release_submit(self, job: Job, retry_at: float | None, now: float) -> Job | None:
        """Back to `queued` (with `job`'s provider, tried list and attempts): its submit is known not to
        have reached the provider. None if the attempt lost its claim meanwhile."""
        params = (job.provider, json.dumps(job.tried_providers), job.submit_attempts, retry_at, now,
                  job.id, job.submit_key)  # fmt: skip
        return await self._one(sql.RELEASE_SUBMIT, params)

    async def extend_claim(self, job: Job, until: float, failures: int = 0) -> None:
        """Keep the claim, to look again at `until`; `failures` counts the lookups that failed (backoff)."""
        await self._execute(sql.EXTEND_CLAIM, (until, failures, job.id, job.submit_key))

    async def claim_polls(self, jobs: Sequence[Job], horizon: float, lease_end: float) -> set[str]:
        """Take the polls of `jobs` still due by `horizon` (another process may have taken some)."""
        if not jobs:
            return set()
        rows = await self._rows(sql.CLAIM_POLLS, (lease_end, json.dumps([job.id for job in jobs]), horizon))
        return {str(row[0]) for row in rows}

    async def release_polls(self, job_ids: Sequence[str], at: float) -> None:
        """Hand claimed polls back, due at `at` (their poll was cut short by a clean stop)."""
        if job_ids:
            await self._execute(sql.RELEASE_POLLS, (at, json.dumps(list(job_ids))))

    # -- the inbox -------------------------------------------------------------------------------

    async def inbox_add(self, source: str, entries: Sequence[InboxEntry], now: float,
                        taken_by: str | None = None) -> None:
        """Commit platform events before they are acknowledged (one transaction; an event seen before
        is kept as it was); `taken_by`: the worker that handles them (else the chat's worker does)."""
        async with self.transaction():
            for key, seq, payload, chat in entries:
                await self._execute(sql.INBOX_ADD, (source, key, seq, payload, chat, taken_by, now))

    async def inbox_pending(self, source: str, limit: int = 1000, taken_by: str | None = None
                            ) -> list[InboxEntry]:
        """Events of `source` not yet processed, oldest first (with `taken_by`: only that worker's and
        those no worker took)."""
        rows = await self._rows(sql.INBOX_PENDING, (source, taken_by, taken_by, limit))
        return [InboxEntry(str(k), int(q), str(p), str(c) if c is not None else None) for k, q, p, c in rows]

    async def inbox_done(self, source: str, key: str, now: float) -> None:
        await self._execute(sql.INBOX_DONE, (now, source, key))

    async def inbox_last(self, source: str) -> int | None:
        """The highest sequence number seen from `source` (Telegram: the last update id committed)."""
        value = await self._scalar(sql.INBOX_LAST, (source,))
        return int(value) if value is not None else None

    async def inbox_prune(self, before: float) -> None:
        """Forget events processed before `before` (the newest of each source stays: its seq)."""
        await self._execute(sql.INBOX_PRUNE, (before,))

    async def apply_snapshot(
        self, provider: str, snapshot: TaskSnapshot, now: float, next_poll_at: float | None = None,
        known: Job | None = None,
    ) -> Job | None:
        """Merge a provider report into its job. Returns the updated job, or None if nothing changed
        (unknown task, duplicate, out-of-order or regressing report). `next_poll_at`, when given,
        is stored for a job that is still running either way.

        `known`, the job as the caller last read it, saves reading it again: the report is merged
        into it and written in one statement, only if no one wrote the job since; else (rarely) it is
        merged again into the stored job, under a lock."""
        hoped: Job | None = None
        if known is not None and (known.provider, known.provider_task_id) == (provider, snapshot.task_id):
            hoped, written = await self._merge(known, snapshot, now, next_poll_at, unchanged=True)
            if written:
                return hoped
        async with self.transaction():
            job = await self._one(sql.GET_BY_TASK + "{for_update}", (provider, snapshot.task_id))
            if job is None:
                return None
            merged, _ = await self._merge(job, snapshot, now, next_poll_at)
            if merged is None and hoped is not None and (job.state, job.progress) == (hoped.state,
                                                                                      hoped.progress):
                return job  # the write went through but its answer was lost (sent again): still news
            return merged

    async def _merge(self, job: Job, snapshot: TaskSnapshot, now: float, next_poll_at: float | None,
                     unchanged: bool = False) -> tuple[Job | None, bool]:
        """apply_snapshot's answer for `job` as read, and False if its write was refused because the
        job was written since (`unchanged`) or has moved on."""
        updated = merge_snapshot(job, snapshot, now)
        current = updated or job
        if next_poll_at is not None and not current.terminal and current.next_poll_at != next_poll_at:
            current = current.model_copy(update={"next_poll_at": next_poll_at})
        if current is not job:
            stored = await self.save(current, job, unchanged=unchanged)
            if stored is None:
                return (current if updated is not None else None), False
            current = stored
        return (current if updated is not None else None), True

    async def changed_since(self, since: float, limit: int = 1000) -> list[Job]:
        """Jobs written at or after `since`, oldest first (a catch-up after missed change events)."""
        return await self._many(sql.CHANGED_SINCE, (since, limit))

    async def callback_secret(self, job_id: str, candidate: str) -> str:
        """The job's webhook secret: `candidate` the first time, the stored one ever after."""
        await self._execute(sql.PUT_CALLBACK_SECRET, (job_id, candidate))
        return str(await self._scalar(sql.GET_CALLBACK_SECRET, (job_id,)))

    async def with_callbacks(self, job_ids: Sequence[str]) -> set[str]:
        """Those of `job_ids` that were given a callback URL (their polls are only a fallback)."""
        rows = await self._rows(sql.WITH_CALLBACKS, (json.dumps(list(job_ids)),))
        return {str(row[0]) for row in rows}

    async def callback_target(self, job_id: str) -> tuple[str, Job] | None:
        """The webhook secret handed out for a job, with the job (one query: this is per delivery)."""
        rows = await self._rows(sql.GET_CALLBACK_TARGET, (job_id,))
        return (str(rows[0][0]), from_row(rows[0][1:])) if rows else None

    async def put_setting(self, platform: str, user_id: str, key: str, value: str) -> None:
        await self._execute(sql.PUT_SETTING, (platform, user_id, key, value))

    async def mark_delivered(self, job_id: str, state: JobState) -> None:
        """Record that the job's message now shows `state` (a terminal one)."""
        await self._execute(sql.MARK_DELIVERED, (state.value, job_id))

    # -- reads -----------------------------------------------------------------------------------

    async def get(self, job_id: str) -> Job | None:
        return await self._one(sql.GET_JOB, (job_id,))

    async def by_task(self, provider: str, task_id: str) -> Job | None:
        return await self._one(sql.GET_BY_TASK, (provider, task_id))

    async def by_origin(self, origin: str) -> Job | None:
        return await self._one(sql.GET_BY_ORIGIN, (origin,))

    async def by_message(self, platform: str, chat_id: str, message_id: str) -> Job | None:
        return await self._one(sql.GET_BY_MESSAGE, (platform, chat_id, message_id))

    async def due(self, now: float, platform: str | None = None, limit: int = 500, ahead: float = 0.0
                  ) -> list[Job]:
        """Running jobs whose next poll is due by `now + ahead`, if any is due by `now` (none else)."""
        return await self._many(sql.DUE, (now + ahead, platform, platform, now, platform, platform, limit))

    async def queued(self, provider: str, now: float, limit: int) -> list[Job]:
        """The provider's queued jobs that may be submitted now, oldest first."""
        return await self._many(sql.QUEUED, (provider, now, limit))

    async def queued_providers(self) -> list[str]:
        return [str(row[0]) for row in await self._rows(sql.QUEUED_PROVIDERS)]

    async def queue_position(self, job: Job) -> int:
        """1-based position among the provider's queued jobs (0 if not queued)."""
        if job.state is not JobState.QUEUED:
            return 0
        params = (job.provider, job.created_at, job.created_at, job.id)
        return int(await self._scalar(sql.QUEUE_POSITION, params))

    async def active_count(self, provider: str) -> int:
        return int(await self._scalar(sql.ACTIVE_COUNT, (provider,)))

    async def counts(self) -> dict[tuple[str, str], int]:
        return {(str(p), str(s)): int(n) for p, s, n in await self._rows(sql.COUNT_BY_STATE)}

    async def live_elsewhere(self, providers: Sequence[str]) -> list[Job]:
        """Unfinished jobs whose provider is not one of `providers` (e.g. removed from the config)."""
        return await self._many(sql.LIVE_ELSEWHERE, (json.dumps(list(providers)),))

    async def expired(self, now: float, platform: str | None = None) -> list[Job]:
        return await self._many(sql.EXPIRED, (now, platform, platform))

    async def next_due(self) -> float | None:
        value = await self._scalar(sql.NEXT_DUE)
        return float(value) if value is not None else None

    async def recent(self, limit: int = 20, owner: Owner | None = None) -> list[Job]:
        if owner is None:
            return await self._many(sql.RECENT, (limit,))
        return await self._many(sql.RECENT_BY_OWNER, (owner.platform, owner.user_id, limit))

    async def undelivered(self, platform: str, since: float, limit: int = 200) -> list[Job]:
        """Finished jobs shown on `platform` whose final state was never recorded as delivered."""
        return await self._many(sql.UNDELIVERED, (platform, since, limit))

    async def settings(self, platform: str, user_id: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in await self._rows(sql.GET_SETTINGS, (platform, user_id))}

    # -- retention -------------------------------------------------------------------------------

    async def prune(self, before: float, dry_run: bool = False) -> Pruned:
        """Forget jobs that ended before `before` with their charges and callback secrets, stored inputs
        no job uses any more, and albums and unanswered Remix prompt requests from before then.
        `dry_run`: only count what would go."""
        async with self.transaction():
            jobs = int(await self._scalar(sql.COUNT_PRUNABLE, (before,)))
            blobs, size = (await self._rows(sql.COUNT_UNUSED_BLOBS, (before, before)))[0]
            if dry_run:
                return Pruned(jobs, int(blobs), int(size), dry_run=True)
            await self._execute(sql.PRUNE_BLOBS, (before, before))
            for statement in (sql.PRUNE_LEDGER, sql.PRUNE_SECRETS, sql.PRUNE_USES, sql.PRUNE_JOBS):
                await self._execute(statement, (before,))
            await self._execute(sql.PRUNE_ALBUMS, (before,))
            await self.prompts.prune(before)
        return Pruned(jobs, int(blobs), int(size))


@dataclass(frozen=True)
class Pruned:
    jobs: int
    inputs: int
    input_bytes: int
    dry_run: bool = False

    def line(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return (f"{verb} {self.jobs} finished job(s) and {self.inputs} stored input(s) "
                f"({self.input_bytes / 1e6:.1f} MB)")
