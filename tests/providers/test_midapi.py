"""midapi.ai adapter against its loopback fake: every call, every envelope code, callbacks."""

from __future__ import annotations

import json
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
    TaskStatus,
)
from providers.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from providers.midapi import MidapiConfig, MidapiProvider
from tests.fakes._server import HookReceiver
from tests.fakes.midapi import MidapiFake
from tests.providers.contract import GRID_OFFERS, AdapterCase, adapter_config, finish, imagine, parent_of


def make_config(base_url: str, **knobs: Any) -> MidapiConfig:
    return adapter_config(MidapiConfig, "midapi", base_url, **knobs)


CASE = AdapterCase(type="midapi", make_fake=lambda: MidapiFake(duration=0.05), make_config=make_config)


async def test_imagine_maps_flags_and_returns_four_images(fake: MidapiFake, provider: MidapiProvider) -> None:
    request = GenerationRequest(
        prompt=PromptParams(
            text="a lighthouse", aspect_ratio="16:9", version="7", stylize=250, weird=300, chaos=12, seed=7
        ),
        speed="relax",
    )
    submitted = await provider.submit(request)
    assert submitted.status is TaskStatus.SUBMITTED
    sent = fake.received[0]
    assert (sent["method"], sent["path"], sent["auth"]) == ("POST", "/api/v1/mj/generate", "Bearer test-key")
    assert sent["body"] == {
        "taskType": "mj_txt2img",
        "prompt": "a lighthouse --seed 7",
        "aspectRatio": "16:9",
        "version": "7",
        "stylization": 250,
        "weirdness": 300,
        "variety": 10,
        "speed": "relaxed",
    }
    done = await finish(provider, submitted.task_id)
    assert done.status is TaskStatus.SUCCEEDED and done.progress is None
    assert done.result is not None and len(done.result.image_urls) == 4 and done.result.grid_url is None
    assert set(done.actions) == GRID_OFFERS
    assert done.extra["paramJson"]["prompt"] == "a lighthouse --seed 7"
    assert ("GET", "/api/v1/mj/record-info") in fake.requests
    async with httpx.AsyncClient() as http:
        image = await http.get(done.result.image_urls[0])
    assert image.content.startswith(b"\x89PNG")


async def test_niji_turbo_and_default_speed(fake: MidapiFake, provider: MidapiProvider) -> None:
    await provider.submit(GenerationRequest(prompt=PromptParams(text="cat", niji="6"), speed="turbo"))
    await provider.submit(imagine())
    assert fake.received[0]["body"]["version"] == "niji6" and fake.received[0]["body"]["speed"] == "turbo"
    assert fake.received[1]["body"]["speed"] == "fast"


async def test_upscale_is_zero_based_and_offers_video(fake: MidapiFake, provider: MidapiProvider) -> None:
    request = imagine()
    grid = await finish(provider, (await provider.submit(request)).task_id)
    upscale = await provider.act(parent_of(grid, request), ActRequest(action=Action.UPSCALE, index=2))
    assert fake.received[-1]["path"] == "/api/v1/mj/generateUpscale"
    assert fake.received[-1]["body"] == {"taskId": grid.task_id, "imageIndex": 1}
    done = await finish(provider, upscale.task_id)
    assert done.result is not None and len(done.result.image_urls) == 1
    assert done.actions == {"video:0": ""}


@pytest.mark.parametrize("base", [0, 1])
async def test_vary_index_base_is_configurable(
    fake: MidapiFake, client: httpx.AsyncClient, base: int
) -> None:
    fake.vary_index_base = base
    provider = MidapiProvider(make_config(fake.base_url, vary_index_base=base), client)
    request = imagine()
    grid = await finish(provider, (await provider.submit(request)).task_id)
    vary = await provider.act(parent_of(grid, request), ActRequest(action=Action.VARIATION, index=3))
    assert fake.received[-1]["path"] == "/api/v1/mj/generateVary"
    assert fake.received[-1]["body"] == {"taskId": grid.task_id, "imageIndex": 2 + base}
    done = await finish(provider, vary.task_id)
    assert done.result is not None and len(done.result.image_urls) == 4
    assert set(done.actions) == GRID_OFFERS
    again = await provider.act(parent_of(done, request, Action.VARIATION), ActRequest(action=Action.REROLL))
    assert fake.received[-1]["path"] == "/api/v1/mj/generateVary"
    assert (await finish(provider, again.task_id)).status is TaskStatus.SUCCEEDED


