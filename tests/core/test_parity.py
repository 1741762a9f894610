"""Issue 15's Midjourney-parity actions through the service, on the local provider: /shorten (the
bot's own analysis), Custom Zoom (its prompt, its range), Make Square, Upscale (2x)/(4x), Redo Upscale."""

from __future__ import annotations

import pytest

from bot.access import Caller
from bot.domain import PICK_PROMPT, JobState
from bot.errors import InvalidPrompt
from providers.base import Action
from tests.core.conftest import OWNER, Harness, size_of

CALLER = Caller(OWNER)


async def _upscale(h: Harness, prompt: str) -> tuple[str, str]:
    grid = await h.imagine(prompt)
    up = await h.act(grid, Action.UPSCALE.value, 2)
    return grid.id, up.id


async def test_shorten_is_served_by_the_bot_where_the_provider_has_none(h: Harness) -> None:
    assert not h.service.can("local", Action.SHORTEN)
    job = await h.done(
        await h.service.shorten(CALLER, "a very beautiful lighthouse on a rocky cliff at dusk --ar 3:2")
    )
    assert job.state is JobState.SUCCEEDED and job.kind is Action.SHORTEN
    assert job.result is not None and 1 <= len(job.result.prompts) <= 5
    assert all(p.endswith("--ar 3:2") and "lighthouse" in p for p in job.result.prompts)
    assert job.result.summary and job.result.summary.startswith("Most significant: lighthouse")
    assert h.providers["local"].calls["submit"] == 0  # no provider call for it

    picked, created = await h.service.act(CALLER, job.id, PICK_PROMPT, 2)
    assert created and picked.kind is Action.IMAGINE and picked.parent_id == job.id
    assert picked.request.prompt is not None and picked.request.prompt.full() == job.result.prompts[1]
    assert (await h.done(picked)).state is JobState.SUCCEEDED


async def test_shorten_checks_the_prompt_like_imagine(h: Harness) -> None:
    with pytest.raises(InvalidPrompt):
        await h.service.shorten(CALLER, "a fox --ar 0:0")


@pytest.mark.parametrize("answer", ["a fox --zoom 3", "a fox --zoom 0.5", "a fox --zoom big", "a fox",
                                    "a fox --zoom", "a fox --zoom 1.5 --zoom 2"])  # fmt: skip
async def test_custom_zoom_out_of_range_is_refused_before_anything_is_made(h: Harness, answer: str) -> None:
    _, up = await _upscale(h, "a fox --ar 3:2")
    before = [job.id for job in await h.service.recent(OWNER, 50)]
    usage = await h.service.usage(CALLER)
    with pytest.raises(InvalidPrompt, match="zoom"):
        await h.service.act(CALLER, up, Action.CUSTOM_ZOOM.value, prompt=answer)
    assert [job.id for job in await h.service.recent(OWNER, 50)] == before  # nothing created
    assert await h.service.usage(CALLER) == usage  # nothing charged
    assert h.providers["local"].calls["act"] == 1  # only the upscale reached the provider


async def test_custom_zoom_asks_for_its_prompt(h: Harness) -> None:
    _, up = await _upscale(h, "a fox")
    parent = await h.service.get(up)
    assert await h.service.asks_for_prompt(OWNER, parent, Action.CUSTOM_ZOOM.value)  # Remix off or on
    assert h.service.remix_prompt(parent, Action.CUSTOM_ZOOM.value) == "a fox --zoom 2"
    with pytest.raises(InvalidPrompt, match="needs the prompt with --zoom"):
        await h.service.act(CALLER, up, Action.CUSTOM_ZOOM.value)  # a press without its answer


async def test_custom_zoom_with_an_edited_prompt(h: Harness) -> None:
    """The answer may change the prompt and its shape (Midjourney's form holds the whole prompt)."""
    _, up = await _upscale(h, "a fox")
    answer = "a fox in a wide meadow --ar 3:2 --zoom 1.5"
    child, created = await h.service.act(CALLER, up, Action.CUSTOM_ZOOM.value, prompt=answer)
    assert created and child.request.zoom == 1.5 and child.request.prompt is not None
    assert child.request.prompt.full() == "a fox in a wide meadow --ar 3:2"  # --zoom travels beside it
    done = await h.done(child)
    assert done.state is JobState.SUCCEEDED and done.result and done.result.grid_url
    assert (Action.UPSCALE, 1) in done.offers()
    grid = (await h.service.media.files(done)).grid
    assert grid is not None and size_of(grid)[0] > size_of(grid)[1]  # the edited prompt's --ar 3:2


async def test_make_square_only_on_non_square_images(h: Harness) -> None:
    _, square = await _upscale(h, "a fox")
    assert (Action.MAKE_SQUARE, 0) not in (await h.service.get(square)).offers()
    _, wide = await _upscale(h, "a fox --ar 16:9")
    made = await h.act(await h.service.get(wide), Action.MAKE_SQUARE.value)
    assert made.state is JobState.SUCCEEDED and made.result and made.result.grid_url
    grid = (await h.service.media.files(made)).grid
    assert grid is not None and size_of(grid)[0] == size_of(grid)[1]


async def test_upscale_2x_4x_and_redo(h: Harness) -> None:
    _, up = await _upscale(h, "a fox")
    plain = await h.service.get(up)
    assert (Action.REDO_UPSCALE, 0) not in plain.offers()  # a plain U is no upscaler's image
    base = size_of((await h.service.media.files(plain)).images[0])
    doubled = await h.act(plain, Action.UPSCALE_2X.value)
    assert size_of((await h.service.media.files(doubled)).images[0]) == (base[0] * 2, base[1] * 2)
    assert (Action.REDO_UPSCALE, 0) in doubled.offers()
    redone = await h.act(doubled, Action.REDO_UPSCALE.value)
    assert size_of((await h.service.media.files(redone)).images[0]) == (base[0] * 2, base[1] * 2)
    quadrupled = await h.act(plain, Action.UPSCALE_4X.value)
    assert quadrupled.result and (quadrupled.result.width, quadrupled.result.height) == (
        base[0] * 4,
        base[1] * 4,
    )
