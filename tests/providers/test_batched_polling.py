"""Batched status: jobs submitted a moment apart share one status call (the poller takes jobs due
within half an interval along when it calls a batched provider anyway); per-task providers don't."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.access import Caller
from bot.app import build_app
from bot.config import parse_config
from bot.domain import JobState, Owner
from tests.fakes._server import FakeServer
from tests.fakes.midapi import MidapiFake
from tests.fakes.midjourney_api import STATUS, MidjourneyApiFake

OWNER = Owner(platform="cli", user_id="tester", name="tester")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _document(tmp_path: Path, kind: str, base_url: str) -> dict[str, Any]:
    return {
        "database": str(tmp_path / "bot.sqlite3"),
        "default_provider": "p",
        "providers": [
            {"name": "p", "type": kind, "base_url": base_url, "api_key": "test-key", "poll_interval": 1.0}
        ],
        "media": {"allow_private_addresses": True},
    }


def _app(tmp_path: Path, fake: FakeServer, clock: Clock, kind: str = "midjourney_api") -> Any:
    return build_app(parse_config(_document(tmp_path, kind, fake.base_url), {}), clock=clock)


async def test_jobs_a_moment_apart_share_one_status_call(tmp_path: Path) -> None:
    clock = Clock()
    async with MidjourneyApiFake(polls_to_finish=1) as fake, _app(tmp_path, fake, clock) as app:
        first = await app.service.imagine(Caller(OWNER), "a red fox")
        await app.poller.tick()  # submits the first
        clock.now += 0.3
        second = await app.service.imagine(Caller(OWNER), "a grey wolf")
        await app.poller.tick()  # submits the second
        clock.now += 0.75  # the first is due; the second is 0.25 s from due (within half an interval)
        await app.poller.tick()
        states = [(await app.service.get(job.id)).state for job in (first, second)]
    status_calls = [r.body["taskIds"] for r in fake.received if r.path == STATUS]
    assert len(status_calls) == 1 and len(status_calls[0]) == 2
    assert states == [JobState.SUCCEEDED, JobState.SUCCEEDED]
    assert app.poller.fetch_requests == 1


async def test_a_job_far_from_due_is_not_polled_early(tmp_path: Path) -> None:
    clock = Clock()
    async with MidjourneyApiFake(polls_to_finish=1) as fake, _app(tmp_path, fake, clock) as app:
        await app.service.imagine(Caller(OWNER), "a red fox")
        await app.poller.tick()
        clock.now += 0.9
        late = await app.service.imagine(Caller(OWNER), "a grey wolf")
        await app.poller.tick()  # nothing due yet: no status call
        clock.now += 0.2  # the first is due; the second is 0.9 s away (more than half an interval)
        await app.poller.tick()
        assert (await app.service.get(late.id)).state is JobState.SUBMITTED
    status_calls = [r.body["taskIds"] for r in fake.received if r.path == STATUS]
    assert [len(ids) for ids in status_calls] == [1]


async def test_a_per_task_provider_polls_only_what_is_due(tmp_path: Path) -> None:
    clock = Clock()
    async with MidapiFake(duration=0.0) as fake, _app(tmp_path, fake, clock, "midapi") as app:
        await app.service.imagine(Caller(OWNER), "a red fox")
        await app.poller.tick()
        clock.now += 0.3
        await app.service.imagine(Caller(OWNER), "a grey wolf")
        await app.poller.tick()
        clock.now += 0.75
        await app.poller.tick()
    assert sum(1 for _, path in fake.requests if path.endswith("/record-info")) == 1
