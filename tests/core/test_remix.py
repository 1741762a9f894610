"""Remix in the core: the setting and --remix decide who is asked for a prompt; an answer makes one
job with the edited prompt, which the local provider draws; bad answers make nothing."""

from __future__ import annotations

import pytest

from bot.access import Caller
from bot.domain import JobState
from bot.errors import InvalidPrompt, UnsupportedAction, UserError
from bot.store import JobStore
from bot.store.prompts import PromptRequest
from providers.base import Action
from tests.core.conftest import OWNER, Harness


async def test_the_setting_and_the_flag_decide_which_presses_ask(h: Harness) -> None:
    plain = await h.imagine("a red fox")
    flagged = await h.imagine("a red fox --remix --fast")
    assert flagged.request.remix and flagged.request.speed == "fast"
    assert flagged.request.prompt is not None and "--remix" not in flagged.request.prompt.full()
    assert not await h.service.asks_for_prompt(OWNER, plain, Action.VARIATION.value)
    assert await h.service.asks_for_prompt(OWNER, flagged, Action.VARIATION.value)
    assert not await h.service.asks_for_prompt(OWNER, flagged, Action.UPSCALE.value)  # nothing to remix
    await h.service.set_setting(OWNER, "remix", "on")
    for action in (Action.VARIATION, Action.REROLL, Action.VARY_STRONG, Action.PAN_LEFT):
        assert await h.service.asks_for_prompt(OWNER, plain, action.value)
    await h.service.set_setting(OWNER, "remix", "off")
    assert not await h.service.asks_for_prompt(OWNER, plain, Action.REROLL.value)
    with pytest.raises(UserError, match="on or off"):
        await h.service.set_setting(OWNER, "remix", "maybe")
    assert h.service.remix_prompt(flagged) == "a red fox"


async def test_a_remix_runs_with_the_edited_prompt_and_changes_the_picture(h: Harness) -> None:
    grid = await h.imagine("a red fox --seed 7")
    plain = await h.act(grid, Action.VARIATION.value, 2)
    child, created = await h.service.act(Caller(OWNER), grid.id, Action.VARIATION.value, 2,
                                         prompt="a blue whale --ar 16:9", origin="test:answer-1")
    assert created and child.request.remixed and child.origin == "test:answer-1"
    assert child.request.prompt is not None and child.request.prompt.text == "a blue whale"
    remixed = await h.done(child)
    assert remixed.state is JobState.SUCCEEDED and remixed.kind is Action.VARIATION
    plain_grid = (await h.service.media.files(plain)).grid
    remixed_grid = (await h.service.media.files(remixed)).grid
    assert plain_grid and remixed_grid and plain_grid != remixed_grid
    assert remixed.result is not None and remixed.result.width and remixed.result.height
    assert remixed.result.width > remixed.result.height  # the edited --ar 16:9 was drawn
    # the same answer processed again (a restart) is the same job; a second answer is a new one
    again, created = await h.service.act(Caller(OWNER), grid.id, Action.VARIATION.value, 2,
                                         prompt="a blue whale --ar 16:9", origin="test:answer-1")
    assert again.id == remixed.id and not created
    other, created = await h.service.act(Caller(OWNER), grid.id, Action.VARIATION.value, 2,
                                         prompt="a grey whale", origin="test:answer-2")
    assert created and other.id not in (remixed.id, plain.id)
    # its own children keep the edited prompt
    reroll = await h.act(await h.done(other), Action.REROLL.value)
    assert reroll.request.prompt is not None and reroll.request.prompt.text == "a grey whale"
    assert not reroll.request.remixed


async def test_a_remix_beside_a_live_press_of_the_same_button(h: Harness) -> None:
    grid = await h.imagine("a red fox")
    pressed, _ = await h.service.act(Caller(OWNER), grid.id, Action.REROLL.value)
    remixed, created = await h.service.act(Caller(OWNER), grid.id, Action.REROLL.value,
                                           prompt="a fox in snow")
    assert created and remixed.id != pressed.id and remixed.origin  # an answer without an event: unique
    again, created = await h.service.act(Caller(OWNER), grid.id, Action.REROLL.value)
    assert again.id == pressed.id and not created  # the plain press is still one job per button
    await h.settle(pressed.id, remixed.id)


@pytest.mark.parametrize(("prompt", "why"), [
    ("   ", "empty"),
    ("x" * 5000, "at most 4000"),
    ("a fox --zoom 2", "Unknown flag --zoom"),
    ("a fox --ar banana", "--ar takes a ratio"),
])  # fmt: skip
async def test_bad_remix_answers_make_no_job(h: Harness, prompt: str, why: str) -> None:
    grid = await h.imagine("a red fox")
    before = len(await h.service.recent(OWNER, 50))
    with pytest.raises(InvalidPrompt, match=why):
        await h.service.act(Caller(OWNER), grid.id, Action.VARIATION.value, 1, prompt=prompt, origin="t:1")
    assert len(await h.service.recent(OWNER, 50)) == before


async def test_an_upscale_takes_no_remix_prompt(h: Harness) -> None:
    grid = await h.imagine("a red fox")
    with pytest.raises(UnsupportedAction, match="takes no prompt"):
        await h.service.act(Caller(OWNER), grid.id, Action.UPSCALE.value, 1, prompt="a fox")


async def test_prompt_requests_are_kept_until_closed(store: JobStore) -> None:
    request = PromptRequest("telegram", "-100", "77", "abcdefghij", "variation", 2, "42", 1000.0)
    await store.prompts.add(request)
    await store.prompts.add(request)  # the same press handled again: one request
    assert await store.prompts.get("telegram", "-100", "77") == request
    assert await store.prompts.get("telegram", "-100", "78") is None
    assert await store.prompts.remove("telegram", "-100", "77")
    assert not await store.prompts.remove("telegram", "-100", "77")
    assert await store.prompts.get("telegram", "-100", "77") is None
    await store.prompts.add(request)
    pressed_again = PromptRequest("telegram", "-100", "", "abcdefghij", "variation", 2, "42")
    assert await store.prompts.open_for(pressed_again, since=900.0) == request
    assert await store.prompts.open_for(pressed_again, since=1001.0) is None  # too old to point to
    someone_else = PromptRequest("telegram", "-100", "", "abcdefghij", "variation", 2, "43")
    assert await store.prompts.open_for(someone_else, since=900.0) is None
    await store.prompts.prune(1001.0)
    assert await store.prompts.get("telegram", "-100", "77") is None