async def test_reroll_resubmits_param_json(fake: MidapiFake, provider: MidapiProvider) -> None:
    request = GenerationRequest(prompt=PromptParams(text="fox", aspect_ratio="2:3"), speed="relax")
    grid = await finish(provider, (await provider.submit(request)).task_id)
    assert grid.extra["paramJson"]["speed"] == "Relax"  # echoed capitalised, as documented
    # the bot may hand back only the fetched extra: paramJson from record-info is enough
    parent = parent_of(grid, GenerationRequest())
    reroll = await provider.act(parent, ActRequest(action=Action.REROLL, callback_url="http://127.0.0.1:9/x"))
    body = fake.received[-1]["body"]
    assert fake.received[-1]["path"] == "/api/v1/mj/generate"
    assert body["speed"] == "relaxed" and body["prompt"] == "fox" and body["aspectRatio"] == "2:3"
    assert body["callBackUrl"] == "http://127.0.0.1:9/x"
    assert (await finish(provider, reroll.task_id)).status is TaskStatus.SUCCEEDED


async def test_a_remixed_variation_is_a_new_generate_of_the_edited_prompt(
    fake: MidapiFake, provider: MidapiProvider
) -> None:
    """generateVary takes no prompt: the edited one is submitted the way a reroll is."""
    request = GenerationRequest(prompt=PromptParams(text="fox", aspect_ratio="2:3"), speed="relax")
    grid = await finish(provider, (await provider.submit(request)).task_id)
    edited = PromptParams(text="owl", aspect_ratio="16:9")
    remixed = await provider.act(parent_of(grid, request), ActRequest(
        action=Action.VARIATION, index=2, prompt=edited.full(), remix=edited, callback_url="http://127.0.0.1:9/x"))
    body = fake.received[-1]["body"]
    assert fake.received[-1]["path"] == "/api/v1/mj/generate"
    assert (body["prompt"], body["aspectRatio"], body["speed"]) == ("owl", "16:9", "relaxed")
    assert body["callBackUrl"] == "http://127.0.0.1:9/x"
    assert (await finish(provider, remixed.task_id)).status is TaskStatus.SUCCEEDED


async def test_reroll_without_param_json_rebuilds_from_request(
    fake: MidapiFake, provider: MidapiProvider
) -> None:
    parent = ParentTask(task_id="gone", kind=Action.IMAGINE, request=imagine("owl"))
    await provider.act(parent, ActRequest(action=Action.REROLL, speed="turbo"))
    assert fake.received[-1]["body"]["prompt"] == "owl" and fake.received[-1]["body"]["speed"] == "turbo"
    with pytest.raises(ProviderRejected):
        await provider.act(
            ParentTask(task_id="x", kind=Action.DESCRIBE, request=GenerationRequest()),
            ActRequest(action=Action.REROLL),
        )


async def test_video_from_upscale_then_extend(fake: MidapiFake, client: httpx.AsyncClient) -> None:
    provider = MidapiProvider(
        make_config(fake.base_url, video_hd=True, video_motion="low", video_batch_size=2), client
    )
    request = imagine("waves")
    grid = await finish(provider, (await provider.submit(request)).task_id)
    up = await finish(
        provider,
        (await provider.act(parent_of(grid, request), ActRequest(action=Action.UPSCALE, index=1))).task_id,
    )
    assert up.result is not None
    video = await provider.act(parent_of(up, request, Action.UPSCALE), ActRequest(action=Action.VIDEO))
    assert fake.received[-1]["body"] == {
        "taskType": "mj_video_hd",
        "prompt": "waves",
        "fileUrls": [up.result.image_urls[0]],
        "motion": "low",
        "videoBatchSize": 2,
    }
    clip = await finish(provider, video.task_id)
    assert clip.result is not None and len(clip.result.video_urls) == 2 and not clip.result.image_urls
    assert clip.actions == {"video_extend:1": "", "video_extend:2": ""}
    parent = parent_of(clip, request, Action.VIDEO)
    manual = await provider.act(
        parent, ActRequest(action=Action.VIDEO_EXTEND, index=2, prompt="the sea calms")
    )
    assert fake.received[-1]["path"] == "/api/v1/mj/generateVideoExtend"
    assert fake.received[-1]["body"] == {
        "taskType": "mj_video_extend_manual",
        "taskId": clip.task_id,
        "index": 1,
        "prompt": "the sea calms",
    }
    auto = await provider.act(parent, ActRequest(action=Action.VIDEO_EXTEND, index=1))
    assert fake.received[-1]["body"] == {
        "taskType": "mj_video_extend_auto",
        "taskId": clip.task_id,
        "index": 0,
    }
    for task in (manual, auto):
        extended = await finish(provider, task.task_id)
        assert extended.result is not None and len(extended.result.video_urls) == 1
        assert extended.actions == {"video_extend:0": ""}


