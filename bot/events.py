"""How frontends learn about job changes: a small listener protocol, fanned out by `Listeners`, and
`SharedEvents`, which hears the changes the other workers sharing the database made.

A change made by any worker (a poll, a webhook, a command) reaches the listeners of every worker: the
worker that made it calls its own listeners; the database tells the others (PostgreSQL NOTIFY from a
trigger, in the transaction of the write, so a writer that dies right after committing has told them
all the same; the payload is "origin kind key", the origin the writer's `Engine.instance`). Each of
them reads the job and hands it to its own listeners (the one showing the job's chat edits it). After
its listening connection was lost, a worker reads every job written since the last event it saw.
Events of another kind (e.g. "inbox": a platform event committed for a chat another worker may show)
go to the callbacks subscribed to that kind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from bot.domain import Job
from bot.store import JobStore

log = logging.getLogger(__name__)

CHANNEL = "imagine_bot_events"
_CATCH_UP_MARGIN = 5.0  # seconds before the last event seen a catch-up reads from (clocks differ)


class JobListener(Protocol):
    async def job_changed(self, job: Job) -> None:
        """Called after every stored change of a job (state, progress, preview, result, placement)."""


class Listeners:
    """Fan-out to every registered listener; one failing listener does not starve the others."""

    def __init__(self) -> None:
        self._listeners: list[JobListener] = []

    def add(self, listener: JobListener) -> None:
        self._listeners.append(listener)

    def remove(self, listener: JobListener) -> None:
        self._listeners.remove(listener)

    async def job_changed(self, job: Job) -> None:
        for listener in list(self._listeners):
            try:
                await listener.job_changed(job)
            except Exception:  # a listener bug must not stop the poller; it is logged with its trace
                log.exception("listener %s failed on job %s", type(listener).__name__, job.id)


class SharedEvents:
    """The loop (`run`) that hears the other workers' changes and hands them to this one's listeners."""

    def __init__(self, store: JobStore, listeners: Listeners, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._listeners = listeners
        self._origin = store.engine.instance  # this process: its own changes were handed on as made
        self._clock = clock
        self._pending: dict[str, None] = {}  # job ids heard of and not yet handed on, oldest first
        self._wake = asyncio.Event()
        self._subscribers: dict[str, list[Callable[[str], Coroutine[Any, Any, None]]]] = {}
        self._last_seen = clock()
        self._tasks: set[asyncio.Task[None]] = set()
        self.received = 0  # events from other workers (for /metrics)

    def subscribe(self, kind: str, callback: Callable[[str], Coroutine[Any, Any, None]]) -> None:
        self._subscribers.setdefault(kind, []).append(callback)

    async def run(self) -> None:
        """Hear the other workers until cancelled (returns never on SQLite: nobody else is there)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._hand_on(), name="events-hand-on")
            await self._store.engine.listen(CHANNEL, self._received, self._catch_up)

    def _received(self, payload: str) -> None:
        origin, kind, key = [*payload.split(" ", 2), "", ""][:3]
        if origin == self._origin:
            return
        self.received += 1
        self._last_seen = self._clock()
        if kind == "job":
            self._pending[key] = None
            self._wake.set()
        for callback in self._subscribers.get(kind, []):
            task = asyncio.get_running_loop().create_task(callback(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _hand_on(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                job_id = next(iter(self._pending))
                del self._pending[job_id]
                try:
                    job = await self._store.get(job_id)
                except Exception:  # the database is away: the catch-up after reconnecting covers it
                    log.exception("events: could not read job %s", job_id)
                    continue
                if job is not None:
                    await self._listeners.job_changed(job)

    async def _catch_up(self) -> None:
        since = self._last_seen - _CATCH_UP_MARGIN
        jobs = await self._store.changed_since(since)
        log.info("events: reconnected; handing on %d job(s) changed meanwhile", len(jobs))
        for job in jobs:
            await self._listeners.job_changed(job)
