"""mj_proxy's Vary (Region): the upscale's MJ::Inpaint button is pressed, the task waits in MODAL and
is finished through /mj/submit/modal with the mask as `maskBase64` (and the prompt, edited or not)."""

from __future__ import annotations

import io

from PIL import Image

from providers.base import Action, ActRequest, ImageInput, PromptParams, TaskStatus
from providers.errors import ProviderRejected
from providers.mj_proxy import MjProxyProvider, _Button, button_action
from tests.fakes.mj_proxy import MjProxyFake
from tests.providers.contract import finish, imagine, parent_of
from tests.providers.test_mj_proxy_parity import CASE, upscale_of

__all__ = ["CASE"]


def mask_png(size: tuple[int, int] = (64, 64)) -> ImageInput:
    image = Image.new("L", size, 0)
    image.paste(255, (8, 8, 32, 32))
    out = io.BytesIO()
    image.save(out, "PNG")
    return ImageInput(data=out.getvalue(), mime="image/png", filename="mask.png")


def test_the_inpaint_button_is_vary_region() -> None:
    assert button_action(_Button(customId="MJ::Inpaint::1::h::SOLO", label="Vary (Region)")) == (
        Action.VARY_REGION, 0)  # fmt: skip
    assert button_action(_Button(customId="", label="Vary (Region)")) == (Action.VARY_REGION, 0)


async def test_vary_region_sends_the_mask_through_the_modal(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    request = imagine("a lighthouse")
    upscaled = await upscale_of(provider, request)
    assert upscaled.actions["vary_region:0"].startswith("MJ::Inpaint::1::")
    mask = mask_png()
    press = ActRequest(action=Action.VARY_REGION, mask=mask)
    task = await provider.act(parent_of(upscaled, request, Action.UPSCALE), press)
    assert fake.submitted("action")[-1].body["customId"] == upscaled.actions["vary_region:0"]
    modal = fake.submitted("modal")[-1].body
    assert modal["taskId"] == task.task_id and modal["maskBase64"] == mask.data_uri()
    assert modal["prompt"] == "a lighthouse"  # unedited: the parent's prompt
    varied = await finish(provider, task.task_id)
    assert varied.status is TaskStatus.SUCCEEDED and varied.result and varied.result.grid_url


async def test_vary_region_with_an_edited_prompt(fake: MjProxyFake, provider: MjProxyProvider) -> None:
    request = imagine("a lighthouse")
    upscaled = await upscale_of(provider, request)
    edited = PromptParams(text="a lighthouse with a red door")
    press = ActRequest(action=Action.VARY_REGION, mask=mask_png(), prompt=edited.full(), remix=edited)
    await provider.act(parent_of(upscaled, request, Action.UPSCALE), press)
    assert fake.submitted("modal")[-1].body["prompt"] == "a lighthouse with a red door"


async def test_vary_region_without_a_mask_is_refused_before_any_call(
    fake: MjProxyFake, provider: MjProxyProvider
) -> None:
    request = imagine("a lighthouse")
    upscaled = await upscale_of(provider, request)
    before = len(fake.submitted("action"))
    try:
        parent = parent_of(upscaled, request, Action.UPSCALE)
        await provider.act(parent, ActRequest(action=Action.VARY_REGION))
    except ProviderRejected as exc:
        assert "region" in exc.message
    else:
        raise AssertionError("a press without a mask went out")
    assert len(fake.submitted("action")) == before