async def test_video_command_from_an_image_url(fake: MidapiFake, provider: MidapiProvider) -> None:
    image = ImageInput(data=b"x", url="https://img.example/a.png")
    snap = await provider.submit(
        GenerationRequest(kind=Action.VIDEO, prompt=PromptParams(text="run"), images=(image,))
    )
    assert fake.received[-1]["body"]["taskType"] == "mj_video" and snap.task_id
    assert fake.received[-1]["body"]["fileUrls"] == ["https://img.example/a.png"]


@pytest.mark.parametrize(
    ("mode", "flags", "task_type", "ow"),
    [
        ("img2img", {}, "mj_img2img", None),
        ("style", {}, "mj_style_reference", None),
        ("omni", {}, "mj_omni_reference", 300),
        ("img2img", {"style_refs": ()}, "mj_style_reference", None),  # --sref alone: the image given
        ("img2img", {"omni_refs": (), "omni_weight": 700}, "mj_omni_reference", 700),  # --oref --ow 700
    ],
)
async def test_image_inputs_pick_the_task_type(
    fake: MidapiFake,
    client: httpx.AsyncClient,
    mode: str,
    flags: dict[str, Any],
    task_type: str,
    ow: int | None,
) -> None:
    provider = MidapiProvider(make_config(fake.base_url, reference_mode=mode, omni_weight=300), client)
    image = ImageInput(data=b"x", url="https://img.example/ref.png")
    prompt = PromptParams(text="a castle", **flags)
    snap = await provider.submit(GenerationRequest(prompt=prompt, images=(image,)))
    body = fake.received[-1]["body"]
    assert body["taskType"] == task_type and body["prompt"] == "a castle"
    assert body["fileUrls"] == ["https://img.example/ref.png"]
    assert body.get("ow") == ow and ("speed" in body) == (task_type != "mj_omni_reference")
    assert (await finish(provider, snap.task_id)).status is TaskStatus.SUCCEEDED


async def test_reference_url_in_the_prompt(fake: MidapiFake, provider: MidapiProvider) -> None:
    await provider.submit(imagine("tree", style_refs=("https://img.example/s.png", "123")))
    body = fake.received[-1]["body"]
    assert body["taskType"] == "mj_style_reference" and body["fileUrls"] == ["https://img.example/s.png"]
    assert body["prompt"] == "tree --sref 123"  # a style code stays in the prompt


@pytest.mark.parametrize(
    "request_",
    [
        GenerationRequest(prompt=PromptParams(text="x"), images=(ImageInput(data=b"x"),)),
        imagine(aspect_ratio="7:3"),
        imagine(version="4"),
        imagine(niji="5"),
        imagine("x" * 2001),
        GenerationRequest(kind=Action.DESCRIBE, images=(ImageInput(data=b"x", url="https://a/b.png"),)),
        imagine(video=True),  # a flag midapi refuses (a job failed over here keeps its flags)
        imagine(style_refs=()),  # --sref alone, and no image to use
        imagine(omni_weight=500),  # --ow without an omni reference
        imagine(style_refs=("https://a/s.png",), omni_refs=("https://a/o.png",)),
    ],
)
async def test_requests_midapi_cannot_take_are_rejected_before_sending(
    fake: MidapiFake, provider: MidapiProvider, request_: GenerationRequest
) -> None:
    with pytest.raises(ProviderRejected) as caught:
        await provider.submit(request_)
    assert caught.value.message and fake.received == []


@pytest.mark.parametrize(("as_string", "strings"), [(True, False), (False, True), (True, True)])
async def test_every_record_shape_parses_the_same(
    fake: MidapiFake, provider: MidapiProvider, as_string: bool, strings: bool
) -> None:
    fake.result_info_as_string, fake.result_urls_as_strings = as_string, strings
    done = await finish(provider, (await provider.submit(imagine())).task_id)
    assert done.result is not None and len(done.result.image_urls) == 4
    assert all(url.startswith(fake.base_url) for url in done.result.image_urls)


