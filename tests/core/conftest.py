"""The core wired together from real parts (tests/harness.py), with a listener that records every
change and helpers that run a job to its end."""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.access import Caller
from bot.config import AppConfig, MediaConfig, PollingConfig
from bot.domain import Job, Owner
from bot.store import JobStore
from providers.base import ImageInput
from providers.local import LocalConfig
from tests.harness import FakeClock, Wired, wire

OWNER = Owner(platform="cli", user_id="u1", name="Ada")


class Recorder:
    """A job listener that remembers every change it was told about, in order."""

    def __init__(self) -> None:
        self.seen: list[Job] = []

    async def job_changed(self, job: Job) -> None:
        self.seen.append(job)

    def of(self, job_id: str) -> list[Job]:
        return [job for job in self.seen if job.id == job_id]


@dataclass
class Harness(Wired):
    listener: Recorder

    async def done(self, job: Job, **kw: Any) -> Job:
        (finished,) = await self.settle(job.id, **kw)
        return finished

    async def imagine(self, prompt: str = "a lighthouse at dusk", **kw: Any) -> Job:
        return await self.done(await self.service.imagine(Caller(OWNER), prompt, **kw))

    async def act(self, job: Job, action: str, index: int = 0) -> Job:
        child, created = await self.service.act(Caller(OWNER), job.id, action, index)
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
    database: Path | str | None = None,
) -> AsyncIterator[Harness]:
    configs = list(providers) or [local()]
    clock = clock or FakeClock()
    config = AppConfig(
        database=database or tmp_path / "jobs.sqlite3",
        default_provider=default or configs[0].name,
        providers=configs,
        media=media or MediaConfig(),
        polling=polling or PollingConfig(backoff_base=1.0, backoff_max=8.0, max_submit_attempts=3),
    )
    async with wire(config, clock) as wired:
        listener = Recorder()
        wired.listeners.add(listener)
        yield Harness(**wired.parts(), listener=listener)


@pytest.fixture
async def h(tmp_path: Path, database: Path | str) -> AsyncIterator[Harness]:
    """The core on each engine."""
    async with build(tmp_path, database=database) as harness:
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


@pytest.fixture
async def store(database: Path | str) -> AsyncIterator[JobStore]:
    """A fresh store, on each engine."""
    opened = await JobStore.open(database)
    yield opened
    await opened.close()
