"""The mj_proxy adapter against its fake: Plus/trueai flavour (buttons, modal) and open source (/change)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
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
    offer_key,
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
from providers.mj_proxy import (
    LIST_LIMIT,
    MjProxyConfig,
    MjProxyProvider,
    _Button,
    _Task,
    accepted,
    attempt_state,
    button_action,
    find_attempt,
    parse_prompts,
)
from tests.fakes._server import HANG_AFTER_CREATE, HookReceiver
from tests.fakes.mj_proxy import BANNED_WORD, FAIL_WORD, MjProxyFake, png
from tests.providers.contract import (
    GRID_OFFERS,
    PROBE_TIMEOUT,
    AdapterCase,
    adapter_config,
    finish,
    imagine,
    parent_of,
)

SECRET = "test-secret"
UPSCALE_OFFERS = {
    "vary_subtle:0",
    "vary_strong:0",
    "upscale_subtle:0",
    "upscale_creative:0",
    "zoom_out_2x:0",
    "zoom_out_1_5x:0",
    "pan_left:0",
    "pan_right:0",
    "pan_up:0",
    "pan_down:0",
    "video:0",
    "custom_zoom:0",
}
IMAGE = ImageInput(data=png("ref", (16, 16)), mime="image/png")
OTHER = ImageInput(data=png("other", (16, 16)), mime="image/png")


def make_config(base_url: str, **overrides: Any) -> MjProxyConfig:
    return adapter_config(MjProxyConfig, "mjproxy", base_url, SECRET, **overrides)


def _documented(server: MjProxyFake) -> None:
    assert server.invalid == [], "the adapter sent requests outside the documented fields"


CASE = AdapterCase(type="mj_proxy", make_fake=MjProxyFake, make_config=make_config, check=_documented)


@pytest.fixture
async def opensource() -> AsyncIterator[MjProxyFake]:
    async with MjProxyFake(opensource=True) as server:
        yield server
        _documented(server)


async def press(
    provider: MjProxyProvider, parent: ParentTask, action: Action, index: int = 0, **kw: Any
) -> TaskSnapshot:
    return await finish(
        provider, (await provider.act(parent, ActRequest(action=action, index=index, **kw))).task_id
    )


# -- Plus / trueai: imagine and every button ----------------------------------------------------


async def test_imagine_sends_the_documented_body_and_finishes_with_buttons(
    fake: MjProxyFake, provider: MjProxyProvider, client: httpx.AsyncClient
) -> None:
    request = GenerationRequest(
        prompt=PromptParams(text="a fox", niji="6", aspect_ratio="2:3"), images=(IMAGE,), speed="fast"
    )
    task = await provider.submit(request)
    assert task.status is TaskStatus.SUBMITTED and task.task_id.isdigit()
    [sent] = fake.submitted("imagine")
    assert sent.path == "/mj-fast/mj/submit/imagine"
    assert sent.headers["mj-api-secret"] == SECRET and "Authorization" not in sent.headers
    assert sent.body == {
        "prompt": "a fox --ar 2:3 --niji 6",
        "base64Array": [IMAGE.data_uri()],
        "botType": "NIJI_JOURNEY",
    }
    done = await finish(provider, task.task_id)
    assert done.status is TaskStatus.SUCCEEDED and done.progress == 100
    assert done.result is not None
    cdn = f"{fake.base_url}/cdn/{task.task_id}"
    assert done.result.grid_url == f"{cdn}/grid.png"
    assert done.result.image_urls == [f"{cdn}/{n}.png" for n in range(1, 5)]  # trueai imageUrls
    assert (done.result.width, done.result.height) == (128, 128)
    assert set(done.actions) == GRID_OFFERS
    assert done.actions["upscale:2"].startswith("MJ::JOB::upsample::2::")
    assert done.actions["reroll:0"].startswith("MJ::JOB::reroll::0::")
    assert (await client.get(done.result.image_urls[3])).content.startswith(b"\x89PNG")


async def test_running_tasks_report_progress_and_a_preview(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    fake.step = 0.05
    task = await provider.submit(imagine())
    seen: list[TaskSnapshot] = []
    while not seen or seen[-1].status in (TaskStatus.SUBMITTED, TaskStatus.RUNNING):
        seen.extend(await provider.fetch([task.task_id]))
        await asyncio.sleep(0.02)
    previews = [s for s in seen if s.status is TaskStatus.RUNNING and s.preview_url]
    assert previews and all(
        s.preview_url == f"{fake.base_url}/cdn/{task.task_id}/preview.png" for s in previews
    )
    progress = [s.progress or 0 for s in seen if s.status is TaskStatus.RUNNING]
    assert progress == sorted(progress) and max(progress) >= 45


async def test_upscale_then_every_follow_up_button(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    request = imagine()
    grid = await finish(provider, (await provider.submit(request)).task_id)
    upscaled = await press(provider, parent_of(grid, request), Action.UPSCALE, 2)
    assert fake.submitted("action")[0].body == {"taskId": grid.task_id, "customId": grid.actions["upscale:2"]}
    assert upscaled.result is not None and upscaled.result.grid_url is None
    assert upscaled.result.image_urls == [f"{fake.base_url}/cdn/{upscaled.task_id}/upscale.png"]
    assert set(upscaled.actions) == UPSCALE_OFFERS | {"vary_region:0"}  # ❤️ is not offered
    assert "animate_high" in upscaled.actions["video:0"]

    parent = parent_of(upscaled, request, Action.UPSCALE)
    keys = sorted(UPSCALE_OFFERS - {"video:0", "custom_zoom:0"})  # Custom Zoom: test_custom_zoom_*
    started = [
        await provider.act(parent, ActRequest(action=Action(key.split(":")[0]), speed="relax"))
        for key in keys
    ]
    sent = fake.submitted("action")[-len(keys) :]
    assert {r.path for r in sent} == {"/mj-relax/mj/submit/action"}
    assert [r.body for r in sent] == [
        {"taskId": upscaled.task_id, "customId": upscaled.actions[k]} for k in keys
    ]
    results = await asyncio.gather(*(finish(provider, task.task_id) for task in started))
    for key, done in zip(keys, results, strict=True):
        assert done.status is TaskStatus.SUCCEEDED and done.result is not None
        single = key.startswith(("upscale_subtle", "upscale_creative"))
        assert (done.result.grid_url is None) is single
        assert set(done.actions) == (UPSCALE_OFFERS | {"vary_region:0"} if single else GRID_OFFERS)

    video = await press(provider, parent, Action.VIDEO)
    assert video.result is not None and video.result.video_urls == [
        f"{fake.base_url}/cdn/{video.task_id}/video{n}.mp4" for n in (1, 2)
    ]
    assert (
        set(video.actions) == {"video_extend:0"} and "animate_high_extend" in video.actions["video_extend:0"]
    )


async def test_animate_motion_is_configurable(fake: MjProxyFake, client: httpx.AsyncClient) -> None:
    provider = MjProxyProvider(make_config(fake.base_url, animate_motion="low"), client)
    request = imagine()
    grid = await finish(provider, (await provider.submit(request)).task_id)
    upscaled = await press(provider, parent_of(grid, request), Action.UPSCALE, 1)
    assert "::animate_low::" in upscaled.actions["video:0"]


async def test_variation_and_reroll_buttons(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    request = imagine()
    grid = await finish(provider, (await provider.submit(request)).task_id)
    varied = await press(provider, parent_of(grid, request), Action.VARIATION, 4)
    rerolled = await press(provider, parent_of(grid, request), Action.REROLL)
    custom_ids = [r.body["customId"] for r in fake.submitted("action")]
    assert custom_ids == [grid.actions["variation:4"], grid.actions["reroll:0"]]
    for done in (varied, rerolled):
        assert done.result is not None and len(done.result.image_urls) == 4
        assert set(done.actions) == GRID_OFFERS
    assert fake.submitted("change") == []


async def test_modal_is_confirmed_with_the_prompt(client: httpx.AsyncClient) -> None:
    async with MjProxyFake(remix=True) as fake:
        provider = MjProxyProvider(make_config(fake.base_url), client)
        request = imagine("a red barn")
        grid = await finish(provider, (await provider.submit(request)).task_id)
        remixed = await provider.act(
            parent_of(grid, request), ActRequest(action=Action.VARIATION, index=1, prompt="a blue barn")
        )
        [modal] = fake.submitted("modal")
        assert modal.body == {"taskId": remixed.task_id, "prompt": "a blue barn"}
        assert (await finish(provider, remixed.task_id)).status is TaskStatus.SUCCEEDED
        assert fake.tasks[remixed.task_id].data["prompt"] == "a blue barn"
        # without a remix prompt the parent's prompt is confirmed
        rerolled = await provider.act(parent_of(grid, request), ActRequest(action=Action.REROLL))
        assert fake.submitted("modal")[1].body == {"taskId": rerolled.task_id, "prompt": "a red barn"}
        # buttons that need no confirmation do not go through the modal
        await provider.act(parent_of(grid, request), ActRequest(action=Action.UPSCALE, index=1))
        assert len(fake.submitted("modal")) == 2
        assert fake.invalid == []


async def test_remix_press_asks_for_the_modal_and_confirms_the_edited_prompt(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    """Remix on a Plus server whose account has Remix off: the press itself asks for the form."""
    request = imagine("a red barn")
    grid = await finish(provider, (await provider.submit(request)).task_id)
    edited = PromptParams(text="a blue barn", aspect_ratio="16:9")
    remixed = await provider.act(parent_of(grid, request), ActRequest(
        action=Action.VARIATION, index=2, prompt=edited.full(), remix=edited))
    [action] = fake.submitted("action")
    assert action.body["enableRemix"] is True
    [modal] = fake.submitted("modal")
    assert modal.body == {"taskId": remixed.task_id, "prompt": "a blue barn --ar 16:9"}
    assert (await finish(provider, remixed.task_id)).status is TaskStatus.SUCCEEDED
    assert fake.tasks[remixed.task_id].data["prompt"] == "a blue barn --ar 16:9"
    await provider.act(parent_of(grid, request), ActRequest(action=Action.VARIATION, index=3))
    assert "enableRemix" not in fake.submitted("action")[1].body  # a plain press: no form
    assert len(fake.submitted("modal")) == 1 and fake.invalid == []


async def test_remix_on_the_open_source_server_resubmits_the_edited_prompt(client: httpx.AsyncClient) -> None:
    async with MjProxyFake(opensource=True) as fake:
        provider = MjProxyProvider(make_config(fake.base_url, api_flavor="opensource"), client)
        request = imagine("a red barn")
        grid = await finish(provider, (await provider.submit(request)).task_id)
        edited = PromptParams(text="a green barn")
        remixed = await provider.act(parent_of(grid, request), ActRequest(
            action=Action.REROLL, prompt=edited.full(), remix=edited))
        assert fake.submitted("change") == []
        assert fake.submitted("imagine")[-1].body["prompt"] == "a green barn"
        assert (await finish(provider, remixed.task_id)).status is TaskStatus.SUCCEEDED


# -- describe, blend, shorten --------------------------------------------------------------------


async def test_describe(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    task = await provider.submit(GenerationRequest(kind=Action.DESCRIBE, images=(IMAGE,)))
    assert fake.submitted("describe")[0].body == {"base64": IMAGE.data_uri()}
    done = await finish(provider, task.task_id)
    assert done.result is not None
    assert done.result.prompts == [f"a described scene, take {n} --ar 1:1" for n in range(1, 5)]
    assert done.actions == {}  # PicReader buttons (describe -> imagine) are not offered


async def test_blend(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    request = GenerationRequest(kind=Action.BLEND, images=(IMAGE, OTHER), dimensions="landscape")
    task = await provider.submit(request)
    assert fake.submitted("blend")[0].body == {
        "base64Array": [IMAGE.data_uri(), OTHER.data_uri()],
        "dimensions": "LANDSCAPE",
    }
    done = await finish(provider, task.task_id)
    assert done.result is not None and len(done.result.image_urls) == 4 and set(done.actions) == GRID_OFFERS
    with pytest.raises(ProviderRejected):
        await provider.submit(GenerationRequest(kind=Action.BLEND, images=(IMAGE,)))
    assert len(fake.submitted("blend")) == 1


async def test_shorten(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    text = "a very long prompt about a lighthouse standing at dusk"
    task = await provider.submit(GenerationRequest(kind=Action.SHORTEN, prompt=PromptParams(text=text)))
    assert fake.submitted("shorten")[0].body == {"prompt": text}
    done = await finish(provider, task.task_id)
    assert done.result is not None and len(done.result.prompts) == 5
    assert done.result.prompts[0] == text[:11]
    assert done.actions == {}


# -- open-source flavour and the /change fallback ------------------------------------------------


async def test_opensource_uses_change(opensource: MjProxyFake, client: httpx.AsyncClient) -> None:
    provider = MjProxyProvider(make_config(opensource.base_url, api_flavor="opensource"), client)
    assert not provider.capabilities.can(Action.VARY_SUBTLE) and not provider.capabilities.cancel
    request = imagine(niji="6")
    grid = await finish(provider, (await provider.submit(request)).task_id)
    assert opensource.submitted("imagine")[0].body == {
        "prompt": "a lighthouse at dusk --niji 6"
    }  # no botType
    assert grid.result is not None and grid.result.image_urls == [] and grid.result.grid_url
    assert grid.actions == dict.fromkeys(GRID_OFFERS, "")
    parent = parent_of(grid, request)
    upscaled = await press(provider, parent, Action.UPSCALE, 3)
    await press(provider, parent, Action.REROLL)
    bodies = [r.body for r in opensource.submitted("change")]
    assert bodies == [
        {"taskId": grid.task_id, "action": "UPSCALE", "index": 3},
        {"taskId": grid.task_id, "action": "REROLL"},
    ]
    assert upscaled.result is not None and upscaled.result.image_urls and upscaled.actions == {}
    # the same change again: code 21 "already exists" names the existing task
    again = await provider.act(parent, ActRequest(action=Action.UPSCALE, index=3))
    assert again.task_id == upscaled.task_id
    with pytest.raises(ProviderRejected):
        await provider.act(parent, ActRequest(action=Action.VARY_SUBTLE))
    with pytest.raises(ProviderRejected):
        await provider.submit(GenerationRequest(kind=Action.SHORTEN, prompt=PromptParams(text="x")))
    with pytest.raises(ProviderRejected):
        await provider.cancel(grid.task_id)


async def test_simple_change(opensource: MjProxyFake, client: httpx.AsyncClient) -> None:
    config = make_config(opensource.base_url, api_flavor="opensource", change_endpoint="simple-change")
    provider = MjProxyProvider(config, client)
    request = imagine()
    grid = await finish(provider, (await provider.submit(request)).task_id)
    varied = await press(provider, parent_of(grid, request), Action.VARIATION, 3)
    await press(provider, parent_of(grid, request), Action.REROLL)
    contents = [r.body["content"] for r in opensource.submitted("simple-change")]
    assert contents == [f"{grid.task_id} V3", f"{grid.task_id} R"]
    assert varied.status is TaskStatus.SUCCEEDED and varied.actions == dict.fromkeys(GRID_OFFERS, "")


async def test_plus_task_without_buttons_falls_back_to_change(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    request = imagine()
    grid = await finish(provider, (await provider.submit(request)).task_id)
    parent = parent_of(grid, request).model_copy(update={"actions": {"upscale:1": ""}})
    await press(provider, parent, Action.UPSCALE, 1)
    assert fake.submitted("change")[0].body == {"taskId": grid.task_id, "action": "UPSCALE", "index": 1}
    assert fake.submitted("action") == []


# -- transport knobs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "speed", "path"),
    [
        ("mj", "turbo", "/mj-turbo/mj/submit/imagine"),
        ("short", "relax", "/relax/mj/submit/imagine"),
        ("none", "fast", "/mj/submit/imagine"),
        ("mj", None, "/mj/submit/imagine"),
    ],
)
async def test_speed_paths(
    fake: MjProxyFake, client: httpx.AsyncClient, style: str, speed: str | None, path: str
) -> None:
    provider = MjProxyProvider(make_config(fake.base_url, speed_paths=style), client)
    await provider.submit(GenerationRequest(prompt=PromptParams(text="x"), speed=speed))  # type: ignore[arg-type]
    assert fake.submitted("imagine")[0].path == path


async def test_bearer_auth_and_state(fake: MjProxyFake, client: httpx.AsyncClient) -> None:
    provider = MjProxyProvider(make_config(fake.base_url, auth="bearer", state="bot-7"), client)
    task = await provider.submit(imagine())
    [sent] = fake.submitted("imagine")
    assert sent.headers["Authorization"] == f"Bearer {SECRET}" and "mj-api-secret" not in sent.headers
    assert sent.body["state"] == "bot-7"
    assert fake.tasks[task.task_id].data["state"] == "bot-7"
    wrong = MjProxyProvider(make_config(fake.base_url, api_key=SecretStr("nope")), client)
    with pytest.raises(ProviderAuthError) as caught:
        await wrong.fetch([task.task_id, "1"])
    assert "nope" not in caught.value.message


async def test_batch_fetch_is_one_request(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    ids = [(await provider.submit(imagine(f"scene {n}"))).task_id for n in range(5)]
    before = len(fake.received)
    snapshots = await provider.fetch([*ids, "999"])
    [sent] = fake.received[before:]
    assert (sent.path, sent.body) == ("/mj/task/list-by-condition", {"ids": [*ids, "999"]})
    assert [s.task_id for s in snapshots] == ids
    assert provider.capabilities.batch_fetch == 50


async def test_fetch_one_by_one(fake: MjProxyFake, client: httpx.AsyncClient) -> None:
    provider = MjProxyProvider(make_config(fake.base_url, batch_size=1), client)
    assert provider.capabilities.batch_fetch == 1
    task = await provider.submit(imagine())
    before = len(fake.received)
    [snapshot] = await provider.fetch([task.task_id, "999"])  # unknown: an empty 200, left out
    assert snapshot.task_id == task.task_id
    assert [r.path for r in fake.received[before:]] == [
        f"/mj/task/{task.task_id}/fetch",
        "/mj/task/999/fetch",
    ]


async def test_cancel(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    fake.step = 0.2
    task = await provider.submit(imagine())
    await provider.cancel(task.task_id)
    assert fake.received[-1].path == f"/mj/task/{task.task_id}/cancel"
    [snapshot] = await provider.fetch([task.task_id])
    assert snapshot.status is TaskStatus.CANCELLED


async def test_failed_generation(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    done = await finish(provider, (await provider.submit(imagine(FAIL_WORD))).task_id)
    assert done.status is TaskStatus.FAILED and done.error and "could not be generated" in done.error
    assert done.actions == {}


# -- notifyHook ----------------------------------------------------------------------------------


async def test_notify_hook_delivers_every_change(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    async with HookReceiver() as hook:
        url = hook.url("token=abc")
        task = await provider.submit(GenerationRequest(prompt=PromptParams(text="a"), callback_url=url))
        assert fake.submitted("imagine")[0].body["notifyHook"] == url
        await hook.wait_for(lambda calls: any(b'"SUCCESS"' in body for body, _ in calls))
    snapshots = [provider.parse_callback(body, {}) for body in hook.bodies]
    assert {s.task_id for s in snapshots} == {task.task_id}
    assert [s.status for s in snapshots] == [TaskStatus.SUBMITTED] + [TaskStatus.RUNNING] * 4 + [
        TaskStatus.SUCCEEDED
    ]
    assert [s.progress for s in snapshots[1:]] == [0, 25, 45, 75, 100]
    assert snapshots[2].preview_url and snapshots[1].preview_url is None
    final = snapshots[-1]
    assert (
        final.result is not None and len(final.result.image_urls) == 4 and set(final.actions) == GRID_OFFERS
    )
    assert provider.parse_callback(hook.bodies[-1], {}) == final  # duplicate
    assert provider.parse_callback(hook.bodies[2], {}) == snapshots[2]  # late, older
    for junk in (b"", b"<html>", b"[]", b'{"status": "SUCCESS"}', b'{"id": "1", "status": "WEIRD"}'):
        with pytest.raises(ProviderProtocolError):
            provider.parse_callback(junk, {})


async def test_callback_shapes_from_other_servers(provider: MjProxyProvider) -> None:
    task = {
        "id": 1730621826053455,  # a number on some relays
        "action": "IMAGINE",
        "status": "SUCCESS",
        "progress": "100%",
        "imageUrl": "https://cdn.example/grid.png",
        "imageUrls": ["https://cdn.example/1.png", {"url": "https://cdn.example/2.png"}],
        "imageWidth": 2048,
        "imageHeight": 2048,
        "buttons": [{"customId": "MJ::JOB::upsample::1::h", "emoji": None, "label": "U1"}],
    }
    snapshot = provider.parse_callback(json.dumps(task).encode(), {})
    assert snapshot.task_id == "1730621826053455"
    assert snapshot.result is not None and snapshot.result.width == 2048
    assert snapshot.result.image_urls == ["https://cdn.example/1.png", "https://cdn.example/2.png"]
    assert snapshot.actions == {"upscale:1": "MJ::JOB::upsample::1::h"}


# -- codes and errors ----------------------------------------------------------------------------


async def test_code_22_queued_is_accepted(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    fake.queue_next = 1
    task = await provider.submit(imagine())
    assert task.task_id in fake.tasks
    assert (await finish(provider, task.task_id)).status is TaskStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("fault", "error", "detail"),
    [
        ("auth", ProviderAuthError, "credentials"),
        ("quota", ProviderQuotaExceeded, "credits"),
        ("busy", ProviderBusy, "busy"),
        ("rate_limited", ProviderRateLimited, "rate limiting"),
        ("unavailable", ProviderUnavailable, "unavailable"),
        ("timeout", ProviderUnavailable, "in time"),
        ("malformed", ProviderProtocolError, "code"),
        ("rejected", ProviderRejected, f"banned word '{BANNED_WORD}'"),
    ],
)
async def test_errors_map_to_the_tree(
    fake: MjProxyFake, client: httpx.AsyncClient, fault: str, error: type[ProviderError], detail: str
) -> None:
    short = PROBE_TIMEOUT if fault == "timeout" else {}
    provider = MjProxyProvider(make_config(fake.base_url, **short), client)
    fake.timeout_delay = 0.45
    fake.inject(fault)
    with pytest.raises(error, match=detail) as caught:
        await provider.submit(imagine())
    assert SECRET not in caught.value.message
    if fault == "rate_limited":
        assert isinstance(caught.value, ProviderRateLimited) and caught.value.retry_after == 2
    if fault == "busy":
        assert type(caught.value) is ProviderBusy


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"code": 3, "description": "Related task does not exist"}, ProviderRejected),
        ({"code": 4, "description": "Validation error: prompt"}, ProviderRejected),
        ({"code": 9, "description": "System error"}, ProviderUnavailable),
        ({"code": 23, "description": "队列已满"}, ProviderBusy),
        ({"code": 4, "description": "用户额度不足"}, ProviderQuotaExceeded),
        ({"code": 24, "description": "banned"}, ProviderRejected),
        ({"code": "1", "description": "ok"}, ProviderProtocolError),  # accepted without a task id
        ({"description": "no code"}, ProviderProtocolError),
    ],
)
def test_envelope_codes(body: dict[str, Any], error: type[ProviderError]) -> None:
    with pytest.raises(error):
        accepted(body, "mjproxy")


def test_accepted_codes_coerce_the_task_id() -> None:
    assert accepted({"code": "1", "result": 1320098173412546}, "p")[0] == "1320098173412546"
    assert accepted({"code": 22, "result": "7", "properties": {"numberOfQueues": 3}}, "p")[0] == "7"
    assert accepted({"code": 21, "result": "8", "properties": {"status": "SUCCESS"}}, "p")[0] == "8"


@pytest.mark.parametrize(
    ("button", "expected"),
    [
        ({"customId": "MJ::JOB::upsample::3::h", "label": "U3"}, (Action.UPSCALE, 3)),
        ({"customId": "opaque-1", "label": "V2"}, (Action.VARIATION, 2)),
        ({"customId": "opaque-2", "emoji": "🔄"}, (Action.REROLL, 0)),
        ({"customId": "MJ::JOB::upsample_v6r1_2x_subtle::1::h::SOLO"}, (Action.UPSCALE_SUBTLE, 0)),
        ({"customId": "opaque-3", "label": "Upscale (Creative)"}, (Action.UPSCALE_CREATIVE, 0)),
        ({"customId": "opaque-4", "label": "Vary (Strong)"}, (Action.VARY_STRONG, 0)),
        ({"customId": "opaque-5", "label": "Zoom Out 1.5x"}, (Action.ZOOM_OUT_1_5X, 0)),
        ({"customId": "opaque-6", "emoji": "⬅"}, (Action.PAN_LEFT, 0)),
        ({"customId": "opaque-7", "emoji": "⬇️"}, (Action.PAN_DOWN, 0)),
        ({"customId": "MJ::JOB::animate_low::1::h::SOLO"}, (Action.VIDEO, 0)),
        ({"customId": "MJ::Inpaint::1::h::SOLO", "label": "Vary (Region)"}, (Action.VARY_REGION, 0)),
        ({"customId": "MJ::CustomZoom::h", "label": "Custom Zoom"}, (Action.CUSTOM_ZOOM, 0)),
        ({"customId": "MJ::JOB::upsample_v5_2x::1::h::SOLO", "label": "Upscale (2x)"},
         (Action.UPSCALE_2X, 0)),
        ({"customId": "MJ::JOB::upsample_v5_4x::1::h::SOLO"}, (Action.UPSCALE_4X, 0)),
        ({"customId": "MJ::JOB::upsample_v5_2x::1::h::SOLO", "label": "Redo Upscale (2x)"},
         (Action.REDO_UPSCALE, 0)),
        ({"customId": "MJ::JOB::upsample_v6_2x_subtle::1::h::SOLO", "label": "Redo Upscale (Subtle)"},
         (Action.REDO_UPSCALE, 0)),
        ({"customId": "MJ::Outpaint::100::1::h::SOLO", "label": "Make Square"}, (Action.MAKE_SQUARE, 0)),
        ({"customId": "opaque-8", "label": "Make Square"}, (Action.MAKE_SQUARE, 0)),
        ({"customId": "MJ::Job::PicReader::1", "label": "1"}, None),
    ],
)
def test_button_catalogue(button: dict[str, str], expected: tuple[Action, int] | None) -> None:
    assert button_action(_Button.model_validate(button)) == expected
    if expected:
        assert offer_key(*expected)


def test_parse_prompts() -> None:
    text = "1️⃣ a cat --ar 1:1\n\n2️⃣ a dog\n\n3️⃣ a fox\n\n4️⃣ an owl"
    assert parse_prompts(text) == ["a cat --ar 1:1", "a dog", "a fox", "an owl"]
    assert parse_prompts("one\n\ntwo") == ["one", "two"]
    assert parse_prompts("") == []


# -- reconcile: the attempt key in `state`, found again through GET /mj/task/list ----------------


def test_attempt_state_keeps_the_configured_state_as_a_prefix() -> None:
    assert attempt_state("", None) == "" and attempt_state("bot-7", None) == "bot-7"
    assert attempt_state("", "ref-1") == "ref-1"
    assert attempt_state("bot-7", "ref-1") == "bot-7:ref-1"
    long = attempt_state("s" * 255, "ref-1")  # the documented limit is 255: the prefix gives way
    assert len(long) == 255 and long.endswith(":ref-1")


async def test_every_request_carries_the_attempt_key(fake: MjProxyFake, client: httpx.AsyncClient) -> None:
    provider = MjProxyProvider(make_config(fake.base_url, state="bot-7"), client)
    request = imagine().model_copy(update={"client_ref": "a1"})
    grid = await finish(provider, (await provider.submit(request)).task_id)
    press = ActRequest(action=Action.UPSCALE, index=2, client_ref="a2")
    up = await provider.act(parent_of(grid, request), press)
    sent = fake.submitted("imagine") + fake.submitted("action")
    assert [r.body["state"] for r in sent] == ["bot-7:a1", "bot-7:a2"]
    assert [fake.tasks[t].data["state"] for t in (grid.task_id, up.task_id)] == ["bot-7:a1", "bot-7:a2"]


async def _lost(
    client: httpx.AsyncClient, fake: MjProxyFake, parent: ParentTask, request: ActRequest, **config: Any
) -> str:
    """Press a button whose answer never comes; the id of the task the proxy created for it. (Only
    this request gets the short timeout: on a loaded machine any other might miss it too.)"""
    impatient = MjProxyProvider(make_config(fake.base_url, **PROBE_TIMEOUT, **config), client)
    fake.inject(HANG_AFTER_CREATE)
    with pytest.raises(ProviderOutcomeUnknown):
        await impatient.act(parent, request)
    return fake.created_ids()[-1]


@pytest.mark.parametrize("flavour", ["plus", "opensource"])
async def test_reconcile_finds_a_button_press_whose_answer_was_lost(
    client: httpx.AsyncClient, flavour: str
) -> None:
    async with MjProxyFake(opensource=flavour == "opensource") as fake:
        provider = MjProxyProvider(make_config(fake.base_url, api_flavor=flavour), client)
        request = imagine()
        grid = await finish(provider, (await provider.submit(request)).task_id)
        started = time.time()
        press = ActRequest(action=Action.UPSCALE, index=3, client_ref="u3")
        created = await _lost(client, fake, parent_of(grid, request), press, api_flavor=flavour)
        lost = SubmitAttempt(
            client_ref="u3", kind=Action.UPSCALE, parent_task_id=grid.task_id, index=3, started_at=started
        )
        found = await provider.reconcile(lost)
        assert found is not None and found.task_id == created
        assert fake.tasks[created].data["action"] == "UPSCALE"
        assert (await finish(provider, created)).status is TaskStatus.SUCCEEDED
        assert fake.invalid == []


async def test_reconcile_confirms_a_remix_left_waiting(client: httpx.AsyncClient) -> None:
    async with MjProxyFake(remix=True) as fake:
        provider = MjProxyProvider(make_config(fake.base_url), client)
        request = imagine("a red barn")
        grid = await finish(provider, (await provider.submit(request)).task_id)
        started = time.time()
        press = ActRequest(action=Action.VARIATION, index=1, prompt="a blue barn", client_ref="v1")
        created = await _lost(client, fake, parent_of(grid, request), press)
        assert fake.tasks[created].data["status"] == "MODAL"  # the confirmation never went out
        lost = SubmitAttempt(
            client_ref="v1", kind=Action.VARIATION, prompt="a blue barn", parent_task_id=grid.task_id,
            index=1, started_at=started,
        )  # fmt: skip
        found = await provider.reconcile(lost)
        assert found is not None and found.task_id == created
        [modal] = fake.submitted("modal")
        assert modal.body == {"taskId": created, "prompt": "a blue barn", "state": "v1"}
        assert (await finish(provider, created)).status is TaskStatus.SUCCEEDED
        assert fake.tasks[created].data["prompt"] == "a blue barn"


def test_a_task_list_that_may_be_cut_off_cannot_prove_absence() -> None:
    started_ms = 1_760_000_000_000
    newer = [_Task(id=str(n), state=f"r{n}", submitTime=started_ms + 1 + n) for n in range(LIST_LIMIT)]
    assert find_attempt(newer, "r7", started_ms) == newer[7]
    assert find_attempt(newer[:-1], "gone", started_ms) is None  # shorter than trueai's cut: complete
    with pytest.raises(ProviderUnavailable, match="cannot tell"):  # 100 newer tasks: ours may be older
        find_attempt(newer, "gone", started_ms)
    older = [*newer, _Task(id="old", state="", submitTime=started_ms - 1)]  # novicezk: every task
    assert find_attempt(older, "gone", started_ms) is None


async def test_reconcile_reads_the_newest_tasks(fake: MjProxyFake, client: httpx.AsyncClient) -> None:
    provider = MjProxyProvider(make_config(fake.base_url, state="bot-7"), client)
    started = time.time()
    for n in range(3):
        await provider.submit(imagine().model_copy(update={"client_ref": f"r{n}"}))
    lost = SubmitAttempt(client_ref="r1", kind=Action.IMAGINE, started_at=started)
    found = await provider.reconcile(lost)
    assert found is not None and found.task_id == fake.created_ids()[1]
    other_bot = MjProxyProvider(make_config(fake.base_url, state="bot-8"), client)  # same key, other state
    assert await other_bot.reconcile(lost) is None
    with pytest.raises(ProviderRejected):  # a submit sent without a key cannot be told from the others
        await provider.reconcile(lost.model_copy(update={"client_ref": ""}))
    assert [r.path for r in fake.received if r.method == "GET"] == ["/mj/task/list"] * 2


async def test_without_a_task_list_there_is_no_reconcile(
    fake: MjProxyFake, client: httpx.AsyncClient
) -> None:
    provider = MjProxyProvider(make_config(fake.base_url, task_list=False), client)
    assert not provider.capabilities.reconcile
    with pytest.raises(ProviderRejected):
        await provider.reconcile(SubmitAttempt(client_ref="x", kind=Action.IMAGINE, started_at=time.time()))
    assert fake.received == []
