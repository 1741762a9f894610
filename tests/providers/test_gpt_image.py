"""midjourney-api.com GPT-Image adapter against the shared loopback fake, through the real httpx client."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

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
from providers.errors import ProviderBusy, ProviderProtocolError, ProviderQuotaExceeded, ProviderRejected
from providers.gpt_image import GptImageConfig, GptImageProvider, adjusted_size, size_problems
from tests.fakes.midjourney_api import GPT, GPT_STATUS_ALIAS, STATUS, CallbackReceiver, MidjourneyApiFake
from tests.providers.contract import KEY, AdapterCase, adapter_config, finish


def make_config(base_url: str, **overrides: Any) -> GptImageConfig:
    return adapter_config(GptImageConfig, "gpt", base_url, **overrides)


CASE = AdapterCase(type="gpt_image", make_fake=MidjourneyApiFake, make_config=make_config)


def _provider(fake: MidjourneyApiFake, client: httpx.AsyncClient, **overrides: Any) -> GptImageProvider:
    return GptImageProvider(make_config(fake.base_url, **overrides), client)


def _imagine(text: str = "draw a red fox", ar: str | None = None, **kwargs: Any) -> GenerationRequest:
    return GenerationRequest(prompt=PromptParams(text=text, aspect_ratio=ar), **kwargs)


def test_registered_with_truthful_capabilities() -> None:
    assert PROVIDERS["gpt_image"] is GptImageProvider
    caps = GptImageProvider.capabilities
    assert caps.actions == {Action.IMAGINE, Action.REROLL}
    assert caps.webhooks and not caps.progress and not caps.cancel and caps.max_images == 4


async def test_imagine_sends_the_documented_body(fake: MidjourneyApiFake, client: httpx.AsyncClient) -> None:
    provider = _provider(fake, client, size="1536x1024")
    upload = ImageInput(data=b"\x89PNG fake", mime="image/png")
    hosted = ImageInput(data=b"x", url="https://img.example/a.png")
    prompt = PromptParams(
        text="draw a red fox", image_urls=("https://img.example/p.png",), aspect_ratio="16:9"
    )
    request = GenerationRequest(prompt=prompt, images=(hosted, upload), callback_url="http://127.0.0.1:9/h")

    submitted = await provider.submit(request)
    assert submitted.status is TaskStatus.SUBMITTED

    sent = fake.submits()[0]
    assert sent.path == GPT and sent.headers["API-KEY"] == KEY
    assert sent.body == {
        "prompt": "draw a red fox",
        "model": "gpt-image-2",
        "referImages": [
            "https://img.example/p.png",
            "https://img.example/a.png",
            "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode(),
        ],
        "aspect_ratio": "16:9",
        "size": "1536x1024",
        "hookUrl": "http://127.0.0.1:9/h",
    }


async def test_result_is_images_with_reroll_only(client: httpx.AsyncClient) -> None:
    async with MidjourneyApiFake(gpt_images=2) as fake:
        provider = _provider(fake, client)
        request = _imagine()
        submitted = await provider.submit(request)
        assert fake.submits()[0].body == {"prompt": "draw a red fox", "model": "gpt-image-2"}
        done = await finish(provider, submitted.task_id, tries=10, pause=0)

        assert done.status is TaskStatus.SUCCEEDED and done.result is not None
        cdn = f"{fake.base_url}/cdn/{done.task_id}"
        assert done.result.image_urls == [f"{cdn}/0.png", f"{cdn}/1.png"] and done.result.grid_url is None
        assert done.actions == {"reroll:0": ""}
        assert [r.path for r in fake.received if r.path == STATUS]  # default status_path
        assert (await client.get(done.result.image_urls[1])).content.startswith(b"\x89PNG")

        parent = ParentTask(task_id=done.task_id, kind=Action.IMAGINE, request=request, result=done.result)
        rerolled = await provider.act(
            parent, ActRequest(action=Action.REROLL, callback_url="http://127.0.0.1:9/r")
        )
        assert rerolled.task_id != done.task_id
        assert fake.submits()[-1].body == {
            "prompt": "draw a red fox",
            "model": "gpt-image-2",
            "hookUrl": "http://127.0.0.1:9/r",
        }
        for action in (Action.UPSCALE, Action.VARIATION, Action.VARY_SUBTLE):
            with pytest.raises(ProviderRejected, match="reroll only"):
                await provider.act(parent, ActRequest(action=action, index=1))


@pytest.mark.parametrize(
    ("given", "sent"), [("1:1", "1:1"), ("9:16", "9:16"), ("32:18", "16:9"), ("3:4", "3:4")]
)
async def test_aspect_ratios_map_from_ar(
    fake: MidjourneyApiFake, client: httpx.AsyncClient, given: str, sent: str
) -> None:
    await _provider(fake, client).submit(_imagine(ar=given))
    assert fake.submits()[0].body["aspect_ratio"] == sent


@pytest.mark.parametrize("ratio", ["2:3", "21:9", "wide", "0:1"])
async def test_other_aspect_ratios_are_refused_before_sending(
    fake: MidjourneyApiFake, client: httpx.AsyncClient, ratio: str
) -> None:
    with pytest.raises(ProviderRejected) as caught:
        await _provider(fake, client).submit(_imagine(ar=ratio))
    assert "1:1, 3:4, 4:3, 16:9, 9:16" in caught.value.message and ratio in caught.value.message
    assert fake.submits() == []


async def test_other_inputs_are_refused(fake: MidjourneyApiFake, client: httpx.AsyncClient) -> None:
    provider = _provider(fake, client, max_images=1)
    assert provider.capabilities.max_images == 1
    two = (ImageInput(data=b"a"), ImageInput(data=b"b"))
    with pytest.raises(ProviderRejected, match="at most 1"):
        await provider.submit(_imagine(images=two))
    with pytest.raises(ProviderRejected):
        await provider.submit(GenerationRequest(kind=Action.DESCRIBE, images=two))
    with pytest.raises(ProviderRejected, match="prompt"):
        await provider.submit(GenerationRequest(prompt=PromptParams(text=" ")))
    with pytest.raises(ProviderRejected) as caught:  # a job moved here by failover keeps its flags
        await provider.submit(GenerationRequest(prompt=PromptParams(text="x", stylize=250)))
    assert caught.value.message == "gpt does not support --s; it supports --ar."
    assert fake.submits() == []


@pytest.mark.parametrize(
    ("size", "rule"),
    [
        ("1000x1000", "multiples of 16"),
        ("4096x2048", "at most 3840"),
        ("3200x960", "3:1"),
        ("512x512", "655,360"),
        ("3840x3840", "8,294,400"),
    ],
)
def test_invalid_sizes_fail_at_config_load_with_the_rule(size: str, rule: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_config("http://x", size=size)
    assert rule in str(caught.value) and "adjust_size" in str(caught.value)


def test_size_must_look_like_width_x_height() -> None:
    for bad in ("big", "1024", "0x1024", "1024x"):
        with pytest.raises(ValidationError, match="WIDTHxHEIGHT"):
            make_config("http://x", size=bad, adjust_size=True)


async def test_adjust_size_sends_a_valid_size(fake: MidjourneyApiFake, client: httpx.AsyncClient) -> None:
    provider = _provider(fake, client, size="1920x1080", adjust_size=True)
    assert make_config("http://x", size="1920x1080", adjust_size=True).size == "1936x1088"
    await provider.submit(_imagine())
    assert fake.submits()[0].body["size"] == "1936x1088"
    assert make_config("http://x", size="1024x1024", adjust_size=True).size == "1024x1024"


def test_adjusted_sizes_obey_every_rule() -> None:
    samples = [(w, h) for w in (1, 15, 333, 1000, 2500, 3841, 9000, 20000) for h in (1, 17, 640, 1080, 5000)]
    for width, height in samples:
        adjusted = adjusted_size(width, height)
        assert size_problems(*adjusted) == [], (width, height, adjusted)
    assert adjusted_size(10000, 1) == (3840, 1280)
    assert adjusted_size(4096, 4096) == (2880, 2880)


async def test_status_path_is_configurable(fake: MidjourneyApiFake, client: httpx.AsyncClient) -> None:
    provider = _provider(fake, client, status_path=GPT_STATUS_ALIAS)
    submitted = await provider.submit(_imagine())
    done = await finish(provider, submitted.task_id, tries=10, pause=0)
    assert done.status is TaskStatus.SUCCEEDED
    assert {r.path for r in fake.received} == {GPT, GPT_STATUS_ALIAS}


async def test_batch_fetch_and_failures(fake: MidjourneyApiFake, client: httpx.AsyncClient) -> None:
    provider = _provider(fake, client, batch_fetch=3)
    ids = [(await provider.submit(_imagine(f"draw {n}"))).task_id for n in range(3)]
    failing = (await provider.submit(_imagine("draw FAIL"))).task_id
    before = len(fake.received)
    snapshots = await provider.fetch([*ids, "nope"])
    assert [s.task_id for s in snapshots] == ids
    assert [r.body for r in fake.received[before:]] == [{"taskIds": ids}, {"taskIds": ["nope"]}]
    failed = await finish(provider, failing, tries=10, pause=0)
    assert failed.status is TaskStatus.FAILED and failed.error and failed.actions == {}


async def test_envelope_codes_on_generations(client: httpx.AsyncClient) -> None:
    async with MidjourneyApiFake(status_as_string=True) as fake:
        provider = _provider(fake, client)
        fake.inject("quota")
        with pytest.raises(ProviderQuotaExceeded):
            await provider.submit(_imagine())
        fake.inject("busy")
        with pytest.raises(ProviderBusy):
            await provider.submit(_imagine())
        fake.inject("malformed")
        with pytest.raises(ProviderProtocolError):
            await provider.submit(_imagine())
        assert (await provider.submit(_imagine())).task_id


@pytest.mark.parametrize("shape", ["envelope", "bare"])
async def test_callbacks_parse_including_duplicates(client: httpx.AsyncClient, shape: str) -> None:
    async with (
        MidjourneyApiFake(callback_shape=shape, callback_repeats=2) as fake,
        CallbackReceiver() as receiver,
    ):
        provider = _provider(fake, client)
        submitted = await provider.submit(_imagine(callback_url=receiver.url("gpt")))
        deliveries = [await receiver.next(), await receiver.next()]
        first, second = (provider.parse_callback(body, headers) for body, headers in reversed(deliveries))
        assert first == second and first.task_id == submitted.task_id
        assert first.status is TaskStatus.SUCCEEDED and first.result is not None
        assert first.result.image_urls == [f"{fake.base_url}/cdn/{submitted.task_id}/0.png"]
        assert first.actions == {"reroll:0": ""}
        with pytest.raises(ProviderProtocolError):
            provider.parse_callback(b"<html>", {})
