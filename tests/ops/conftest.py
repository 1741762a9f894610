"""Operations tests on real parts: SQLite in tmp_path, the local provider (its image server on
loopback), the real poller, service, quotas, access and admin, wired as bot.app wires them, and an
injected clock that only the test moves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.access import Actor
from bot.admin import AdminService
from bot.config import AppConfig, PollingConfig
from bot.domain import Job, Owner
from bot.events import Listeners
from bot.media import Downloader, MediaCache
from bot.metrics import Health, Metrics
from bot.poller import Poller
from bot.pool import ProviderPool
from bot.quota import OpsSettings
from bot.service import JobService
from bot.store import JobStore
from providers.local import LocalConfig, LocalProvider

START = 1_700_000_000.0
ADA = Owner(platform="telegram", user_id="101", name="Ada")
BOB = Owner(platform="telegram", user_id="202", name="Bob")
GROUP = "-1001"  # a Telegram group id


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Ops:
    config: AppConfig
    store: JobStore
    pool: ProviderPool
    poller: Poller
    service: JobService
    admin: AdminService
    metrics: Metrics
    health: Health
    clock: FakeClock
    providers: dict[str, LocalProvider]

    async def settle(self, *job_ids: str, step: float = 1.0, max_ticks: int = 100) -> list[Job]:
        """Tick the poller, moving the clock by `step` between ticks, until every job has ended."""
        jobs: list[Job] = []
        for _ in range(max_ticks):
            await self.poller.tick()
            jobs = [await self.service.get(job_id) for job_id in job_ids]
            if all(job.terminal for job in jobs):
                return jobs
            self.clock.advance(step)
        raise AssertionError(f"jobs did not finish: {[(j.id, j.state.value) for j in jobs]}")

    async def imagine(self, owner: Owner = ADA, prompt: str = "a lighthouse at dusk", **kw: Any) -> Job:
        kw.setdefault("scope", GROUP)
        job = await self.service.imagine(owner, prompt, **kw)
        (done,) = await self.settle(job.id)
        return done

    def actor(self, owner: Owner = ADA, *, chat_admin: bool = False, scope: str | None = GROUP) -> Actor:
        return Actor(owner, scope=scope, chat_admin=chat_admin)


def local(name: str = "local", **settings: Any) -> LocalConfig:
    """Instant by default, small grids, 1 s polls."""
    return LocalConfig(name=name, **{"duration": 0.0, "grid_size": 128, "poll_interval": 1.0, **settings})


@contextlib.asynccontextmanager
async def build(tmp_path: Path, providers: Iterable[LocalConfig] = (), **sections: Any) -> AsyncIterator[Ops]:
    configs = list(providers) or [local()]
    clock = FakeClock()
    config = AppConfig.model_validate({
        "database": tmp_path / "ops.sqlite3", "default_provider": configs[0].name, "providers": configs,
        "polling": PollingConfig(backoff_base=1.0, backoff_max=4.0, max_submit_attempts=2), **sections,
    })  # fmt: skip
    async with httpx.AsyncClient() as http:
        built = {c.name: LocalProvider(c, http, clock=clock) for c in configs}
        pool = ProviderPool(dict(built))
        store = await JobStore.open(config.database)
        await pool.start()
        try:
            metrics = Metrics()
            metrics.instrument(built.values())
            listeners = Listeners()
            poller = Poller(store, pool, listeners, config.polling, clock=clock, jitter=lambda: 1.0)
            cache = MediaCache(Downloader(http, config.media), config.media_cache_dir)
            service = JobService(config, store, pool, cache, listeners, poller.wake, clock)
            listeners.add(service.quotas)
            db = store.connection
            admin = AdminService(db, pool, service.access, service.quotas, OpsSettings(db), clock)
            health = Health(store, pool.last_success, pool.names, clock)
            yield Ops(config, store, pool, poller, service, admin, metrics, health, clock, built)
        finally:
            await pool.aclose()
            await store.close()


@pytest.fixture
async def ops(tmp_path: Path) -> AsyncIterator[Ops]:
    async with build(tmp_path) as built:
        yield built
