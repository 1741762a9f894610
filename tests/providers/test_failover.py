"""Failover through the real service + poller against the loopback fakes.

midjourney_api (`mj`) names midapi as its fallback. A new imagine refused for quota, busy beyond
`busy_wait`, or unavailable moves to midapi; the job records who served it. Actions stay with the
provider that made the parent, whatever that provider answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.access import Caller
from bot.app import App, build_app, running
from bot.config import parse_config
from bot.domain import Job, JobState, Owner
from tests.fakes.midapi import MidapiFake
from tests.fakes.midjourney_api import MidjourneyApiFake

OWNER = Owner(platform="cli", user_id="tester", name="tester")


class Finished:
    """A listener that resolves when a given job reaches a terminal state."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Job]] = {}
        self.seen: list[Job] = []

    async def job_changed(self, job: Job) -> None:
        self.seen.append(job)
        future = self._waiting.get(job.id)
        if job.terminal and future is not None and not future.done():
            future.set_result(job)

    async def wait(self, job_id: str) -> Job:
        future = self._waiting.setdefault(job_id, asyncio.get_running_loop().create_future())
        for job in self.seen:  # it may have finished before we asked
            if job.id == job_id and job.terminal and not future.done():
                future.set_result(job)
        return await asyncio.wait_for(future, timeout=10)


def _config(tmp_path: Path, mj_url: str, midapi_url: str, **mj: Any) -> dict[str, Any]:
    fast = {"poll_interval": 0.05, "request_timeout": 5.0}
    return {
        "database": str(tmp_path / "bot.sqlite3"),
        "default_provider": "mj",
        "providers": [
            {"name": "mj", "type": "midjourney_api", "base_url": mj_url, "api_key": "test-key",
             "fallbacks": ["midapi"], **fast, **mj},
            {"name": "midapi", "type": "midapi", "base_url": midapi_url, "api_key": "test-key", **fast},
        ],
        "media": {"allow_private_addresses": True},
        "polling": {"idle_interval": 0.05, "backoff_base": 0.05, "max_submit_attempts": 2},
    }  # fmt: skip


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[MidjourneyApiFake, MidapiFake]]:
    async with MidjourneyApiFake(polls_to_finish=1) as mj, MidapiFake(duration=0.02) as midapi:
        yield mj, midapi


@pytest.fixture
async def app(
    tmp_path: Path, fakes: tuple[MidjourneyApiFake, MidapiFake], request: pytest.FixtureRequest
) -> AsyncIterator[tuple[App, Finished]]:
    mj, midapi = fakes
    knobs = getattr(request, "param", {})
    config = parse_config(_config(tmp_path, mj.base_url, midapi.base_url, **knobs), {})
    async with build_app(config) as built, running(built):
        finished = Finished()
        built.listeners.add(finished)
        yield built, finished


def _midapi_generates(midapi: MidapiFake) -> int:
    return sum(1 for method, path in midapi.requests if method == "POST" and path.endswith("/generate"))


@pytest.mark.parametrize("fault", ["quota", "unavailable"])
async def test_refused_imagine_moves_to_the_fallback(
    app: tuple[App, Finished], fakes: tuple[MidjourneyApiFake, MidapiFake], fault: str
) -> None:
    built, finished = app
    mj, midapi = fakes
    mj.inject(fault, times=5)
    job = await built.service.imagine(Caller(OWNER), "a lighthouse at dusk")
    done = await finished.wait(job.id)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.provider == "midapi"
    assert done.tried_providers == ["mj"]
    stored = await built.service.get(job.id)
    assert (stored.provider, stored.provider_task_id) == ("midapi", done.provider_task_id)
    assert len(mj.submits()) >= 1 and _midapi_generates(midapi) == 1


@pytest.mark.parametrize("app", [{"busy_wait": 0}], indirect=True)
async def test_busy_beyond_busy_wait_moves_to_the_fallback(
    app: tuple[App, Finished], fakes: tuple[MidjourneyApiFake, MidapiFake]
) -> None:
    built, finished = app
    mj, _ = fakes
    mj.inject("busy")
    done = await finished.wait((await built.service.imagine(Caller(OWNER), "a quiet harbour")).id)
    assert done.state is JobState.SUCCEEDED
    assert (done.provider, done.tried_providers) == ("midapi", ["mj"])


@pytest.mark.parametrize("app", [{"busy_wait": 60}], indirect=True)
async def test_busy_within_busy_wait_stays_and_is_retried(
    app: tuple[App, Finished], fakes: tuple[MidjourneyApiFake, MidapiFake]
) -> None:
    built, finished = app
    mj, midapi = fakes
    mj.inject("busy")  # 1002 without a retry-after: paused for a short backoff, then retried on mj
    done = await finished.wait((await built.service.imagine(Caller(OWNER), "a quiet harbour")).id)
    assert done.state is JobState.SUCCEEDED
    assert (done.provider, done.tried_providers) == ("mj", [])
    assert len(mj.submits()) == 2 and _midapi_generates(midapi) == 0


async def test_actions_stay_with_the_parents_provider(
    app: tuple[App, Finished], fakes: tuple[MidjourneyApiFake, MidapiFake]
) -> None:
    built, finished = app
    mj, midapi = fakes
    parent = await finished.wait((await built.service.imagine(Caller(OWNER), "a red fox")).id)
    assert (parent.state, parent.provider) == (JobState.SUCCEEDED, "mj")
    mj.inject("quota", times=5)
    reroll, created = await built.service.act(Caller(OWNER), parent.id, "reroll")
    assert created
    done = await finished.wait(reroll.id)
    assert done.state is JobState.FAILED
    assert done.provider == "mj" and done.tried_providers == []
    assert done.error and "credits" in done.error
    assert _midapi_generates(midapi) == 0


async def test_action_on_a_failed_over_job_goes_to_the_fallback(
    app: tuple[App, Finished], fakes: tuple[MidjourneyApiFake, MidapiFake]
) -> None:
    built, finished = app
    mj, midapi = fakes
    mj.inject("quota", times=5)
    parent = await finished.wait((await built.service.imagine(Caller(OWNER), "a red fox")).id)
    assert parent.provider == "midapi"
    upscale, _ = await built.service.act(Caller(OWNER), parent.id, "upscale", 2)
    done = await finished.wait(upscale.id)
    assert (done.state, done.provider) == (JobState.SUCCEEDED, "midapi")
    assert any(path.endswith("/generateUpscale") for _, path in midapi.requests)
    assert len(mj.submits()) == 1  # the one refused imagine, nothing more
