"""The mj_rest adapter against its fake; every request it sends is validated against the OpenAPI spec."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from providers.base import (
    Action,
    ActRequest,
    GenerationRequest,
    ImageInput,
    ParentTask,
    PromptParams,
    SubmitAttempt,
    TaskSnapshot,
    TaskStatus,
)
from providers.errors import (
    ProviderAuthError,
    ProviderBusy,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderProtocolError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from providers.mj_rest import Expected, MjRestConfig, MjRestProvider, _Job, pick_job, ref_seed
from tests.fakes._server import HANG_AFTER_CREATE, HookReceiver
from tests.fakes.mj_rest import FAIL_WORD, MjRestFake, png
from tests.providers.contract import (
    GRID_OFFERS,
    KEY,
    PROBE_TIMEOUT,
    AdapterCase,
    adapter_config,
    finish,
    imagine,
    parent_of,
)


def make_config(base_url: str, **overrides: Any) -> MjRestConfig:
    return adapter_config(MjRestConfig, "mjrest", base_url, **overrides)


def _within_spec(server: MjRestFake) -> None:
    assert server.violations == [], "the adapter sent requests the spec does not allow"
    assert server.response_violations == [], "the fake answered outside the spec"


CASE = AdapterCase(
    type="mj_rest",
    make_fake=lambda: MjRestFake(job_duration=0.1),
    make_config=make_config,
    check=_within_spec,
)

IMAGE = ImageInput(data=png("ref", (16, 16)), mime="image/png")


# -- imagine and its buttons ---------------------------------------------------------------------


async def test_imagine_sends_spec_fields_and_returns_grid(
    fake: MjRestFake, provider: MjRestProvider, client: httpx.AsyncClient
) -> None:
    ref = ImageInput(data=b"x", url="https://images.example/ref.png")
    request = GenerationRequest(
        prompt=PromptParams(
            text="a lighthouse at dusk",
            aspect_ratio="16:9",
            version="7",
            quality=0.5,
            stylize=250,
            chaos=10,
            seed=42,
            no="boats",
            weird=5,
        ),
        images=(ref,),
        speed="relax",
    )
    submitted = await provider.submit(request)
    assert submitted.status is TaskStatus.SUBMITTED
    assert uuid.UUID(submitted.task_id)
    [sent] = fake.submitted("/v1/imagine")
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "prompt": "a lighthouse at dusk --weird 5",
        "aspect_ratio": "16:9",
        "model_version": "7.0",
        "quality": 0.5,
        "stylize": 250,
        "chaos": 10,
        "seed": 42,
        "no": "boats",
        "image_url": "https://images.example/ref.png",
        "process_mode": "relax",
    }
    done = await finish(provider, submitted.task_id)
    assert done.status is TaskStatus.SUCCEEDED and done.progress == 100
    assert done.result is not None
    assert done.result.grid_url == f"{fake.base_url}/cdn/{submitted.task_id}/grid.png"
    assert done.result.image_urls == [f"{fake.base_url}/cdn/{submitted.task_id}/{n}.png" for n in range(1, 5)]
    assert (done.result.width, done.result.height) == (128, 128)
    assert set(done.actions) == GRID_OFFERS
    image = await client.get(done.result.image_urls[0])
    assert image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG")


async def test_flags_outside_the_spec_stay_in_the_prompt_text(
    fake: MjRestFake, provider: MjRestProvider
) -> None:
    await provider.submit(imagine("a fox", version="5.1", quality=0.3, stylize=5000, niji="6"))
    [sent] = fake.submitted("/v1/imagine")
    assert sent.body == {"prompt": "a fox --v 5.1 --niji 6 --s 5000 --q 0.3"}


async def test_prompt_checks_happen_before_any_request(fake: MjRestFake, provider: MjRestProvider) -> None:
    with pytest.raises(ProviderRejected, match="4000"):
        await provider.submit(imagine("x" * 4001))
    with pytest.raises(ProviderRejected, match="URL"):
        await provider.submit(GenerationRequest(prompt=PromptParams(text="a"), images=(IMAGE,)))
    with pytest.raises(ProviderRejected):
        await provider.submit(GenerationRequest(kind=Action.SHORTEN, prompt=PromptParams(text="a b c")))
    assert fake.received == []


async def test_upscale_variation_and_reroll(fake: MjRestFake, provider: MjRestProvider) -> None:
    request = imagine(aspect_ratio="1:1")
    grid = await finish(provider, (await provider.submit(request)).task_id)
    parent = parent_of(grid, request, Action.IMAGINE)

    up = await provider.act(parent, ActRequest(action=Action.UPSCALE, index=3))
    assert fake.submitted("/v1/upscale")[0].body == {"job_id": grid.task_id, "index": 3}
    upscaled = await finish(provider, up.task_id)
    assert upscaled.result is not None and upscaled.result.grid_url is None
    assert upscaled.result.image_urls == [f"{fake.base_url}/cdn/{up.task_id}/upscale.png"]
    assert upscaled.actions == {}  # the API has no follow-ups for an upscale

    var = await provider.act(parent, ActRequest(action=Action.VARIATION, index=2))
    assert fake.submitted("/v1/variations")[0].body == {"job_id": grid.task_id, "index": 2}
    varied = await finish(provider, var.task_id)
    assert varied.result is not None and len(varied.result.image_urls) == 4
    assert set(varied.actions) == GRID_OFFERS

    # reroll of a variation runs the same variation again; of an imagine, the same imagine
    var_parent = parent_of(varied, request, Action.VARIATION).model_copy(update={"extra": var.extra})
    await provider.act(var_parent, ActRequest(action=Action.REROLL))
    assert fake.submitted("/v1/variations")[1].body == {"job_id": grid.task_id, "index": 2}
    rerolled = await provider.act(parent, ActRequest(action=Action.REROLL, speed="turbo"))
    assert fake.submitted("/v1/imagine")[1].body == {
        "prompt": "a lighthouse at dusk",
        "aspect_ratio": "1:1",
        "process_mode": "turbo",
    }
    assert (await finish(provider, rerolled.task_id)).status is TaskStatus.SUCCEEDED


async def test_act_rejects_what_the_api_cannot_do(fake: MjRestFake, provider: MjRestProvider) -> None:
    parent = ParentTask(task_id=str(uuid.uuid4()), kind=Action.IMAGINE, request=imagine())
    with pytest.raises(ProviderRejected):
        await provider.act(parent, ActRequest(action=Action.ZOOM_OUT_2X))
    with pytest.raises(ProviderRejected):
        await provider.act(parent, ActRequest(action=Action.UPSCALE, index=5))
    with pytest.raises(ProviderRejected, match="not found"):  # 404 from the API
        await provider.act(parent, ActRequest(action=Action.UPSCALE, index=1))
    assert Action.ZOOM_OUT_2X not in provider.capabilities.actions


# -- describe and blend --------------------------------------------------------------------------


async def test_describe_by_url_and_by_base64(fake: MjRestFake, provider: MjRestProvider) -> None:
    by_url = ImageInput(data=b"x", url="https://images.example/cat.png")
    first = await provider.submit(GenerationRequest(kind=Action.DESCRIBE, images=(by_url,)))
    second = await provider.submit(GenerationRequest(kind=Action.DESCRIBE, images=(IMAGE,)))
    bodies = [r.body for r in fake.submitted("/v1/describe")]
    assert bodies == [{"image_url": "https://images.example/cat.png"}, {"image_base64": IMAGE.base64()}]
    done = await finish(provider, second.task_id)
    assert done.result is not None and len(done.result.prompts) == 4
    assert done.result.prompts[0].startswith("a described scene")
    assert done.actions == {}
    assert (await finish(provider, first.task_id)).status is TaskStatus.SUCCEEDED


async def test_blend(fake: MjRestFake, provider: MjRestProvider) -> None:
    other = ImageInput(data=b"y", url="https://images.example/b.png")
    request = GenerationRequest(
        kind=Action.BLEND, images=(IMAGE, other), dimensions="portrait", prompt=PromptParams(text="merge")
    )
    blend = await provider.submit(request)
    assert fake.submitted("/v1/blend")[0].body == {
        "images": [{"base64": IMAGE.base64()}, {"url": "https://images.example/b.png"}],
        "aspect_ratio": "2:3",
        "prompt": "merge",
    }
    done = await finish(provider, blend.task_id)
    assert done.result is not None and done.result.grid_url and len(done.result.image_urls) == 4
    assert set(done.actions) == GRID_OFFERS
    with pytest.raises(ProviderRejected, match="two to five"):
        await provider.submit(GenerationRequest(kind=Action.BLEND, images=(IMAGE,)))


# -- status --------------------------------------------------------------------------------------


async def test_batch_fetch_uses_one_list_request(fake: MjRestFake, provider: MjRestProvider) -> None:
    ids = [(await provider.submit(imagine(f"scene {n}"))).task_id for n in range(5)]
    unknown = str(uuid.uuid4())
    before = len(fake.received)
    snapshots = await provider.fetch([*ids, unknown, "not-a-uuid"])
    requests = fake.received[before:]
    assert [(r.method, r.path) for r in requests] == [("GET", "/v1/jobs"), ("GET", f"/v1/jobs/{unknown}")]
    assert requests[0].query == {"limit": "100", "sort": "created_at_desc"}
    assert [s.task_id for s in snapshots] == ids
    assert provider.capabilities.batch_fetch == 100


async def test_batch_fetch_gets_what_the_page_missed(fake: MjRestFake, client: httpx.AsyncClient) -> None:
    provider = MjRestProvider(make_config(fake.base_url, list_limit=2), client)
    ids = [(await provider.submit(imagine(f"scene {n}"))).task_id for n in range(4)]
    before = len(fake.received)
    snapshots = await provider.fetch(ids)
    paths = [r.path for r in fake.received[before:]]
    assert paths == ["/v1/jobs", f"/v1/jobs/{ids[0]}", f"/v1/jobs/{ids[1]}"]
    assert [s.task_id for s in snapshots] == ids


async def test_batch_via_list_can_be_turned_off(fake: MjRestFake, client: httpx.AsyncClient) -> None:
    provider = MjRestProvider(make_config(fake.base_url, batch_via_list=False), client)
    assert provider.capabilities.batch_fetch == 1
    ids = [(await provider.submit(imagine(f"scene {n}"))).task_id for n in range(2)]
    before = len(fake.received)
    assert [s.task_id for s in await provider.fetch(ids)] == ids
    assert [r.path for r in fake.received[before:]] == [f"/v1/jobs/{i}" for i in ids]


async def test_progress_is_reported_while_running(fake: MjRestFake, provider: MjRestProvider) -> None:
    fake.job_duration = 0.3
    task = await provider.submit(imagine())
    seen: list[TaskSnapshot] = []
    while not seen or seen[-1].status in (TaskStatus.SUBMITTED, TaskStatus.RUNNING):
        seen.extend(await provider.fetch([task.task_id]))
        await asyncio.sleep(0.03)
    running = [s.progress or 0 for s in seen if s.status is TaskStatus.RUNNING]
    assert running and running == sorted(running) and max(running) >= 25
    assert seen[-1].status is TaskStatus.SUCCEEDED


async def test_failed_generation_is_a_snapshot(fake: MjRestFake, provider: MjRestProvider) -> None:
    task = await provider.submit(imagine(f"please {FAIL_WORD}"))
    done = await finish(provider, task.task_id)
    assert done.status is TaskStatus.FAILED and done.error == "The job failed."
    assert done.result is None and done.actions == {}


async def test_cancel(fake: MjRestFake, provider: MjRestProvider) -> None:
    fake.job_duration = 1.0
    task = await provider.submit(imagine())
    await provider.cancel(task.task_id)
    assert fake.received[-1].path == f"/v1/jobs/{task.task_id}/cancel"
    [snapshot] = await provider.fetch([task.task_id])
    assert snapshot.status is TaskStatus.CANCELLED
    with pytest.raises(ProviderRejected, match="already finished"):
        await provider.cancel(task.task_id)


# -- webhooks ------------------------------------------------------------------------------------


async def test_progress_webhooks_parse_and_replay_harmlessly(
    fake: MjRestFake, provider: MjRestProvider
) -> None:
    async with HookReceiver() as hook:
        url = hook.url("token=s3cret")
        task = await provider.submit(GenerationRequest(prompt=PromptParams(text="a"), callback_url=url))
        assert fake.submitted("/v1/imagine")[0].body == {
            "prompt": "a",
            "webhook_url": url,
            "webhook_type": "progress",
        }
        await hook.wait_for(lambda calls: any(b'"job.completed"' in body for body, _ in calls))
    snapshots = [provider.parse_callback(body, headers) for body, headers in hook.calls]
    assert {s.task_id for s in snapshots} == {task.task_id}
    assert [s.status for s in snapshots[:-1]] == [TaskStatus.RUNNING] * (len(snapshots) - 1)
    assert [s.progress for s in snapshots[:-1]] == [0, 25, 50, 75]
    final = snapshots[-1]
    assert final.status is TaskStatus.SUCCEEDED and final.result and len(final.result.image_urls) == 4
    assert set(final.actions) == GRID_OFFERS
    # duplicate and out-of-order deliveries parse to the same (or an older) snapshot
    body, headers = hook.calls[-1]
    assert provider.parse_callback(body, headers) == final
    assert provider.parse_callback(*hook.calls[1]) == snapshots[1]


async def test_result_webhook_type_sends_only_the_end(fake: MjRestFake, client: httpx.AsyncClient) -> None:
    provider = MjRestProvider(make_config(fake.base_url, webhook_type="result"), client)
    async with HookReceiver() as hook:
        task = await provider.submit(
            GenerationRequest(prompt=PromptParams(text=FAIL_WORD), callback_url=hook.url("token=s3cret"))
        )
        assert fake.submitted("/v1/imagine")[0].body["webhook_type"] == "result"
        await hook.wait_for(lambda calls: len(calls) == 1)
        await asyncio.sleep(0.05)
    [(body, headers)] = hook.calls
    snapshot = provider.parse_callback(body, headers)
    assert (snapshot.task_id, snapshot.status, snapshot.error) == (
        task.task_id,
        TaskStatus.FAILED,
        "The job failed.",
    )


@pytest.mark.parametrize("prefixed", [False, True])
async def test_signed_webhooks(client: httpx.AsyncClient, prefixed: bool) -> None:
    async with MjRestFake(job_duration=0.05, webhook_secret="whsec", signature_prefix=prefixed) as fake:
        config = make_config(fake.base_url, webhook_secret=SecretStr("whsec"), webhook_type="result")
        provider = MjRestProvider(config, client)
        async with HookReceiver() as hook:
            task = await provider.submit(
                GenerationRequest(prompt=PromptParams(text="a"), callback_url=hook.url("token=s3cret"))
            )
            await hook.wait_for(lambda calls: len(calls) == 1)
        [(body, headers)] = hook.calls
        assert headers["X-Midjourney-Signature"].startswith("sha256=") is prefixed
        assert provider.parse_callback(body, headers).task_id == task.task_id
        lower = {k.lower(): v for k, v in headers.items()}
        assert provider.parse_callback(body, lower).status is TaskStatus.SUCCEEDED
        with pytest.raises(ProviderProtocolError, match="signature"):
            provider.parse_callback(body.replace(b"completed", b"cancelled"), headers)
        unsigned = {k: v for k, v in headers.items() if k != "X-Midjourney-Signature"}
        with pytest.raises(ProviderProtocolError, match="signature"):
            provider.parse_callback(body, unsigned)
        assert fake.violations == [] and fake.response_violations == []


async def test_parse_callback_shapes_and_junk(client: httpx.AsyncClient) -> None:
    provider = MjRestProvider(make_config("http://127.0.0.1:9"), client)
    job_id = str(uuid.uuid4())
    progress = {
        "event": "job.progress",
        "job_id": job_id,
        "progress": 40,
        "timestamp": "2025-01-01T00:00:00Z",
    }
    assert provider.parse_callback(json.dumps(progress).encode(), {}).status is TaskStatus.RUNNING
    bare_job = {"id": job_id, "status": "cancelled"}
    assert provider.parse_callback(json.dumps(bare_job).encode(), {}).status is TaskStatus.CANCELLED
    grid_null = {
        "event": "job.completed",
        "job_id": job_id,
        "status": "completed",
        "type": "imagine",
        "result": {
            "images": [{"url": "https://x/grid.png", "index": None}, {"url": "https://x/1.png", "index": 1}]
        },
    }
    done = provider.parse_callback(json.dumps(grid_null).encode(), {})
    assert done.result is not None and done.result.grid_url == "https://x/grid.png"
    assert done.result.image_urls == ["https://x/1.png"]
    for junk in (
        b"",
        b"not json",
        b"[]",
        b'{"job_id": 1}',
        json.dumps({"id": job_id, "status": "odd"}).encode(),
    ):
        with pytest.raises(ProviderProtocolError):
            provider.parse_callback(junk, {})


async def test_signature_is_checked_against_the_raw_body(client: httpx.AsyncClient) -> None:
    provider = MjRestProvider(make_config("http://127.0.0.1:9", webhook_secret=SecretStr("k")), client)
    body = json.dumps({"event": "job.failed", "job_id": str(uuid.uuid4()), "status": "failed"}).encode()
    digest = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert (
        provider.parse_callback(body, {"x-midjourney-signature": digest.upper()}).status is TaskStatus.FAILED
    )
    with pytest.raises(ProviderProtocolError):
        provider.parse_callback(body, {"x-midjourney-signature": "sha256=" + "0" * 64})


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "detail"),
    [
        ("auth", ProviderAuthError, "credentials"),
        ("quota", ProviderQuotaExceeded, "credits"),
        ("busy", ProviderBusy, "rate limiting"),
        ("rate_limited", ProviderRateLimited, "rate limiting"),
        ("unavailable", ProviderUnavailable, "unavailable"),
        ("timeout", ProviderUnavailable, "in time"),
        ("malformed", ProviderProtocolError, "job_id"),
        ("rejected", ProviderRejected, "blocked content: gore"),
    ],
)
async def test_errors_map_to_the_tree(
    fake: MjRestFake, client: httpx.AsyncClient, fault: str, error: type[ProviderError], detail: str
) -> None:
    short = PROBE_TIMEOUT if fault == "timeout" else {}
    provider = MjRestProvider(make_config(fake.base_url, **short), client)
    fake.timeout_delay = 0.45
    fake.inject(fault)
    with pytest.raises(error, match=detail) as caught:
        await provider.submit(imagine())
    assert KEY not in str(caught.value)
    if fault == "rate_limited":
        assert isinstance(caught.value, ProviderRateLimited) and caught.value.retry_after == 2
    if fault == "busy":
        assert isinstance(caught.value, ProviderBusy) and caught.value.retry_after == 3


async def test_a_429_saying_the_quota_is_spent_is_out_of_credits(
    fake: MjRestFake, client: httpx.AsyncClient
) -> None:
    """The status says "slow down", the body's code says the account is out of credits: the code wins,
    so the user hears that instead of waiting out busy_wait (and failover can move on at once)."""
    provider = MjRestProvider(make_config(fake.base_url), client)
    fake.inject("quota_429")
    with pytest.raises(ProviderError) as caught:
        await provider.submit(imagine())
    assert type(caught.value) is ProviderQuotaExceeded
    assert caught.value.message == "The provider account is out of credits."
    fake.inject("rate_limited")  # a 429 with any other code is still a rate limit
    with pytest.raises(ProviderRateLimited):
        await provider.submit(imagine())
    assert len(fake.submitted("/v1/imagine")) == 2 and fake.jobs == {}


async def test_a_wrong_key_is_an_auth_error(fake: MjRestFake, client: httpx.AsyncClient) -> None:
    provider = MjRestProvider(make_config(fake.base_url, api_key=SecretStr("wrong")), client)
    with pytest.raises(ProviderAuthError) as caught:
        await provider.fetch([str(uuid.uuid4()), str(uuid.uuid4())])
    assert "wrong" not in caught.value.message


async def test_the_fake_really_validates(fake: MjRestFake, client: httpx.AsyncClient) -> None:
    """Guard for the guard: a request outside the spec is refused and recorded."""
    bad = await client.post(
        f"{fake.base_url}/v1/upscale",
        json={"job_id": "nope", "index": 9},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert bad.status_code == 400
    assert len(fake.violations) == 1 and "uuid" in fake.violations[0]
    fake.violations.clear()


# -- reconcile: a job found again in GET /v1/jobs ------------------------------------------------


def _lost_at(fake: MjRestFake, client: httpx.AsyncClient, **config: Any) -> MjRestProvider:
    """The adapter whose next request `fake` holds the answer of (HANG_AFTER_CREATE) and that gives
    up on it; only that request gets the short timeout, as any other might miss it on a busy machine."""
    fake.inject(HANG_AFTER_CREATE)
    return MjRestProvider(make_config(fake.base_url, **PROBE_TIMEOUT, **config), client)


def _attempt(ref: str, started: float, kind: Action = Action.IMAGINE, **fields: Any) -> SubmitAttempt:
    return SubmitAttempt(client_ref=ref, kind=kind, started_at=started, **fields)


async def test_an_imagine_with_a_client_ref_carries_a_seed_of_its_own(
    fake: MjRestFake, provider: MjRestProvider, client: httpx.AsyncClient
) -> None:
    request = imagine()
    grid = await finish(
        provider, (await provider.submit(request.model_copy(update={"client_ref": "a"}))).task_id
    )
    await provider.submit(imagine(seed=7).model_copy(update={"client_ref": "b"}))  # the user's seed wins
    await provider.act(parent_of(grid, request), ActRequest(action=Action.REROLL, client_ref="c"))
    untagged = MjRestProvider(make_config(fake.base_url, seed_tag=False), client)
    await untagged.submit(request.model_copy(update={"client_ref": "d"}))
    seeds = [r.body.get("seed") for r in fake.submitted("/v1/imagine")]
    assert seeds == [ref_seed("a"), 7, ref_seed("c"), None]  # a reroll is a new picture, not a copy
    assert [fake.jobs[i].data["parameters"].get("seed") for i in fake.created_ids()] == seeds


async def test_a_lost_imagine_is_told_apart_by_its_seed(
    fake: MjRestFake, provider: MjRestProvider, client: httpx.AsyncClient
) -> None:
    started = time.time()
    await provider.submit(imagine().model_copy(update={"client_ref": "answered"}))
    with pytest.raises(ProviderOutcomeUnknown):
        await _lost_at(fake, client).submit(imagine().model_copy(update={"client_ref": "lost"}))
    prompt = imagine().prompt.full()  # type: ignore[union-attr]
    found = await provider.reconcile(_attempt("lost", started, prompt=prompt))
    assert found is not None and found.task_id == fake.created_ids()[1]
    assert await provider.reconcile(_attempt("never-sent", started, prompt=prompt)) is None
    # with a --seed of the user's, the prompt and the time tell (and the same twice cannot)
    user = imagine(seed=9).model_copy(update={"client_ref": "s1"})
    with pytest.raises(ProviderOutcomeUnknown):
        await _lost_at(fake, client).submit(user)
    seeded = _attempt("s1", started, prompt=user.prompt.full())  # type: ignore[union-attr]
    assert (await provider.reconcile(seeded)).task_id == fake.created_ids()[2]  # type: ignore[union-attr]
    await provider.submit(user.model_copy(update={"client_ref": "s2"}))
    with pytest.raises(ProviderUnavailable, match="several"):
        await provider.reconcile(seeded)


async def test_without_seed_tags_the_prompt_and_time_decide(
    fake: MjRestFake, provider: MjRestProvider, client: httpx.AsyncClient
) -> None:
    untagged = MjRestProvider(make_config(fake.base_url, seed_tag=False), client)
    started = time.time()
    request = imagine("a red fox", aspect_ratio="3:2", version="7", weird=5)
    await untagged.submit(imagine("a blue whale").model_copy(update={"client_ref": "other"}))
    with pytest.raises(ProviderOutcomeUnknown):
        await _lost_at(fake, client, seed_tag=False).submit(request.model_copy(update={"client_ref": "fox"}))
    assert fake.jobs[fake.created_ids()[1]].data["prompt"] == "a red fox --weird 5"  # flags went to fields
    lost = _attempt("fox", started, prompt=request.prompt.full())  # type: ignore[union-attr]
    found = await untagged.reconcile(lost)
    assert found is not None and found.task_id == fake.created_ids()[1]
    assert await untagged.reconcile(lost.model_copy(update={"started_at": started + 3600})) is None
    await untagged.submit(request.model_copy(update={"client_ref": "fox-again"}))
    with pytest.raises(ProviderUnavailable, match="several"):  # two alike: never a guess
        await untagged.reconcile(lost)


async def test_a_submit_sent_without_a_key_is_matched_by_prompt_and_time(
    fake: MjRestFake, provider: MjRestProvider, client: httpx.AsyncClient
) -> None:
    started = time.time()
    with pytest.raises(ProviderOutcomeUnknown):
        await _lost_at(fake, client).submit(imagine())  # no client_ref: no seed either
    assert "seed" not in fake.submitted("/v1/imagine")[0].body
    keyless = _attempt("", started, prompt=imagine().prompt.full())  # type: ignore[union-attr]
    found = await provider.reconcile(keyless)
    assert found is not None and found.task_id == fake.created_ids()[0]


async def test_a_lost_button_press_is_found_by_its_parent(
    fake: MjRestFake, provider: MjRestProvider, client: httpx.AsyncClient
) -> None:
    fox, whale = imagine("a red fox"), imagine("a blue whale")
    grids = [await finish(provider, (await provider.submit(r)).task_id) for r in (fox, whale)]
    started = time.time()
    await provider.act(parent_of(grids[1], whale), ActRequest(action=Action.UPSCALE, index=1))
    lost_press = ActRequest(action=Action.UPSCALE, index=2, client_ref="u2")
    with pytest.raises(ProviderOutcomeUnknown):
        await _lost_at(fake, client).act(parent_of(grids[0], fox), lost_press)
    lost = _attempt("u2", started, Action.UPSCALE, parent_task_id=grids[0].task_id, index=2)
    found = await provider.reconcile(lost)
    assert found is not None and found.task_id == fake.created_ids()[3]
    variation = lost.model_copy(update={"kind": Action.VARIATION})
    assert await provider.reconcile(variation) is None  # no variation of the fox was made
    unknown_parent = lost.model_copy(update={"parent_task_id": str(uuid.uuid4())})
    assert await provider.reconcile(unknown_parent) is None  # the API refuses such a press
    await provider.act(parent_of(grids[0], fox), ActRequest(action=Action.UPSCALE, index=4))
    with pytest.raises(ProviderUnavailable, match="several"):  # which of the fox's upscales?
        await provider.reconcile(lost)


async def test_a_lost_reroll_is_found_by_its_seed(
    fake: MjRestFake, provider: MjRestProvider, client: httpx.AsyncClient
) -> None:
    request = imagine()
    grid = await finish(provider, (await provider.submit(request)).task_id)
    started = time.time()
    await provider.act(parent_of(grid, request), ActRequest(action=Action.REROLL, client_ref="r1"))
    with pytest.raises(ProviderOutcomeUnknown):
        await _lost_at(fake, client).act(
            parent_of(grid, request), ActRequest(action=Action.REROLL, client_ref="r2")
        )
    lost = _attempt("r2", started, Action.REROLL, parent_task_id=grid.task_id)
    found = await provider.reconcile(lost)
    assert found is not None and found.task_id == fake.created_ids()[2]


async def test_a_lost_remix_press_is_found_as_the_imagine_it_sent(
    fake: MjRestFake, provider: MjRestProvider, client: httpx.AsyncClient
) -> None:
    """/v1/variations takes no prompt: a Remix V2 went out as an imagine of the edited prompt, and is
    looked for as one (by its seed), not as a variation of the parent."""
    request = imagine()
    grid = await finish(provider, (await provider.submit(request)).task_id)
    started = time.time()
    edited = PromptParams(text="a green frog")
    press = ActRequest(action=Action.VARIATION, index=2, prompt=edited.full(), remix=edited, client_ref="rx")
    with pytest.raises(ProviderOutcomeUnknown):
        await _lost_at(fake, client).act(parent_of(grid, request), press)
    sent = fake.submitted("/v1/imagine")[-1].body
    assert sent["prompt"] == "a green frog" and fake.submitted("/v1/variations") == []
    lost = _attempt("rx", started, Action.VARIATION, parent_task_id=grid.task_id, index=2,
                    prompt=edited.full(), remix=True)
    found = await provider.reconcile(lost)
    assert found is not None and found.task_id == fake.created_ids()[-1]
    assert await provider.reconcile(lost.model_copy(update={"remix": False})) is None  # no variation made


async def test_reconcile_pages_back_to_the_attempt(fake: MjRestFake, client: httpx.AsyncClient) -> None:
    provider = MjRestProvider(make_config(fake.base_url, list_limit=2), client)
    started = time.time()
    with pytest.raises(ProviderOutcomeUnknown):
        await _lost_at(fake, client).submit(GenerationRequest(kind=Action.DESCRIBE, images=(IMAGE,)))
    for n in range(4):
        await provider.submit(imagine(f"later {n}").model_copy(update={"client_ref": f"later-{n}"}))
    found = await provider.reconcile(_attempt("describe", started, Action.DESCRIBE))
    assert found is not None and found.task_id == fake.created_ids()[0]
    pages = [r.query.get("offset") for r in fake.received if r.method == "GET" and r.path == "/v1/jobs"]
    assert pages == [None, "2", "4"]


def _job(seed: int | None, prompt: str, created: str, kind: str = "imagine") -> _Job:
    data = {"id": str(uuid.uuid4()), "status": "pending", "type": kind, "prompt": prompt}
    return _Job.model_validate(data | {"parameters": {"seed": seed}, "created_at": created})


def test_pick_job_rules() -> None:
    at = 1_760_000_000.0  # 2025-10-09T08:53:20Z
    window = (at - 60, at + 65)
    ours = _job(ref_seed("k"), "a fox", "2025-10-09T08:53:21Z")
    alike = _job(12, "a fox", "2025-10-09T08:53:22Z")
    expected = Expected(
        frozenset({"imagine"}), window, ref_seed("k"), own_seed=True, seed_known=True, prompt="a fox --v 7"
    )
    assert pick_job([alike, ours], expected) == ours
    assert pick_job([alike], expected) is None  # another seed: not ours
    weak = Expected(frozenset({"imagine"}), window, prompt="https://x/y.png a fox --ar 3:2")
    assert pick_job([alike], weak) == alike  # the echoed prompt lost its image URL and --ar
    assert pick_job([_job(None, "a wolf", "2025-10-09T08:53:22Z")], weak) is None
    assert pick_job([_job(None, "a fox", "2025-10-09T07:00:00Z")], weak) is None  # long before
    assert pick_job([_job(None, "a fox", "2025-10-09T08:53:22Z", "upscale")], weak) is None
    with pytest.raises(ProviderUnavailable):
        pick_job([alike, _job(None, "a fox", "2025-10-09T08:54:00Z")], weak)
