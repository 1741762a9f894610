"""The core wired from real parts, shared by tests/core and tests/ops: built by the composition root
itself (bot.app.build_app, so refunds, admin pauses and metrics are wired as in production), on a
SQLite file in tmp_path (or the PostgreSQL test server), with the local providers (their image server
on loopback) and every part on an injected clock that only the test moves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from typing import Any

import httpx

from bot.app import App, build_app
from bot.config import AppConfig
from bot.domain import Job
from bot.events import Listeners
from bot.poller import Poller
from bot.pool import ProviderFactory, ProviderPool, build_provider
from bot.runner import JobRunner
from bot.service import JobService
from bot.store import JobStore
from providers.base import Provider, ProviderConfig
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
    runner: JobRunner
    poller: Poller
    service: JobService
    listeners: Listeners
    clock: FakeClock
    providers: dict[str, LocalProvider]
    http: httpx.AsyncClient
    app: App  # everything build_app built (admin, metrics, health, worker ...)

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


def on_clock(clock: FakeClock) -> ProviderFactory:
    """A `make_provider` for build_app: the registry's adapters, the local simulator on `clock` (so a
    simulated duration passes when the test moves the clock, not with the wall clock)."""

    def make(entry: ProviderConfig, client: httpx.AsyncClient) -> Provider:
        if isinstance(entry, LocalConfig):
            return LocalProvider(entry, client, clock=clock)
        return build_provider(entry, client)

    return make


@contextlib.asynccontextmanager
async def wire(config: AppConfig, clock: FakeClock) -> AsyncIterator[Wired]:
    """The app for `config`, built by `build_app` as `run` builds it, with the test's clock everywhere
    (the simulators' too) and a backoff without jitter, so retries are predictable."""
    async with build_app(config, clock=clock, jitter=lambda: 1.0, make_provider=on_clock(clock)) as app:
        local = {name: provider for name in app.pool.names
                 if isinstance(provider := app.pool.get(name), LocalProvider)}  # fmt: skip
        yield Wired(config, app.store, app.pool, app.runner, app.poller, app.service, app.listeners, clock,
                    local, app.http, app)  # fmt: skip
