"""This process among the workers sharing one database: its heartbeat, and the leases it holds.

Several `imagine-bot run` processes may share one PostgreSQL database. Work on jobs is claimed job by
job in the store (bot/store/jobs.py); what this module adds is who shows what. Each chat's messages
are sent and edited by one worker at a time, the holder of the chat's lease (`chat:<platform>:<id>`),
so the platforms' per-chat rate limits hold across workers. A worker takes a chat's lease the first
time it has something to show there and nobody else holds it; it renews all its leases with each
heartbeat; a worker that dies stops renewing, and after `workers.lease` seconds another one takes its
chats over (`adopt`: the new holder shows what is pending there: finals, queue positions, first
replies, unprocessed commands). A clean stop hands every lease back at once.

On SQLite (one process: `Engine.shared` is false) every chat is this worker's and no lease is written;
the same start-up path adopts every chat with something pending.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from bot.config import WorkersConfig
from bot.store import JobStore

log = logging.getLogger(__name__)

Adopter = Callable[[list[str]], Coroutine[Any, Any, None]]  # "show what is pending in these chats"
_ASK_AGAIN = 1.0  # seconds before asking again for a lease another worker held


def chat_lease(platform: str, chat_id: str) -> str:
    return f"chat:{platform}:{chat_id}"


class Worker:
    def __init__(self, store: JobStore, config: WorkersConfig, *, clock: Callable[[], float] = time.time
                 ) -> None:
        self.id = config.id
        self.instance = store.engine.instance
        self.shared = store.engine.shared
        self._store = store
        self._config = config
        self._clock = clock
        self._held: dict[str, float] = {}  # lease name -> until, as this process last wrote it
        self._refused: dict[str, float] = {}  # lease name -> when to ask again
        self._adopters: dict[str, Adopter] = {}
        self._adopted: set[str] = set()  # chat leases whose pending messages this life has shown
        self._adopting = asyncio.Lock()  # one sweep at a time: a chat is adopted once
        self._background: set[asyncio.Task[None]] = set()  # adoptions started by owns_chat
        self._joined = False
        self.info: dict[str, Any] = {}  # shown by `imagine-bot workers` and /healthz (shards, mode)

    # -- leases -----------------------------------------------------------------------------------

    async def owns_chat(self, platform: str, chat_id: str) -> bool:
        """Whether this worker shows the chat's messages: it holds the chat's lease, or takes it now
        (and then first shows what a worker that held it before left pending there)."""
        name = chat_lease(platform, chat_id)
        if not await self.take(name):
            return False
        if self.shared and name not in self._adopted and platform in self._adopters:
            self._adopted.add(name)
            self._in_background(self._adopters[platform]([chat_id]))  # never holds up the caller
        return True

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("worker %s: showing a chat taken over failed", self.id, exc_info=exc)

    async def take(self, name: str) -> bool:
        if not self.shared:
            return True
        now = self._clock()
        if self._held.get(name, 0.0) > now:
            return True
        if self._refused.get(name, 0.0) > now:
            return False
        until = now + self._config.lease
        if await self._store.workers.take(name, self.id, now, until):
            self._held[name] = until
            self._refused.pop(name, None)
            return True
        self._held.pop(name, None)
        self._refused[name] = now + min(_ASK_AGAIN, self._config.heartbeat)
        return False

    @property
    def heartbeat(self) -> float:
        return self._config.heartbeat

    @property
    def held(self) -> list[str]:
        now = self._clock()
        return sorted(name for name, until in self._held.items() if until > now)

    def describe(self) -> dict[str, Any]:
        """For /healthz and /metrics: this worker's id, how many leases it holds, and its `info`."""
        return {"id": self.id, "leases": len(self.held), **self.info}

    # -- lifetime ---------------------------------------------------------------------------------

    async def join(self) -> None:
        now = self._clock()
        await self._store.workers.join(self.id, self.instance, now, self.info)
        self._joined = True

    async def run(self) -> None:
        """Heartbeat and renew the leases, and take over lapsed chats, until cancelled; then hand back.
        Two loops: showing a chat taken over (paced sends) must never delay a heartbeat."""
        if not self._joined:
            await self.join()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._every_beat(self.beat, "heartbeat"), name="worker-heartbeat")
                if self.shared:
                    group.create_task(self._every_beat(self.adopt_unheld, "taking chats over"),
                                      name="worker-takeover")  # fmt: skip
        finally:
            for task in list(self._background):
                task.cancel()
            await asyncio.shield(self.leave())

    async def _every_beat(self, step: Callable[[], Awaitable[None]], what: str) -> None:
        while True:
            try:
                await step()
            except Exception:  # supervised: the next beat tries again (leases last several beats)
                log.exception("worker %s: %s failed", self.id, what)
            await asyncio.sleep(self._config.heartbeat)

    async def beat(self) -> None:
        now = self._clock()
        if not await self._store.workers.beat(self.id, self.instance, now, self.info):
            log.error("worker id %r is used by another process too: give each worker its own workers.id",
                      self.id)  # fmt: skip
            await self._store.workers.join(self.id, self.instance, now, self.info)
        if self.shared:
            until = now + self._config.lease
            before = set(self._held)  # leases taken while the renewal is on its way are kept as they are
            kept = await self._store.workers.renew(self.id, now, until)
            lost = before - kept
            if any(self._held.get(name, 0.0) > now for name in lost):
                log.warning("worker %s: lost %d lease(s) (a stall longer than workers.lease)", self.id,
                            len(lost))  # fmt: skip
            for name in lost:
                self._held.pop(name, None)
                self._adopted.discard(name)  # a chat lost and taken again is adopted again
            self._held.update(dict.fromkeys(kept, until))

    async def leave(self) -> None:
        try:
            await self._store.workers.leave(self.id, self.instance)
        except Exception:  # a stop on the way out: the leases lapse by themselves
            log.warning("worker %s: could not hand its leases back; they lapse in %.0f s", self.id,
                        self._config.lease)  # fmt: skip
        self._held.clear()
        self._adopted.clear()

    # -- taking chats over ------------------------------------------------------------------------

    async def adopt(self, platform: str, adopter: Adopter) -> None:
        """Register `platform`'s adopter and run it now on every chat with something pending that no
        other live worker holds (at a frontend's start: what the last run, or a dead worker, left)."""
        self._adopters[platform] = adopter
        await self.adopt_unheld([platform])

    async def adopt_unheld(self, platforms: Iterable[str] | None = None) -> None:
        wanted = set(self._adopters if platforms is None else platforms) & set(self._adopters)
        if not wanted:
            return
        async with self._adopting:
            await self._adopt_unheld(wanted)

    async def _adopt_unheld(self, wanted: set[str]) -> None:
        now = self._clock()
        taken: dict[str, list[str]] = defaultdict(list)
        for platform, chat_id in await self._store.workers.unheld_chats(self.id, now):
            name = chat_lease(platform, chat_id)
            if platform in wanted and name not in self._adopted and await self.take(name):
                self._adopted.add(name)
                taken[platform].append(chat_id)
        for platform, chats in taken.items():
            if self.shared:
                log.info("worker %s: taking over %d %s chat(s)", self.id, len(chats), platform)
            await self._adopters[platform](chats)
