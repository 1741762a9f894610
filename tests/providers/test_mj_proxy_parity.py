"""mj_proxy against its fake: the Midjourney-parity buttons of issue 15 (Upscale 2x/4x, Redo Upscale,
Make Square, Custom Zoom) and /shorten."""

from __future__ import annotations

import time
from typing import Any

import pytest

from providers.base import (
    Action,
    ActRequest,
    GenerationRequest,
    PromptParams,
    SubmitAttempt,
    TaskSnapshot,
    TaskStatus,
)
from providers.errors import ProviderRejected
from providers.mj_proxy import MjProxyConfig, MjProxyProvider
from tests.fakes.mj_proxy import MjProxyFake
from tests.providers.contract import AdapterCase, adapter_config, finish, imagine, parent_of

SECRET = "test-secret"


def make_config(base_url: str, **overrides: Any) -> MjProxyConfig:
    return adapter_config(MjProxyConfig, "mjproxy", base_url, SECRET, **overrides)


def _documented(server: MjProxyFake) -> None:
    assert server.invalid == [], "the adapter sent requests outside the documented fields"


CASE = AdapterCase(type="mj_proxy", make_fake=MjProxyFake, make_config=make_config, check=_documented)


async def upscale_of(provider: MjProxyProvider, request: GenerationRequest) -> TaskSnapshot:
    grid = await finish(provider, (await provider.submit(request)).task_id)
    task = await provider.act(parent_of(grid, request), ActRequest(action=Action.UPSCALE, index=1))
    return await finish(provider, task.task_id)


async def test_v5_upscale_offers_2x_4x_and_make_square_and_redo_after_2x(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    request = imagine("a lighthouse", version="5.2", aspect_ratio="16:9")
    upscaled = await upscale_of(provider, request)
    assert {"upscale_2x:0", "upscale_4x:0", "make_square:0", "custom_zoom:0"} <= set(upscaled.actions)
    assert "upscale_subtle:0" not in upscaled.actions and "redo_upscale:0" not in upscaled.actions

    parent = parent_of(upscaled, request, Action.UPSCALE)
    two = await provider.act(parent, ActRequest(action=Action.UPSCALE_2X))
    assert fake.submitted("action")[-1].body == {
        "taskId": upscaled.task_id,
        "customId": upscaled.actions["upscale_2x:0"],
    }
    doubled = await finish(provider, two.task_id)
    assert doubled.status is TaskStatus.SUCCEEDED and doubled.result and doubled.result.image_urls
    assert doubled.actions["redo_upscale:0"].startswith(
        "MJ::JOB::upsample_v5_2x::"
    )  # the label tells them apart
    assert "upscale_2x:0" not in doubled.actions and "upscale_4x:0" in doubled.actions

    redo = await provider.act(
        parent_of(doubled, request, Action.UPSCALE_2X), ActRequest(action=Action.REDO_UPSCALE)
    )
    assert fake.submitted("action")[-1].body["customId"] == doubled.actions["redo_upscale:0"]
    assert (await finish(provider, redo.task_id)).result.image_urls  # type: ignore[union-attr]


async def test_make_square_is_an_outpaint_and_gives_a_grid(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    request = imagine("a lighthouse", aspect_ratio="2:3")
    upscaled = await upscale_of(provider, request)
    assert upscaled.actions["make_square:0"].startswith("MJ::Outpaint::100::1::")
    task = await provider.act(
        parent_of(upscaled, request, Action.UPSCALE), ActRequest(action=Action.MAKE_SQUARE)
    )
    squared = await finish(provider, task.task_id)
    assert squared.result and squared.result.grid_url and "upscale:1" in squared.actions


async def test_square_and_v7_upscales_offer_neither_make_square_nor_2x(provider: MjProxyProvider) -> None:
    upscaled = await upscale_of(provider, imagine("a lighthouse"))
    assert not {"make_square:0", "upscale_2x:0", "upscale_4x:0"} & set(upscaled.actions)


async def test_custom_zoom_confirms_the_form_with_the_prompt_and_zoom(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    request = imagine("a lighthouse")
    upscaled = await upscale_of(provider, request)
    parent = parent_of(upscaled, request, Action.UPSCALE)
    press = ActRequest(action=Action.CUSTOM_ZOOM, prompt="a lighthouse on an island", zoom=1.5)
    task = await provider.act(parent, press)
    assert fake.submitted("action")[-1].body["customId"] == upscaled.actions["custom_zoom:0"]
    modal = fake.submitted("modal")[-1].body
    assert modal["taskId"] == task.task_id and modal["prompt"] == "a lighthouse on an island --zoom 1.5"
    zoomed = await finish(provider, task.task_id)
    assert zoomed.result and zoomed.result.grid_url and "upscale:1" in zoomed.actions


async def test_custom_zoom_without_a_factor_is_refused_before_any_call(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    request = imagine("a lighthouse")
    upscaled = await upscale_of(provider, request)
    before = len(fake.received)
    with pytest.raises(ProviderRejected, match="zoom"):
        await provider.act(
            parent_of(upscaled, request, Action.UPSCALE), ActRequest(action=Action.CUSTOM_ZOOM)
        )
    assert len(fake.received) == before


async def test_the_fake_refuses_a_custom_zoom_form_without_zoom(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    """The fake holds the adapter to Midjourney's rule (--zoom 1-2 in the form), so the test above means
    something: a form without it is a validation error."""
    request = imagine("a lighthouse")
    upscaled = await upscale_of(provider, request)
    with pytest.raises(ProviderRejected):
        await provider._press(
            parent_of(upscaled, request, Action.UPSCALE),
            upscaled.task_id,
            upscaled.actions["custom_zoom:0"],
            ActRequest(action=Action.CUSTOM_ZOOM, prompt="x"),
        )
    assert fake.invalid == ["modal: Custom Zoom needs --zoom between 1 and 2"]
    fake.invalid.clear()


async def test_shorten_gives_five_prompts(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    text = "a very beautiful lighthouse on a rocky cliff at dusk"
    task = await provider.submit(GenerationRequest(kind=Action.SHORTEN, prompt=PromptParams(text=text)))
    done = await finish(provider, task.task_id)
    assert done.result is not None and len(done.result.prompts) == 5
    assert all(text.startswith(prompt) for prompt in done.result.prompts)


async def test_a_custom_zoom_whose_answer_was_lost_is_confirmed_with_its_zoom(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    """The press reached the proxy (a task waits in MODAL) but its answer was lost: `reconcile` finds
    the task by its state and sends the form with the prompt the attempt carried, --zoom included."""
    request = imagine("a lighthouse")
    upscaled = await upscale_of(provider, request)
    started = time.time()
    press = {"taskId": upscaled.task_id, "customId": upscaled.actions["custom_zoom:0"], "state": "ref-1"}
    await provider._post("action", press, None)
    attempt = SubmitAttempt(client_ref="ref-1", kind=Action.CUSTOM_ZOOM, prompt="a lighthouse --zoom 1.5",
                            parent_task_id=upscaled.task_id, started_at=started)  # fmt: skip
    found = await provider.reconcile(attempt)
    assert found is not None and fake.submitted("modal")[-1].body["prompt"] == "a lighthouse --zoom 1.5"
    zoomed = await finish(provider, found.task_id)
    assert zoomed.result is not None and zoomed.result.grid_url