@pytest.mark.parametrize(("word", "error"), [("FAIL2", "moderation"), ("FAIL3", "no image")])
async def test_failed_generation_is_a_failed_snapshot(
    provider: MidapiProvider, word: str, error: str
) -> None:
    done = await finish(provider, (await provider.submit(imagine(f"a {word}"))).task_id)
    assert done.status is TaskStatus.FAILED and done.error is not None and error in done.error
    assert done.result is None and done.actions == {}


async def test_callbacks_success_failure_and_duplicates(fake: MidapiFake, provider: MidapiProvider) -> None:
    fake.callback_repeats = 2  # the docs say the same taskId may arrive more than once
    async with HookReceiver() as receiver:
        hook = receiver.url()
        ok = await provider.submit(GenerationRequest(prompt=PromptParams(text="sun"), callback_url=hook))
        assert fake.received[-1]["body"]["callBackUrl"] == hook
        calls = await receiver.wait_for(lambda calls: len(calls) >= 2)
        first, second = (provider.parse_callback(b, h) for b, h in calls)
        assert first == second and first.task_id == ok.task_id
        assert first.status is TaskStatus.SUCCEEDED and first.result is not None
        assert len(first.result.image_urls) == 4 and set(first.actions) == GRID_OFFERS
        bad = await provider.submit(GenerationRequest(prompt=PromptParams(text="FAIL2"), callback_url=hook))
        await receiver.wait_for(lambda calls: len(calls) >= 4)
        failed = provider.parse_callback(receiver.bodies[-1], {})
        assert failed.task_id == bad.task_id and failed.status is TaskStatus.FAILED
        assert failed.error == "Image generation failed"
    # a late (out-of-order) duplicate of the success still parses to the same snapshot
    assert provider.parse_callback(receiver.bodies[0], {}) == first


def test_callback_documented_shapes_and_junk(provider: MidapiProvider) -> None:
    success = {
        "code": 200,
        "msg": "success",
        "data": {
            "taskId": "mj_task_12345",
            "promptJson": '{"prompt":"a beautiful landscape","model":"midjourney"}',
            "resultUrls": [f"https://example.com/mj_result{i}.png" for i in range(1, 5)],
        },
    }
    snap = provider.parse_callback(json.dumps(success).encode(), {})
    assert (
        snap.status is TaskStatus.SUCCEEDED and snap.result is not None and len(snap.result.image_urls) == 4
    )
    video = {"code": 200, "msg": "ok", "data": {"taskId": "v1", "resultUrls": ["https://e/x.mp4"]}}
    assert provider.parse_callback(json.dumps(video).encode(), {}).actions == {"video_extend:0": ""}
    typed = {
        "code": 200,
        "data": {"taskId": 7, "successFlag": "1", "resultInfoJson": '{"resultUrls":["https://e/u.png"]}'},
    }
    one = provider.parse_callback(json.dumps(typed).encode(), {})
    assert one.task_id == "7" and one.actions == {"video:0": ""}
    for junk in (b"not json", b"[]", b'{"code": 200}', b'{"code": "x"}', b'{"code": 200, "data": {"no": 1}}'):
        with pytest.raises(ProviderProtocolError):
            provider.parse_callback(junk, {})


