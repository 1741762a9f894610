"""The core wired together from real parts: a SQLite file in tmp_path, the local provider (with its
image server on loopback), the real poller and service, and an injected clock that tests advance."""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from bot.config import AppConfig, MediaConfig, PollingConfig
from bot.domain import Job, Owner
from bot.events import Listeners
from bot.media import Downloader, MediaCache
from bot.poller import Poller
from bot.pool import ProviderPool
from bot.service import JobService
from bot.store import JobStore
from providers.base import ImageInput
from providers.local import LocalConfig, LocalProvider

OWNER = Owner(platform="cli", user_id="u1", name="Ada")
START = 1_700_000_000.0


class FakeClock:
    """The time every part reads; only the test moves it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A job listener that remembers every change it was told about, in order."""

    def __init__(self) -> None:
        self.seen: list[Job] = []

    async def job_changed(self, job: Job) -> None:
        self.seen.append(job)

    def of(self, job_id: str) -> list[Job]:
        return [job for job in self.seen if job.id == job_id]


@dataclass
class Harness:
    config: AppConfig
    store: JobStore
    pool: ProviderPool
    poller: Poller
    service: JobService
    listener: Recorder
    clock: FakeClock
    providers: dict[str, LocalProvider] = field(default_factory=dict)

    async def settle(self, *job_ids: str, step: float = 1.0, max_ticks: int = 200) -> list[Job]:
        """Tick the poller, moving the clock by `step` between ticks, until every job has ended."""
        for _ in range(max_ticks):
            await self.poller.tick()
            jobs = [await self.service.get(job_id) for job_id in job_ids]
            if all(job.terminal for job in jobs):
                return jobs
            self.clock.advance(step)
        raise AssertionError(f"jobs did not finish: {[(j.id, j.state.value) for j in jobs]}")

    async def done(self, job: Job, **kw: Any) -> Job:
        (finished,) = await self.settle(job.id, **kw)
        return finished

    async def imagine(self, prompt: str = "a lighthouse at dusk", **kw: Any) -> Job:
        return await self.done(await self.service.imagine(OWNER, prompt, **kw))

    async def act(self, job: Job, action: str, index: int = 0) -> Job:
        child, created = await self.service.act(OWNER, job.id, action, index)
        assert created
        return await self.done(child)


def local(name: str = "local", **settings: Any) -> LocalConfig:
    """A local provider config for tests: instant by default, small grids, 1 s poll interval."""
    base: dict[str, Any] = {"duration": 0.0, "grid_size": 256, "poll_interval": 1.0}
    return LocalConfig(name=name, **{**base, **settings})


@contextlib.asynccontextmanager
async def build(
    tmp_path: Path,
    providers: Iterable[LocalConfig] = (),
    *,
    clock: FakeClock | None = None,
    media: MediaConfig | None = None,
    polling: PollingConfig | None = None,
    default: str | None = None,
) -> AsyncIterator[Harness]:
    configs = list(providers) or [local()]
    clock = clock or FakeClock()
    config = AppConfig(
        database=tmp_path / "jobs.sqlite3",
        default_provider=default or configs[0].name,
        providers=configs,
        media=media or MediaConfig(),
        polling=polling or PollingConfig(backoff_base=1.0, backoff_max=8.0, max_submit_attempts=3),
    )
    async with httpx.AsyncClient() as http:
        built = {c.name: LocalProvider(c, http, clock=clock) for c in configs}
        pool = ProviderPool(dict(built))
        store = await JobStore.open(config.database)
        await pool.start()
        try:
            listener = Recorder()
            listeners = Listeners()
            listeners.add(listener)
            poller = Poller(store, pool, listeners, config.polling, clock=clock, jitter=lambda: 1.0)
            cache = MediaCache(Downloader(http, config.media), config.media_cache_dir)
            service = JobService(config, store, pool, cache, listeners, poller.wake, clock)
            yield Harness(config, store, pool, poller, service, listener, clock, built)
        finally:
            await pool.aclose()
            await store.close()


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with build(tmp_path) as harness:
        yield harness


def png(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 40, 40), noise: bool = False
) -> bytes:
    image = Image.new("RGB", (width, height), color)
    if noise:
        rng = random.Random(7)
        image.putdata(
            [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(width * height)]
        )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def image_input(data: bytes | None = None, name: str = "in.png") -> ImageInput:
    return ImageInput(data=data if data is not None else png(), filename=name)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size
