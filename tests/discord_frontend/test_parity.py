"""Issue 15 on Discord, on the local provider: /shorten then a suggestion pressed; Make Square on a
tall upscale; Custom Zoom through the form."""

from __future__ import annotations

from bot.domain import JobState
from providers.base import Action
from tests.discord_frontend.conftest import Discord, labels
from tests.fakes.discord_api import FakeMessage


async def _shown(d: Discord, message: FakeMessage) -> FakeMessage:
    """A text-only job message (no attachment) once it shows its buttons."""
    found: FakeMessage = await d.fake.wait_for(lambda: message.components and message)
    return found


async def test_shorten_then_imagine_suggestion_one(discord_env: Discord) -> None:
    d = discord_env
    assert "shorten" in {c["name"] for c in d.fake.commands[d.fake.guild_id]}
    prompt = "a very beautiful lighthouse on a rocky cliff at dusk, highly detailed --ar 16:9"
    shortened = await _shown(d, await d.response(await d.command("shorten", {"prompt": prompt})))
    job = await d.job_of(shortened)
    assert job is not None and job.kind is Action.SHORTEN and job.result is not None
    count = len(job.result.prompts)
    assert 2 <= count <= 5 and labels(shortened) == [[str(n) for n in range(1, count + 1)]]
    embed = shortened.embeds[0]
    assert embed["title"].startswith("Shorten · a very beautiful lighthouse")
    assert (
        embed["description"].startswith("Most significant: lighthouse") and "**1.**" in embed["description"]
    )

    await d.press(shortened, "1")
    (imagined,) = await d.reply_to(shortened)
    await d.finished(imagined)
    child = await d.job_of(imagined)
    assert child is not None and (child.kind, child.parent_id, child.index) == (Action.IMAGINE, job.id, 1)
    assert child.request.prompt is not None and child.request.prompt.full() == job.result.prompts[0]
    assert child.state is JobState.SUCCEEDED and labels(imagined)[0] == ["U1", "U2", "U3", "U4"]


async def test_make_square_on_a_tall_upscale(discord_env: Discord) -> None:
    d = discord_env
    grid = await d.finished(await d.response(await d.command("imagine", {"prompt": "a tall tower --ar 1:2"})))
    await d.press(grid, "U3")
    (upscale,) = await d.reply_to(grid)
    await d.finished(upscale)
    assert ["Upscale (2x)", "Upscale (4x)", "Make Square"] in labels(upscale)
    await d.press(upscale, "Make Square")
    (squared,) = await d.reply_to(upscale)
    await d.finished(squared)
    job = await d.job_of(squared)
    assert job is not None and job.kind is Action.MAKE_SQUARE and job.state is JobState.SUCCEEDED
    assert job.result is not None and job.result.width == job.result.height
    assert labels(squared)[0] == ["U1", "U2", "U3", "U4"]
    assert squared.embeds[0]["title"].startswith("Make Square · a tall tower --ar 1:2")


async def test_custom_zoom_is_a_form_with_zoom_2_and_zoom_3_is_refused(discord_env: Discord) -> None:
    d = discord_env
    grid = await d.finished(await d.response(await d.command("imagine", {"prompt": "a red fox --ar 3:2"})))
    await d.press(grid, "U2")
    (upscale,) = await d.reply_to(grid)
    await d.finished(upscale)
    jobs = len(await d.bot.app.service.recent(None, 50))

    pressed = await d.press(upscale, "🔍 Custom Zoom")
    await d.fake.wait_for(lambda: pressed.response_type is not None)
    assert pressed.response_type == 9 and pressed.modal is not None  # the press is answered with a form
    (field,) = pressed.modal["components"]
    assert field["component"]["value"] == "a red fox --ar 3:2 --zoom 2"

    await d.fake.submit_modal(pressed, {"prompt": "a red fox in a field --zoom 3"})
    told = await d.told(lambda text: "out of range" in text)
    assert "from 1 to 2" in told[0]
    assert len(await d.bot.app.service.recent(None, 50)) == jobs  # nothing made, nothing charged

    pressed = await d.press(upscale, "🔍 Custom Zoom")
    await d.fake.wait_for(lambda: pressed.response_type is not None)
    await d.fake.submit_modal(pressed, {"prompt": "a red fox in a field --ar 3:2 --zoom 1.25"})
    (zoomed,) = await d.reply_to(upscale)
    await d.finished(zoomed)
    job = await d.job_of(zoomed)
    assert (job.kind, job.request.zoom, job.state) == (Action.CUSTOM_ZOOM, 1.25, JobState.SUCCEEDED)
    assert labels(zoomed)[0] == ["U1", "U2", "U3", "U4"]
