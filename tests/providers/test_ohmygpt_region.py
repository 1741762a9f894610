"""OhMyGPT's Vary (Region): the MJ::Inpaint button pressed on /mj/action with `base64Mask`."""

from __future__ import annotations

from providers.base import Action, ActRequest, TaskStatus
from providers.ohmygpt import OhmygptProvider
from tests.fakes.ohmygpt import OhmygptFake
from tests.providers.contract import finish, imagine, parent_of
from tests.providers.test_mj_proxy_region import mask_png
from tests.providers.test_ohmygpt import CASE

__all__ = ["CASE"]


async def test_vary_region_sends_base64_mask(fake: OhmygptFake, provider: OhmygptProvider) -> None:
    request = imagine("a lighthouse")
    grid = await finish(provider, (await provider.submit(request)).task_id)
    up = await provider.act(parent_of(grid, request), ActRequest(action=Action.UPSCALE, index=1))
    upscaled = await finish(provider, up.task_id)
    assert upscaled.actions["vary_region:0"].startswith("MJ::Inpaint::1::")
    mask = mask_png()
    press = ActRequest(action=Action.VARY_REGION, mask=mask, prompt="a red door")
    task = await provider.act(parent_of(upscaled, request, Action.UPSCALE), press)
    assert fake.masks == [mask.data_uri()]
    varied = await finish(provider, task.task_id)
    assert varied.status is TaskStatus.SUCCEEDED and varied.result and varied.result.grid_url
    assert "upscale:1" in varied.actions  # a grid of four, like Midjourney's
