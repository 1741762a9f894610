"""midjourney-api.com Midjourney adapter against its loopback fake, through the real httpx client."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from providers import PROVIDERS
from providers.base import (
    Action,
    ActRequest,
    GenerationRequest,
    ImageInput,
    ParentTask,
    PromptParams,
    TaskStatus,
)
from providers.errors import (
    ProviderAuthError,
    ProviderBusy,
    ProviderProtocolError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from providers.midjourney_api import (
    MidjourneyApiConfig,
    MidjourneyApiProvider,
    job_items,
    job_snapshot,
    unwrap,
)
from tests.fakes.midjourney_api import STATUS, SUBMIT, CallbackReceiver, MidjourneyApiFake
from tests.providers.contract import KEY, AdapterCase, adapter_config, finish, parent_of


def make_config(base_url: str, **overrides: Any) -> MidjourneyApiConfig:
    return adapter_config(MidjourneyApiConfig, "mj", base_url, **overrides)


CASE = AdapterCase(type="midjourney_api", make_fake=MidjourneyApiFake, make_config=make_config)


def _provider(fake: MidjourneyApiFake, client: httpx.AsyncClient, **overrides: Any) -> MidjourneyApiProvider:
    return MidjourneyApiProvider(make_config(fake.base_url, **overrides), client)


def _imagine(text: str = "a lighthouse at dusk", **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(prompt=PromptParams(text=text, aspect_ratio="16:9", version="7"), **kwargs)


def test_registered_with_truthful_capabilities() -> None:
    assert PROVIDERS["midjourney_api"] is MidjourneyApiProvider
    caps = MidjourneyApiProvider.capabilities
    assert caps.actions == {Action.IMAGINE, Action.UPSCALE, Action.REROLL}
    assert caps.webhooks and not caps.progress and not caps.preview and not caps.cancel
    assert not caps.can(Action.VARIATION) and not caps.can(Action.DESCRIBE) and not caps.can(Action.BLEND)


async def test_imagine_polls_to_a_grid_of_four(fake: MidjourneyApiFake, client: httpx.AsyncClient) -> None:
    provider = _provider(fake, client)
    request = _imagine(speed="relax")
    submitted = await provider.submit(request)
    assert submitted.status is TaskStatus.SUBMITTED and submitted.task_id in fake.jobs

    (running,) = await provider.fetch([submitted.task_id])
    assert running.status is TaskStatus.RUNNING and running.progress is None
    done = await finish(provider, submitted.task_id, tries=10, pause=0)

    assert done.result is not None
    assert done.result.grid_url == f"{fake.base_url}/cdn/{done.task_id}/grid.png"
    assert done.result.image_urls == [f"{fake.base_url}/cdn/{done.task_id}/{n}.png" for n in range(4)]
    assert (done.result.width, done.result.height) == (1024, 1024)
    assert set(done.actions) == {"upscale:1", "upscale:2", "upscale:3", "upscale:4", "reroll:0"}
    assert done.extra["prompt"] == "a lighthouse at dusk --ar 16:9 --v 7"

    sent = fake.submits()[0]
    assert sent.path == SUBMIT and sent.headers["API-KEY"] == KEY
    assert sent.body == {"prompt": "a lighthouse at dusk --ar 16:9 --v 7", "mode": "relaxed"}
    image = await client.get(done.result.image_urls[2])
    assert image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG")
    assert provider.trusts_url(done.result.grid_url)


async def test_mode_timeout_and_hook_are_sent(fake: MidjourneyApiFake, client: httpx.AsyncClient) -> None:
    provider = _provider(fake, client, default_mode="relaxed", generation_timeout=900)
    await provider.submit(_imagine(callback_url="http://127.0.0.1:9/hook"))
    await provider.submit(_imagine(speed="fast"))
    await provider.submit(_imagine(speed="turbo"))
    first, second, third = (r.body for r in fake.submits())
    assert first == {
        "prompt": "a lighthouse at dusk --ar 16:9 --v 7",
        "mode": "relaxed",
        "timeout": 900,
        "hookUrl": "http://127.0.0.1:9/hook",
    }
    assert second["mode"] == "fast" and third["mode"] == "fast"


def test_generation_timeout_is_bounded_by_the_documented_range() -> None:
    for bad in (299, 1201):
        with pytest.raises(ValidationError):
            make_config("http://x", generation_timeout=bad)
    assert make_config("http://x").default_mode == "fast"


async def test_upscale_is_served_from_stored_images_without_a_call(
    fake: MidjourneyApiFake, client: httpx.AsyncClient
) -> None:
    provider = _provider(fake, client)
    request = _imagine()
    done = await finish(provider, (await provider.submit(request)).task_id, tries=10, pause=0)
    calls = len(fake.requests)

    upscaled = await provider.act(parent_of(done, request), ActRequest(action=Action.UPSCALE, index=2))

    assert len(fake.requests) == calls
    assert upscaled.status is TaskStatus.SUCCEEDED and upscaled.task_id == f"{done.task_id}:u2"
    assert upscaled.result is not None and done.result is not None
    assert upscaled.result.image_urls == [done.result.image_urls[1]] and upscaled.result.grid_url is None
    assert upscaled.actions == {}
    # a locally served upscale is never polled
    assert await provider.fetch([upscaled.task_id]) == []
    assert len(fake.requests) == calls


async def test_upscale_falls_back_to_the_result_and_refuses_missing_images(
    fake: MidjourneyApiFake, client: httpx.AsyncClient
) -> None:
    provider = _provider(fake, client)
    request = _imagine()
    done = await finish(provider, (await provider.submit(request)).task_id, tries=10, pause=0)
    parent = parent_of(done, request).model_copy(update={"extra": {}})
    upscaled = await provider.act(parent, ActRequest(action=Action.UPSCALE, index=4))
    assert upscaled.result is not None and done.result is not None
    assert upscaled.result.image_urls == [done.result.image_urls[3]]
    empty = parent.model_copy(update={"result": None})
    with pytest.raises(ProviderRejected, match="Image 1"):
        await provider.act(empty, ActRequest(action=Action.UPSCALE, index=1))


async def test_reroll_resubmits_the_parent_prompt(fake: MidjourneyApiFake, client: httpx.AsyncClient) -> None:
    provider = _provider(fake, client)
    request = _imagine(speed="relax")
    done = await finish(provider, (await provider.submit(request)).task_id, tries=10, pause=0)

    rerolled = await provider.act(parent_of(done, request), ActRequest(action=Action.REROLL, speed="fast"))
    assert rerolled.status is TaskStatus.SUBMITTED and rerolled.task_id != done.task_id
    assert fake.submits()[-1].body == {"prompt": "a lighthouse at dusk --ar 16:9 --v 7", "mode": "fast"}
    again = await finish(provider, rerolled.task_id, tries=10, pause=0)
    assert again.status is TaskStatus.SUCCEEDED and "reroll:0" in again.actions

    # with no stored request prompt, the prompt the provider reported is used
    bare = ParentTask(task_id="x", kind=Action.IMAGINE, request=GenerationRequest(), extra=done.extra)
    await provider.act(bare, ActRequest(action=Action.REROLL))
    assert fake.submits()[-1].body["prompt"] == "a lighthouse at dusk --ar 16:9 --v 7"

    # Remix: the edited prompt is resubmitted instead (the parent's speed kept)
    edited = PromptParams(text="a harbour at dawn", aspect_ratio="3:2")
    remixed = await provider.act(parent_of(done, request), ActRequest(
        action=Action.REROLL, prompt=edited.full(), remix=edited))
    assert fake.submits()[-1].body == {"prompt": "a harbour at dawn --ar 3:2", "mode": "relaxed"}
    assert (await finish(provider, remixed.task_id, tries=10, pause=0)).status is TaskStatus.SUCCEEDED


async def test_unsupported_actions_and_commands_are_refused(
    fake: MidjourneyApiFake, client: httpx.AsyncClient
) -> None:
    provider = _provider(fake, client)
    parent = ParentTask(task_id="t", kind=Action.IMAGINE, request=_imagine())
    with pytest.raises(ProviderRejected, match="variation"):
        await provider.act(parent, ActRequest(action=Action.VARIATION, index=1))
    for kind in (Action.DESCRIBE, Action.BLEND, Action.SHORTEN):
        with pytest.raises(ProviderRejected):
            await provider.submit(GenerationRequest(kind=kind, prompt=PromptParams(text="x")))
    with pytest.raises(ProviderRejected, match="URLs"):
        await provider.submit(_imagine(images=(ImageInput(data=b"png"),)))
    with pytest.raises(ProviderRejected, match="prompt"):
        await provider.submit(GenerationRequest(prompt=PromptParams(text="")))
    assert fake.submits() == []


async def test_failed_generation_is_a_failed_snapshot(
    fake: MidjourneyApiFake, client: httpx.AsyncClient
) -> None:
    provider = _provider(fake, client)
    done = await finish(provider, (await provider.submit(_imagine("FAIL me"))).task_id, tries=10, pause=0)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None and "blocked" in done.error
    assert done.result is None and done.actions == {}


async def test_batch_status_takes_many_ids_in_one_call(
    fake: MidjourneyApiFake, client: httpx.AsyncClient
) -> None:
    provider = _provider(fake, client)
    ids = [(await provider.submit(_imagine(f"cat {n}"))).task_id for n in range(5)]
    before = len(fake.received)

    snapshots = await provider.fetch([*ids, "unknown-id"])

    assert [s.task_id for s in snapshots] == ids
    status_calls = [r for r in fake.received[before:] if r.path == STATUS]
    assert len(status_calls) == 1 and status_calls[0].body == {"taskIds": [*ids, "unknown-id"]}
    assert status_calls[0].headers["API-KEY"] == KEY


async def test_more_ids_than_batch_fetch_are_chunked(
    fake: MidjourneyApiFake, client: httpx.AsyncClient
) -> None:
    provider = _provider(fake, client, batch_fetch=2)
    assert provider.capabilities.batch_fetch == 2
    ids = [(await provider.submit(_imagine(f"dog {n}"))).task_id for n in range(5)]
    before = len(fake.received)
    assert len(await provider.fetch(ids)) == 5
    assert [len(r.body["taskIds"]) for r in fake.received[before:]] == [2, 2, 1]


async def test_string_statuses_are_accepted(client: httpx.AsyncClient) -> None:
    async with MidjourneyApiFake(status_as_string=True) as fake:
        provider = _provider(fake, client)
        done = await finish(provider, (await provider.submit(_imagine())).task_id, tries=10, pause=0)
        assert done.status is TaskStatus.SUCCEEDED
        fake.inject("quota")
        with pytest.raises(ProviderQuotaExceeded):
            await provider.submit(_imagine())
        fake.inject("busy")
        with pytest.raises(ProviderBusy):
            await provider.submit(_imagine())


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("auth", ProviderAuthError),
        ("quota", ProviderQuotaExceeded),
        ("busy", ProviderBusy),
        ("rate_limited", ProviderRateLimited),
        ("unavailable", ProviderUnavailable),
        ("malformed", ProviderProtocolError),
        ("rejected", ProviderRejected),
    ],
)
async def test_errors_map_to_the_tree(
    fake: MidjourneyApiFake, client: httpx.AsyncClient, fault: str, error: type[Exception]
) -> None:
    provider = _provider(fake, client)
    fake.inject(fault)
    with pytest.raises(error) as caught:
        await provider.submit(_imagine())
    assert KEY not in str(caught.value)
    if fault == "rate_limited":
        assert isinstance(caught.value, ProviderRateLimited) and caught.value.retry_after == 2.0
    if fault == "rejected":
        assert "Banned prompt" in str(caught.value)


async def test_a_wrong_key_is_an_auth_error_without_the_key(
    fake: MidjourneyApiFake, client: httpx.AsyncClient
) -> None:
    provider = _provider(fake, client, api_key=SecretStr("sk-wrong-secret"))
    with pytest.raises(ProviderAuthError) as caught:
        await provider.fetch(["a"])
    assert "sk-wrong-secret" not in caught.value.message


def test_envelope_codes() -> None:
    assert unwrap({"status": "0", "data": {"taskId": "t"}}, "mj") == {"taskId": "t"}
    assert unwrap({"data": []}, "mj") == []  # the quickstart's job-status sample has no status
    with pytest.raises(ProviderQuotaExceeded):
        unwrap({"status": 1001, "message": "quota not enough"}, "mj")
    with pytest.raises(ProviderBusy):
        unwrap({"status": "1002", "message": "concurrency limit"}, "mj")
    with pytest.raises(ProviderRejected, match="bad flag"):
        unwrap({"status": 1003, "message": "bad flag"}, "mj")
    junks: list[object] = [[], "x", {"status": "weird"}]
    for junk in junks:
        with pytest.raises(ProviderProtocolError):
            unwrap(junk, "mj")


def test_quickstart_status_sample_parses() -> None:
    data = {
        "data": [
            {"taskId": "rffghVAtBr-5lqjhuC8Nv", "status": 0},
            {"taskId": "TzmJP821WQM5jHOx7nR7r", "status": 2, "failReason": "Invalid User ID"},
            {
                "taskId": "JRTcg7frYrVn4PsnsboH6",
                "status": 1,
                "jobId": "089b",
                "images": [f"https://cdn.midjourney.com/089b/0_{n}.png" for n in range(4)],
                "prompt": "a dog --ar 9:16",
                "mjPrompt": "a dog --ar 9:16",
                "meta": {"width": 816, "height": 1456},
            },
        ]
    }
    running, failed, done = (job_snapshot(job, grid=True) for job in job_items(unwrap(data, "mj"), "mj"))
    assert running.status is TaskStatus.RUNNING
    assert failed.status is TaskStatus.FAILED and failed.error == "Invalid User ID"
    assert done.status is TaskStatus.SUCCEEDED and done.result is not None
    assert done.result.grid_url is None and len(done.result.image_urls) == 4
    assert (done.result.width, done.result.height) == (816, 1456)


@pytest.mark.parametrize("shape", ["envelope", "bare"])
async def test_callbacks_parse_including_duplicates(client: httpx.AsyncClient, shape: str) -> None:
    async with (
        MidjourneyApiFake(callback_shape=shape, callback_repeats=2) as fake,
        CallbackReceiver() as receiver,
    ):
        provider = _provider(fake, client)
        submitted = await provider.submit(_imagine(callback_url=receiver.url("abc?token=s3cret")))
        first_body, _ = await receiver.next()
        second_body, headers = await receiver.next()
        assert fake.submits()[0].body["hookUrl"] == receiver.url("abc?token=s3cret")

        first = provider.parse_callback(first_body, headers)
        second = provider.parse_callback(second_body, headers)
        assert first == second
        assert first.task_id == submitted.task_id and first.status is TaskStatus.SUCCEEDED
        assert first.result is not None and len(first.result.image_urls) == 4
        assert "upscale:1" in first.actions
        # a later poll agrees with the callback (out-of-order delivery changes nothing)
        (polled,) = await provider.fetch([submitted.task_id])
        assert polled.status is TaskStatus.SUCCEEDED and polled.result == first.result


def test_callback_shapes_and_junk(client: httpx.AsyncClient) -> None:
    provider = MidjourneyApiProvider(make_config("http://127.0.0.1:1"), client)
    documented = {"status": 0, "data": {"taskId": "Mt", "status": 1, "image": "https://cdn/x.png"}}
    snapshot = provider.parse_callback(json.dumps(documented).encode(), {})
    assert snapshot.status is TaskStatus.SUCCEEDED and snapshot.result is not None
    assert snapshot.result.grid_url == "https://cdn/x.png" and snapshot.actions == {"reroll:0": ""}
    mixed = {"taskId": "Mt", "status": "2", "data": {"failReason": "nope"}}
    assert provider.parse_callback(json.dumps(mixed).encode(), {}).error == "nope"
    running = provider.parse_callback(b'{"taskId": "Mt", "status": 0}', {})
    assert running.status is TaskStatus.RUNNING
    for junk in (
        b"not json",
        b"[]",
        b"{}",
        b'{"status": 0, "data": {"image": "x"}}',
        b'{"taskId":"a","status":7}',
    ):
        with pytest.raises(ProviderProtocolError):
            provider.parse_callback(junk, {})
