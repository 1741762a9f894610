"""Remix on Discord: the /settings switch (or --remix) answers V, 🔄 and the pans with a form pre-filled
with the parent's prompt; its submit makes the job with the edited prompt, through the inbox (once,
also when handled again after a restart); an unusable prompt is told privately, nothing is made, and
the button asks again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.discord_frontend.inbox import SOURCE
from providers.base import Action
from tests.discord_frontend.conftest import Discord, labels
from tests.fakes.discord_api import FakeInteraction, FakeMessage

GRID_ROWS = [["U1", "U2", "U3", "U4"], ["V1", "V2", "V3", "V4", "🔄"]]


@pytest.fixture
def local_options() -> dict[str, Any]:
    return {"max_prompt_length": 100}  # a prompt can be too long for the provider, within Discord's 4000


async def _grid(d: Discord, prompt: str) -> FakeMessage:
    return await d.finished(await d.response(await d.command("imagine", {"prompt": prompt})))


async def _form(d: Discord, pressed: FakeInteraction) -> dict[str, object]:
    await d.fake.wait_for(lambda: pressed.response_type is not None)
    assert pressed.response_type == 9 and pressed.modal is not None  # the press was answered with a form
    return pressed.modal


def _input(form: dict[str, object]) -> dict[str, object]:
    (label,) = form["components"]  # type: ignore[misc]
    assert label["type"] == 18 and label["label"] == "Prompt"
    component: dict[str, object] = label["component"]
    return component


async def test_the_setting_asks_with_a_form_and_its_submit_makes_the_job(discord_env: Discord) -> None:
    d = discord_env
    await d.command("settings", {"remix": "on"})
    await d.told(lambda text: "remix: on" in text)
    grid = await _grid(d, "a red fox --ar 3:2")
    parent = await d.job_of(grid)
    jobs = len(await d.bot.app.service.recent(None, 50))

    form = await _form(d, await d.press(grid, "V3"))
    assert form["custom_id"] == f"remix:ib:v:3:{parent.id}" and form["title"] == f"Remix V3 · job {parent.id}"
    field = _input(form)
    assert (field["type"], field["style"], field["value"]) == (4, 2, "a red fox --ar 3:2")
    assert len(await d.bot.app.service.recent(None, 50)) == jobs  # asking made nothing

    submitted = await d.fake.submit_modal(d.fake.interactions[max(d.fake.interactions)],
                                          {"prompt": "a blue whale --ar 16:9"})
    (made,) = await d.reply_to(grid)
    await d.finished(made)
    job = await d.job_of(made)
    assert (job.kind, job.index, job.parent_id, job.request.remixed) == (Action.VARIATION, 3, parent.id, True)
    assert job.request.prompt is not None and job.request.prompt.full() == "a blue whale --ar 16:9"
    assert job.origin == f"discord:{submitted.id}" and labels(made) == GRID_ROWS
    assert submitted.response_type == 6  # acknowledged as the pressed message's component
    pending = await d.bot.app.store.inbox_pending(SOURCE)
    assert [e for e in pending if e.key == str(submitted.id)] == []  # committed, then done

    # U buttons are never asked about; the second V3 form is a job of its own
    await d.press(grid, "U1")
    await d.fake.wait_for(lambda: len([m for m in d.public() if m.reference == grid.id]) == 2)
    again = await d.press(grid, "V3")
    await _form(d, again)
    await d.fake.submit_modal(again, {})  # submitted unchanged: the parent's prompt
    replies = await d.reply_to(grid, 3)
    remixed = await d.job_of(replies[-1])
    assert remixed.id != job.id and remixed.request.prompt is not None
    assert remixed.request.prompt.full() == "a red fox --ar 3:2"


async def test_bad_prompts_are_told_privately_and_make_nothing(discord_env: Discord) -> None:
    d = discord_env
    grid = await _grid(d, "a red fox --remix")  # the job's own flag: no setting needed
    jobs = len(await d.bot.app.service.recent(None, 50))
    cases = (("   ", "The prompt is empty"), ("a whale --chaos 500", "--chaos must be between 0 and 100"),
             ("a whale " * 20, "takes at most 100"))
    for count, (prompt, why) in enumerate(cases, start=1):
        pressed = await d.press(grid, "🔄")
        await _form(d, pressed)
        await d.fake.submit_modal(pressed, {"prompt": prompt})
        told = await d.told(lambda text: "Press the button again" in text, count)
        assert why in told[-1] and prompt.strip()[:20] in told[-1]
    assert len(await d.bot.app.service.recent(None, 50)) == jobs
    assert [m for m in d.public() if m.reference == grid.id] == []


async def test_a_submit_handled_again_makes_one_job_and_one_message(discord_env: Discord) -> None:
    """The submit is committed to the inbox before it is answered; handled again (as a restart replays
    what was not marked done), it finds its job: nothing is made or posted twice."""
    d = discord_env
    await d.command("settings", {"remix": "on"})
    grid = await _grid(d, "a red fox")
    pressed = await d.press(grid, "V1")
    await _form(d, pressed)
    submitted = await d.fake.submit_modal(pressed, {"prompt": "a green frog"})
    (made,) = await d.reply_to(grid)
    job = await d.job_of(made)
    store = d.bot.app.store
    rows = await store.engine.rows("SELECT payload, done_at FROM inbox WHERE source = ? AND key = ?",
                                   (SOURCE, str(submitted.id)))
    ((payload, done_at),) = rows
    assert done_at is not None and json.loads(payload)["type"] == 5
    d.bot.frontend.client._connection.parsers["INTERACTION_CREATE"](json.loads(payload))
    await d.fake.wait_for(lambda: any(v.kind == "double-ack" for v in d.fake.violations))
    await d.bot.frontend.client.handlers.inbox.idle()
    same = [j for j in await d.bot.app.service.recent(None, 50) if j.origin == f"discord:{submitted.id}"]
    assert [j.id for j in same] == [job.id]
    assert [m for m in d.public() if m.reference == grid.id] == [made]
    assert {v.kind for v in d.fake.violations} == {"double-ack"}  # the run before had acknowledged it
    d.fake.violations.clear()
