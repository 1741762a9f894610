"""The webhook receiver end to end: real service + poller + aiohttp server, the provider fakes
POSTing their documented callback bodies to the URL the adapter gave them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.access import Caller
from bot.app import App, build_app, running
from bot.config import parse_config
from bot.domain import Job, JobState, Owner
from tests.fakes._server import FakeServer
from tests.fakes.midjourney_api import MidjourneyApiFake
from tests.fakes.mj_rest import MjRestFake
from tests.providers.contract import AdapterCase
from tests.providers.test_contract import CASES

OWNER = Owner(platform="cli", user_id="tester", name="tester")
WHSEC = "whsec-test"
STATUS_PATHS = ("job-status", "record-info", "/query", "query-mj-tasks", "/v1/jobs", "/fetch", "list-by-")


class Changes:
    """Records every job change and resolves waits on a predicate."""

    def __init__(self) -> None:
        self.seen: list[Job] = []
        self._changed = asyncio.Condition()

    async def job_changed(self, job: Job) -> None:
        async with self._changed:
            self.seen.append(job)
            self._changed.notify_all()

    async def until(self, job_id: str, *states: JobState) -> Job:
        async def reached() -> Job:
            async with self._changed:
                while True:
                    for job in reversed(self.seen):
                        if job.id == job_id:
                            if job.state in states:
                                return job
                            break
                    await self._changed.wait()

        return await asyncio.wait_for(reached(), timeout=10)

    def of(self, job_id: str) -> list[Job]:
        return [job for job in self.seen if job.id == job_id]


def _entry(case: AdapterCase, base_url: str, **knobs: Any) -> dict[str, Any]:
    config = case.make_config(base_url)
    entry: dict[str, Any] = config.model_dump(mode="json", exclude={"api_key", "webhook_secret"})
    assert config.api_key is not None
    return entry | {"api_key": config.api_key.get_secret_value(), "poll_interval": 0.05} | knobs


def _config(tmp_path: Path, entry: dict[str, Any], **webhooks: Any) -> dict[str, Any]:
    return {
        "database": str(tmp_path / "bot.sqlite3"),
        "default_provider": entry["name"],
        "providers": [entry],
        "media": {"allow_private_addresses": True},
        "polling": {"idle_interval": 0.05},
        "webhooks": {"listen": "127.0.0.1:0", "public_url": "http://placeholder", "poll_interval": 60}
        | webhooks,
    }


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, entry: dict[str, Any], **webhooks: Any
) -> AsyncIterator[tuple[App, Changes]]:
    config = parse_config(_config(tmp_path, entry, **webhooks), {})
    async with build_app(config) as app, running(app):
        assert app.webhooks is not None and app.webhooks.port
        # the port is only known once bound: advertise it before any job is handed a URL
        app.webhooks.public_url = f"http://127.0.0.1:{app.webhooks.port}"
        changes = Changes()
        app.listeners.add(changes)
        yield app, changes


def _make_fake(case: AdapterCase) -> FakeServer:
    if case.type == "mj_rest":
        return MjRestFake(job_duration=0.1, webhook_secret=WHSEC)
    return case.make_fake()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.type)
async def test_a_job_completes_by_callback_with_zero_status_polls(case: AdapterCase, tmp_path: Path) -> None:
    async with _make_fake(case) as fake:
        knobs = {"webhook_secret": WHSEC} if case.type == "mj_rest" else {}
        async with serving(tmp_path, _entry(case, fake.base_url, **knobs)) as (app, changes):
            job = await app.service.imagine(Caller(OWNER), "a lighthouse at dusk")
            done = await changes.until(job.id, JobState.SUCCEEDED, JobState.FAILED)
            assert app.webhooks is not None
            delivered = app.webhooks.deliveries["accepted"]
        assert done.state is JobState.SUCCEEDED, done.error
        assert done.result is not None and (done.result.grid_url or done.result.image_urls)
        assert delivered >= 1
        assert app.poller.fetch_requests == 0
        polls = [(m, p) for m, p in fake.requests if any(s in p for s in STATUS_PATHS)]
        assert polls == []


# -- deliveries the receiver must refuse or ignore ---------------------------------------------------


@pytest.fixture
async def quiet_mj(tmp_path: Path) -> AsyncIterator[tuple[MidjourneyApiFake, App, Changes]]:
    """midjourney_api whose own callback never comes during the test and whose polls never finish
    a job: every change the test sees comes from the deliveries it POSTs itself."""
    from tests.providers.test_midjourney_api import CASE

    async with MidjourneyApiFake(hook_delay=30, polls_to_finish=10_000) as fake:
        entry = _entry(CASE, fake.base_url)
        async with serving(tmp_path, entry, max_body_bytes=4096) as (app, changes):
            yield fake, app, changes


async def _submitted(fake: MidjourneyApiFake, app: App, changes: Changes) -> tuple[Job, str]:
    job = await app.service.imagine(Caller(OWNER), "a red fox")
    submitted = await changes.until(job.id, JobState.SUBMITTED)
    [submit] = fake.submits()
    hook = submit.body["hookUrl"]
    assert hook.startswith(f"http://127.0.0.1:{app.webhooks.port if app.webhooks else 0}/hooks/{job.id}/")
    return submitted, hook


def _mj_body(task_id: str, status: int, **fields: Any) -> bytes:
    images = [f"https://cdn.example/{task_id}/{n}.png" for n in range(4)]
    data: dict[str, Any] = {"taskId": task_id, "status": status}
    if status == 1:
        data |= {"images": images, "image": images[0]}
    return json.dumps({"status": 0, "message": "success", "data": data | fields}).encode()


async def _settled(app: App) -> None:
    assert app.webhooks is not None
    await app.webhooks.settled()


async def test_wrong_or_unknown_secret_is_404_and_changes_nothing(
    quiet_mj: tuple[MidjourneyApiFake, App, Changes],
) -> None:
    fake, app, changes = quiet_mj
    job, hook = await _submitted(fake, app, changes)
    base, _, secret = hook.rpartition("/")
    wrong_secret = secret[:-1] + ("y" if secret.endswith("x") else "x")
    body = _mj_body(job.provider_task_id or "", 1)
    async with httpx.AsyncClient() as client:
        wrong = await client.post(f"{base}/{wrong_secret}", content=body)
        unknown = await client.post(hook.replace(job.id, "zzzzzzzz"), content=body)
        missing = await client.post(f"{base}/", content=body)
    assert (wrong.status_code, unknown.status_code, missing.status_code) == (404, 404, 404)
    await _settled(app)
    stored = await app.service.get(job.id)
    assert stored.state is JobState.SUBMITTED and stored.result is None


async def test_malformed_and_oversized_bodies_are_refused(
    quiet_mj: tuple[MidjourneyApiFake, App, Changes],
) -> None:
    fake, app, changes = quiet_mj
    job, hook = await _submitted(fake, app, changes)
    async with httpx.AsyncClient() as client:
        not_json = await client.post(hook, content=b"<html>oops</html>")
        no_task = await client.post(hook, json={"status": 0, "data": {"image": "x"}})
        bad_status = await client.post(hook, content=_mj_body(job.provider_task_id or "", 7))
        too_big = await client.post(hook, content=_mj_body(job.provider_task_id or "", 1, pad="x" * 5000))
    assert [r.status_code for r in (not_json, no_task, bad_status)] == [400, 400, 400]
    assert too_big.status_code == 413
    await _settled(app)
    assert (await app.service.get(job.id)).state is JobState.SUBMITTED


async def test_duplicates_and_out_of_order_deliveries_change_nothing(
    quiet_mj: tuple[MidjourneyApiFake, App, Changes],
) -> None:
    fake, app, changes = quiet_mj
    job, hook = await _submitted(fake, app, changes)
    task_id = job.provider_task_id or ""
    async with httpx.AsyncClient() as client:
        stray = await client.post(hook, content=_mj_body("someone-elses-task", 1))
        await _settled(app)
        assert stray.status_code == 200
        assert (await app.service.get(job.id)).state is JobState.SUBMITTED  # another task: ignored

        assert (await client.post(hook, content=_mj_body(task_id, 1))).status_code == 200
        done = await changes.until(job.id, JobState.SUCCEEDED)
        for late in (_mj_body(task_id, 1), _mj_body(task_id, 0), _mj_body(task_id, 2, failReason="late")):
            assert (await client.post(hook, content=late)).status_code == 200
        await _settled(app)
    stored = await app.service.get(job.id)
    assert stored.state is JobState.SUCCEEDED and stored.error is None
    assert stored.result == done.result and stored.result is not None and len(stored.result.image_urls) == 4
    assert [j.state for j in changes.of(job.id)].count(JobState.SUCCEEDED) == 1


async def test_mj_rest_callbacks_need_a_valid_signature(tmp_path: Path) -> None:
    from tests.providers.test_mj_rest import CASE

    async with MjRestFake(job_duration=30, webhook_secret=WHSEC) as fake:
        entry = _entry(CASE, fake.base_url, webhook_secret=WHSEC)
        async with serving(tmp_path, entry) as (app, changes):
            job = await app.service.imagine(Caller(OWNER), "a red fox")
            job = await changes.until(job.id, JobState.SUBMITTED)
            bodies = [r.body for r in fake.received if isinstance(r.body, dict)]
            [hook] = {body["webhook_url"] for body in bodies if "webhook_url" in body}
            payload = {"event": "job.completed", "job_id": job.provider_task_id, "status": "completed",
                       "progress": 100, "type": "imagine", "timestamp": "2026-01-01T00:00:00Z",
                       "result": {"images": [{"url": "https://cdn.example/grid.png"}]}}  # fmt: skip
            body = json.dumps(payload).encode()
            good = hmac.new(WHSEC.encode(), body, hashlib.sha256).hexdigest()
            async with httpx.AsyncClient() as client:
                unsigned = await client.post(hook, content=body)
                forged = await client.post(hook, content=body, headers={"X-Midjourney-Signature": "0" * 64})
                await _settled(app)
                assert (unsigned.status_code, forged.status_code) == (401, 401)
                assert (await app.service.get(job.id)).state is JobState.SUBMITTED
                signed = await client.post(hook, content=body, headers={"X-Midjourney-Signature": good})
            assert signed.status_code == 200
            done = await changes.until(job.id, JobState.SUCCEEDED)
            assert done.result is not None and done.result.grid_url == "https://cdn.example/grid.png"


async def test_a_lost_callback_only_delays_the_job(tmp_path: Path) -> None:
    """No callback ever arrives: the fallback poll (webhooks.poll_interval) finishes the job."""
    from tests.providers.test_midjourney_api import CASE

    async with MidjourneyApiFake(hook_delay=30, polls_to_finish=1) as fake:
        async with serving(tmp_path, _entry(CASE, fake.base_url), poll_interval=0.2) as (app, changes):
            job = await app.service.imagine(Caller(OWNER), "a red fox")
            done = await changes.until(job.id, JobState.SUCCEEDED)
        assert fake.submits()[0].body["hookUrl"]
        assert app.poller.fetch_requests >= 1 and done.state is JobState.SUCCEEDED


async def test_without_a_webhooks_section_no_callback_url_is_sent(tmp_path: Path) -> None:
    from tests.providers.test_midjourney_api import CASE

    async with MidjourneyApiFake(polls_to_finish=1) as fake:
        document = _config(tmp_path, _entry(CASE, fake.base_url))
        del document["webhooks"]
        async with build_app(parse_config(document, {})) as app, running(app):
            assert app.webhooks is None
            changes = Changes()
            app.listeners.add(changes)
            job = await app.service.imagine(Caller(OWNER), "a red fox")
            await changes.until(job.id, JobState.SUCCEEDED)
        assert "hookUrl" not in fake.submits()[0].body


class EagerHookFake(MidjourneyApiFake):
    """Finishes the job and calls back *before* answering the submit, so the callback arrives while
    the bot does not know the job's task id yet."""

    async def _submit(self, request: Any, kind: str, check: Any) -> Any:
        response = await super()._submit(request, kind, check)
        job = self.jobs[json.loads(response.body)["data"]["taskId"]]
        job.notified = True  # no second, delayed callback
        self._finish(job)
        await self._deliver(job.hook or "", job)
        return response


