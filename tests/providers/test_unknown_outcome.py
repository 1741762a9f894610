"""Submits whose outcome the bot never learns, through the real service + poller against the fakes.

The fake creates the task and never answers (HANG_AFTER_CREATE), so the bot's request times out not
knowing whether it was charged. A provider that can be asked (mj_proxy: the attempt key rides in
`state`) is asked and its task adopted; one that can't (midjourney_api) is failed and refunded, or
sent again only where the operator chose `resubmit_unknown: true`. A provider's Retry-After holds
every request to it, polls included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.access import Caller
from bot.app import App, build_app, running
from bot.config import parse_config
from bot.domain import JobState
from tests.fakes._server import HANG_AFTER_CREATE
from tests.fakes.midjourney_api import STATUS, MidjourneyApiFake
from tests.fakes.mj_proxy import MjProxyFake
from tests.providers.test_failover import OWNER, Finished


def _config(tmp_path: Path, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "database": str(tmp_path / "bot.sqlite3"),
        "default_provider": entry["name"],
        "providers": [{"api_key": "test-key", "poll_interval": 0.05, "request_timeout": 0.5, **entry}],
        "media": {"allow_private_addresses": True},
        "polling": {"idle_interval": 0.05, "backoff_base": 0.05, "reconcile_delay": 0.1},
    }


@pytest.fixture
async def app_for(tmp_path: Path) -> AsyncIterator[Any]:
    """Builds and runs the bot for one provider entry (the test starts the fake first)."""
    async with contextlib.AsyncExitStack() as stack:

        async def build(entry: dict[str, Any]) -> tuple[App, Finished]:
            built = await stack.enter_async_context(build_app(parse_config(_config(tmp_path, entry), {})))
            await stack.enter_async_context(running(built))
            finished = Finished()
            built.listeners.add(finished)
            return built, finished

        yield build


async def _charge(app: App, job_id: str) -> Any:
    charge = await app.service.quotas.ledger.get(job_id)
    assert charge is not None
    return charge


async def test_an_unanswered_submit_without_a_lookup_is_failed_and_refunded(app_for: Any) -> None:
    async with MidjourneyApiFake(polls_to_finish=1) as fake:
        app, finished = await app_for({"name": "mj", "type": "midjourney_api", "base_url": fake.base_url})
        fake.inject(HANG_AFTER_CREATE)
        job = await app.service.imagine(Caller(OWNER), "a lighthouse that never answers")
        done = await finished.wait(job.id)
        assert done.state is JobState.FAILED
        assert "to avoid charging twice it was not sent again" in (done.error or "")
        assert len(fake.submits()) == 1 and len(fake.created_ids()) == 1
        assert (await _charge(app, job.id)).refunded_at is not None


async def test_resubmit_unknown_sends_it_again(app_for: Any) -> None:
    async with MidjourneyApiFake(polls_to_finish=1) as fake:
        entry = {"name": "mj", "type": "midjourney_api", "base_url": fake.base_url, "resubmit_unknown": True}
        app, finished = await app_for(entry)
        fake.inject(HANG_AFTER_CREATE)
        job = await app.service.imagine(Caller(OWNER), "a lighthouse sent twice on purpose")
        done = await finished.wait(job.id)
        assert done.state is JobState.SUCCEEDED
        assert len(fake.submits()) == 2  # the operator's choice: the first task is orphaned
        assert done.provider_task_id == fake.created_ids()[-1]


async def test_an_unanswered_submit_is_found_at_the_provider_and_adopted(app_for: Any) -> None:
    async with MjProxyFake() as fake:
        app, finished = await app_for({"name": "proxy", "type": "mj_proxy", "base_url": fake.base_url,
                                       "api_key": "test-secret"})  # fmt: skip
        fake.inject(HANG_AFTER_CREATE)
        job = await app.service.imagine(Caller(OWNER), "a lighthouse found again")
        done = await finished.wait(job.id)
        assert done.state is JobState.SUCCEEDED
        assert fake.created_ids() == [done.provider_task_id]  # one task, and it is the job's
        assert (await _charge(app, job.id)).refunded_at is None


async def test_a_retry_after_on_a_submit_holds_the_polls_too(app_for: Any) -> None:
    async with MidjourneyApiFake(polls_to_finish=10_000) as fake:
        app, _ = await app_for({"name": "mj", "type": "midjourney_api", "base_url": fake.base_url,
                                "max_concurrency": 5})  # fmt: skip
        running_job = await app.service.imagine(Caller(OWNER), "a lighthouse that keeps running")
        for _ in range(100):
            if (await app.service.get(running_job.id)).state is JobState.SUBMITTED and _polls(fake) >= 2:
                break
            await asyncio.sleep(0.02)
        fake.inject("rate_limited")  # answered 429 with Retry-After: 2
        await app.service.imagine(Caller(OWNER), "a lighthouse asked too soon")
        for _ in range(100):
            if app.pool.resume_at("mj") is not None:
                break
            await asyncio.sleep(0.02)
        resume = app.pool.resume_at("mj")
        assert resume is not None
        polls = _polls(fake)
        await asyncio.sleep(1.0)  # inside the provider's 2 s window: nothing goes out
        assert _polls(fake) == polls and len(fake.submits()) == 2
        status = next(s for s in await app.service.provider_status() if s.name == "mj")
        assert status.rate_limited_until == resume


def _polls(fake: MidjourneyApiFake) -> int:
    return sum(1 for method, path in fake.requests if method == "POST" and path == STATUS)


async def test_a_retry_after_on_a_poll_holds_the_submits_too(app_for: Any) -> None:
    async with MidjourneyApiFake(polls_to_finish=10_000) as fake:
        app, _ = await app_for({"name": "mj", "type": "midjourney_api", "base_url": fake.base_url,
                                "max_concurrency": 5})  # fmt: skip
        first = await app.service.imagine(Caller(OWNER), "a lighthouse polled too often")
        for _ in range(100):
            if (await app.service.get(first.id)).state is JobState.SUBMITTED:
                break
            await asyncio.sleep(0.02)
        fake.status_faults.append("rate_limited")  # the next status call: 429 with Retry-After: 2
        for _ in range(150):
            if app.pool.resume_at("mj") is not None:
                break
            await asyncio.sleep(0.02)
        assert app.pool.resume_at("mj") is not None
        second = await app.service.imagine(Caller(OWNER), "a lighthouse that must wait its turn")
        await asyncio.sleep(1.0)  # inside the provider's 2 s window: its submit waits
        assert len(fake.submits()) == 1
        assert (await app.service.get(second.id)).state is JobState.QUEUED
