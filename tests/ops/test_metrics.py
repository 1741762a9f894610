"""/metrics and /healthz scraped over HTTP after a real scenario show the right counts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.access import Caller
from bot.app import App, build_app, running
from bot.config import parse_config
from bot.delivery import Delivery, Rate, RetryAfter
from bot.domain import JobState, Owner
from tests.fakes.midjourney_api import MidjourneyApiFake
from tests.ops.conftest import ADA, GROUP
from tests.providers.test_failover import Finished


def _document(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    fast = {"duration": 0.05, "grid_size": 128, "poll_interval": 0.05}
    return {
        "database": str(tmp_path / "bot.sqlite3"),
        "providers": [
            {"name": "local", "type": "local", "fail_word": "kaboom", **fast},
            {"name": "flaky", "type": "local", "submit_error": "busy", "submit_error_count": 1,
             "error_retry_after": 0.05, **fast},
        ],
        "polling": {"idle_interval": 0.05, "backoff_base": 0.05},
        **extra,
    }  # fmt: skip


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@dataclass
class Running:
    app: App
    finished: Finished
    base: str


@pytest.fixture
async def bot(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    extra = getattr(request, "param", {"metrics": {"listen": "127.0.0.1:0"}})
    async with build_app(parse_config(_document(tmp_path, **extra), {})) as app, running(app):
        finished = Finished()
        app.listeners.add(finished)
        server = app.webhooks or app.metrics_server
        assert server is not None
        yield Running(app, finished, f"http://127.0.0.1:{server.port}")


class _Chat:
    """A frontend as /healthz sees it."""

    def __init__(self, name: str, connected: bool) -> None:
        self.name = name
        self.connected = connected


async def _deliveries(bot: Running) -> None:
    """A frontend's Delivery: three edits sent, one 429 honoured on the way."""
    limited = [True]

    async def send(message: str, payload: str) -> None:
        if limited.pop() if limited else False:
            raise RetryAfter(0.01)

    delivery: Delivery[str] = Delivery(send, lambda chat: Rate(100, 1.0), Rate(100, 1.0))
    bot.app.metrics.watch_delivery("telegram", delivery)
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(delivery.run())
        for i in range(3):
            delivery.push("chat", f"m{i}", f"state {i}", i, final=True)
        await asyncio.wait_for(delivery.flush(), timeout=5)
        runner.cancel()


async def test_scrape_after_a_scenario(bot: Running) -> None:
    service = bot.app.service
    jobs = [await service.imagine(Caller(ADA, scope=GROUP), "a lighthouse"),
            await service.imagine(Caller(ADA, scope=GROUP), "kaboom"),
            await service.imagine(Caller(ADA, scope=GROUP), "a harbour", provider="flaky")]  # fmt: skip
    ended = [await bot.finished.wait(job.id) for job in jobs]
    assert [job.state for job in ended] == [JobState.SUCCEEDED, JobState.FAILED, JobState.SUCCEEDED]
    await _deliveries(bot)
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{bot.base}/metrics")
        health = (await http.get(f"{bot.base}/healthz")).json()
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    got = samples(answer.text)
    assert got[("imagine_jobs", (("provider", "local"), ("state", "succeeded")))] == 1
    assert got[("imagine_jobs", (("provider", "local"), ("state", "failed")))] == 1
    assert got[("imagine_jobs", (("provider", "flaky"), ("state", "succeeded")))] == 1
    submits = ("imagine_provider_request_seconds_count", (("operation", "submit"), ("provider", "flaky")))
    assert got[submits] == 2  # refused busy once, then accepted
    busy = ("imagine_provider_errors_total", (("error", "ProviderBusy"), ("operation", "submit"),
                                              ("provider", "flaky")))  # fmt: skip
    assert got[busy] == 1
    assert ("imagine_provider_errors_total", (("error", "ProviderBusy"), ("operation", "submit"),
                                              ("provider", "local"))) not in got  # fmt: skip
    assert got[("imagine_platform_edits_total", (("outcome", "sent"), ("platform", "telegram")))] == 3
    assert got[("imagine_platform_rate_limited_total", (("platform", "telegram"),))] == 1
    assert health["ok"] is True and health["store"] is True
    assert health["providers"]["local"]["last_success_age"] is not None
    worker = bot.app.worker.id
    assert health["worker"] == {"id": worker, "leases": 0}  # SQLite: one process, no leases
    assert got[("imagine_worker_leases", (("worker", worker),))] == 0
    assert got[("imagine_worker_info", (("shards", ""), ("worker", worker)))] == 1


async def test_healthz_reports_a_disconnected_frontend(bot: Running) -> None:
    bot.app.health.frontends.extend([_Chat("telegram", True), _Chat("discord", False)])
    async with httpx.AsyncClient() as http:
        answer = await http.get(f"{bot.base}/healthz")
    assert answer.status_code == 503
    assert answer.json()["frontends"] == {"telegram": True, "discord": False}


@pytest.mark.parametrize("bot", [{"webhooks": {"listen": "127.0.0.1:0", "public_url": "http://127.0.0.1"}}],
                         indirect=True)
async def test_metrics_beside_the_webhook_receiver(bot: Running) -> None:
    assert bot.app.metrics_server is None
    async with httpx.AsyncClient() as http:
        refused = await http.post(f"{bot.base}/hooks/nosuchjob/secret", content=b"{}")
        got = samples((await http.get(f"{bot.base}/metrics")).text)
    assert refused.status_code == 404
    assert got[("imagine_webhook_deliveries_total", (("outcome", "unknown"),))] == 1


async def test_the_log_says_which_provider_refused_with_what_status_and_words(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A refused submit: the member reads the provider's reason; the operators' log also names the
    provider as configured, the HTTP status and the provider's own words (not just a class name)."""
    async with MidjourneyApiFake() as fake:
        config = parse_config({
            "database": str(tmp_path / "bot.sqlite3"), "default_provider": "mj",
            "providers": [{"name": "mj", "type": "midjourney_api", "base_url": fake.base_url,
                           "api_key": "test-key"}]}, {})  # fmt: skip
        fake.inject("rejected")
        async with build_app(config, serve_http=False) as app:
            job = await app.service.imagine(Caller(Owner(platform="cli", user_id="u", name="U")), "a harbour")
            with caplog.at_level(logging.WARNING, logger="bot.runner"):
                await app.poller.tick()
            failed = await app.service.get(job.id)
    assert failed.error and "Banned prompt detected" in failed.error and "HTTP" not in failed.error
    logged = [r.getMessage() for r in caplog.records if job.id in r.getMessage()]
    assert logged == [f"job {job.id} failed at submit on mj: "
                      "ProviderRejected from mj (HTTP 400: Banned prompt detected)"]
