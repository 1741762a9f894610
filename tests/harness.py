"""The core wired from real parts, shared by tests/core and tests/ops: a SQLite file in tmp_path,
the local provider (its image server on loopback), the real poller and service, wired as bot.app
wires them, and an injected clock that only the test moves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import httpx

from bot.config import AppConfig
from bot.domain import Job
from bot.events import Listeners
from bot.media import Downloader, MediaCache
from bot.poller import Poller
from bot.pool import ProviderPool
from bot.service import JobService
from bot.store import JobStore
from providers.local import LocalConfig, LocalProvider

START = 1_700_000_000.0


class FakeClock:
    """The time every part reads; only the test moves it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Wired:
    """The parts `wire` built; tests/core's Harness and tests/ops' Ops add theirs to these."""

    config: AppConfig
    store: JobStore
    pool: ProviderPool
    poller: Poller
    service: JobService
    listeners: Listeners
    clock: FakeClock
    providers: dict[str, LocalProvider]
    http: httpx.AsyncClient

    def parts(self) -> dict[str, Any]:
        """The fields of `Wired`, to build a subclass from: `Harness(**wired.parts(), listener=...)`."""
        return {f.name: getattr(self, f.name) for f in fields(Wired)}

    async def settle(self, *job_ids: str, step: float = 1.0, max_ticks: int = 200) -> list[Job]:
        """Tick the poller, moving the clock by `step` between ticks, until every job has ended."""
        jobs: list[Job] = []
        for _ in range(max_ticks):
            await self.poller.tick()
            jobs = [await self.service.get(job_id) for job_id in job_ids]
            if all(job.terminal for job in jobs):
                return jobs
            self.clock.advance(step)
        raise AssertionError(f"jobs did not finish: {[(j.id, j.state.value) for j in jobs]}")


@contextlib.asynccontextmanager
async def wire(config: AppConfig, configs: Sequence[LocalConfig], clock: FakeClock) -> AsyncIterator[Wired]:
    """Store, started local providers, poller and service for `config` (whose providers are `configs`)."""
    async with httpx.AsyncClient() as http:
        built = {c.name: LocalProvider(c, http, clock=clock) for c in configs}
        pool = ProviderPool(dict(built))
        store = await JobStore.open(config.database)
        await pool.start()
        try:
            listeners = Listeners()
            poller = Poller(store, pool, listeners, config.polling, clock=clock, jitter=lambda: 1.0)
            cache = MediaCache(Downloader(http, config.media), config.media_cache_dir)
            service = JobService(config, store, pool, cache, listeners, poller.wake, clock)
            yield Wired(config, store, pool, poller, service, listeners, clock, built, http)
        finally:
            await pool.aclose()
            await store.close()