def test_documented_record_example_parses(provider: MidapiProvider) -> None:
    from providers.midapi import _parse_record, _snapshot

    data = {
        "taskId": "4edb3c5XXXXX75e3f0aa5cc",
        "taskType": "mj_txt2img",
        "paramJson": '{"aspectRatio":"16:9","callBackUrl":"https://api.example.com/callback","fileUrl":"",'
        '"prompt":"p","speed":"Relax","stylization":1,"taskType":"mj_txt2img","version":"7","waterMark":"",'
        '"weirdness":1}',
        "completeTime": "2024-03-20T10:30:00Z",
        "resultInfoJson": {
            "resultUrls": [
                {"resultUrl": f"https://tempfile.aiquickdraw.com/v/x_0_{i}.jpeg"} for i in range(4)
            ]
        },
        "successFlag": 1,
        "createTime": "2024-03-20T10:30:00Z",
        "errorCode": None,
        "errorMessage": None,
    }
    snap = _snapshot(_parse_record(data, "midapi"), provider.capabilities)
    assert snap.status is TaskStatus.SUCCEEDED and snap.extra["paramJson"]["speed"] == "Relax"
    running = _snapshot(
        _parse_record(data | {"successFlag": "0", "resultInfoJson": None}, "midapi"), provider.capabilities
    )
    assert running.status is TaskStatus.RUNNING and running.result is None


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, ProviderRejected),
        (401, ProviderAuthError),
        (402, ProviderQuotaExceeded),
        (404, ProviderRejected),
        (422, ProviderRejected),
        (429, ProviderRateLimited),
        (455, ProviderUnavailable),
        (500, ProviderUnavailable),
        (501, ProviderRejected),
        (505, ProviderRejected),
    ],
)
async def test_envelope_codes_map_to_errors(
    fake: MidapiFake, provider: MidapiProvider, code: int, error: type[ProviderError]
) -> None:
    fake.inject_code(code, "error")
    with pytest.raises(error) as caught:
        await provider.submit(imagine())
    assert caught.value.message and "test-key" not in caught.value.message


async def test_code_505_and_422_keep_the_provider_text(fake: MidapiFake, provider: MidapiProvider) -> None:
    fake.inject_code(505, "error")
    with pytest.raises(ProviderRejected, match="disabled"):
        await provider.submit(imagine())
    fake.inject_code(422, "aspectRatio is invalid")
    with pytest.raises(ProviderRejected, match="aspectRatio is invalid"):
        await provider.submit(imagine())


async def test_code_501_is_a_failed_snapshot_when_there_is_a_task(
    fake: MidapiFake, provider: MidapiProvider
) -> None:
    fake.inject_code(501, "Generation failed: NSFW", data={"taskId": "t501"})
    snap = await provider.submit(imagine())
    assert (snap.task_id, snap.status, snap.error) == ("t501", TaskStatus.FAILED, "Generation failed: NSFW")
    fake.inject_code(501, "Generation failed", data={"taskId": "t501", "successFlag": 0})
    [fetched] = await provider.fetch(["t501"])
    assert fetched.status is TaskStatus.FAILED and fetched.error == "Generation failed"
    fake.inject_code(501, "Generation failed")
    [bare] = await provider.fetch(["t502"])
    assert bare.task_id == "t502" and bare.status is TaskStatus.FAILED


async def test_http_429_carries_retry_after(fake: MidapiFake, provider: MidapiProvider) -> None:
    fake.inject("rate_limited")
    with pytest.raises(ProviderRateLimited) as caught:
        await provider.submit(imagine())
    assert caught.value.retry_after == 2.0


async def test_fetch_is_one_call_per_task_and_leaves_out_unknown_ids(
    fake: MidapiFake, provider: MidapiProvider
) -> None:
    assert provider.capabilities.batch_fetch == 1
    snap = await provider.submit(imagine())
    before = len(fake.requests)
    found = await provider.fetch([snap.task_id])
    assert [s.task_id for s in found] == [snap.task_id] and len(fake.requests) == before + 1
    assert await provider.fetch(["no-such-task"]) == []
    assert fake.received[-1]["query"] == {"taskId": "no-such-task"}
    fake.inject_code(401, "Unauthorized")
    with pytest.raises(ProviderAuthError):
        await provider.fetch([snap.task_id])


async def test_wrong_key_and_malformed_answers(fake: MidapiFake, client: httpx.AsyncClient) -> None:
    provider = MidapiProvider(
        make_config(fake.base_url).model_copy(update={"api_key": SecretStr("nope")}), client
    )
    with pytest.raises(ProviderAuthError) as caught:
        await provider.submit(imagine())
    assert "nope" not in caught.value.message
    good = MidapiProvider(make_config(fake.base_url), client)
    fake.inject_code(200, "success", data={"taskId": "t1", "successFlag": 1, "resultInfoJson": 5})
    with pytest.raises(ProviderProtocolError):
        await good.fetch(["t1"])


async def test_actions_it_cannot_do_are_rejected(provider: MidapiProvider) -> None:
    parent = ParentTask(task_id="t", kind=Action.IMAGINE, request=imagine())
    for action, index in ((Action.ZOOM_OUT_2X, 0), (Action.UPSCALE, 5), (Action.VIDEO, 0)):
        with pytest.raises(ProviderRejected):
            await provider.act(parent, ActRequest(action=action, index=index))