async def test_a_callback_that_beats_the_submit_answer_is_applied(tmp_path: Path) -> None:
    from tests.providers.test_midjourney_api import CASE

    async with EagerHookFake(polls_to_finish=10_000) as fake:
        async with serving(tmp_path, _entry(CASE, fake.base_url)) as (app, changes):
            job = await app.service.imagine(Caller(OWNER), "a red fox")
            done = await changes.until(job.id, JobState.SUCCEEDED)
            assert app.webhooks is not None
            accepted = app.webhooks.deliveries["accepted"]
        assert fake.callbacks_sent and not fake.callback_errors
        assert accepted == 1 and app.poller.fetch_requests == 0
        assert done.result is not None and len(done.result.image_urls) == 4


async def test_a_burst_of_concurrent_deliveries_ends_in_the_furthest_state(
    quiet_mj: tuple[MidjourneyApiFake, App, Changes],
) -> None:
    fake, app, changes = quiet_mj
    job, hook = await _submitted(fake, app, changes)
    task_id = job.provider_task_id or ""
    bodies = [_mj_body(task_id, 0)] * 5 + [_mj_body(task_id, 1)] + [_mj_body(task_id, 0)] * 5
    async with httpx.AsyncClient() as client:
        answers = await asyncio.gather(*(client.post(hook, content=body) for body in bodies))
    assert {answer.status_code for answer in answers} == {200}
    await _settled(app)
    stored = await app.service.get(job.id)
    assert stored.state is JobState.SUCCEEDED and stored.result is not None
    assert [j.state for j in changes.of(job.id)].count(JobState.SUCCEEDED) == 1


@pytest.mark.parametrize("case", [c for c in CASES if c.type in ("midapi", "mj_proxy", "mj_rest", "ohmygpt")],
                         ids=lambda case: case.type)  # fmt: skip
async def test_button_presses_complete_by_callback_too(case: AdapterCase, tmp_path: Path) -> None:
    async with _make_fake(case) as fake:
        knobs = {"webhook_secret": WHSEC} if case.type == "mj_rest" else {}
        async with serving(tmp_path, _entry(case, fake.base_url, **knobs)) as (app, changes):
            parent = await app.service.imagine(Caller(OWNER), "a lighthouse at dusk")
            await changes.until(parent.id, JobState.SUCCEEDED)
            child, created = await app.service.act(Caller(OWNER), parent.id, "variation", 2)
            done = await changes.until(child.id, JobState.SUCCEEDED, JobState.FAILED)
            assert app.webhooks is not None
            secret = await app.store.callback_secret(child.id, "unused")
        assert created and done.state is JobState.SUCCEEDED, done.error
        assert app.poller.fetch_requests == 0
        assert any(secret in str(request) for request in _bodies(fake)), "the press carried the child's URL"


def _bodies(fake: FakeServer) -> list[Any]:
    received: list[Any] = getattr(fake, "received", [])
    return [getattr(item, "body", item) for item in received]
