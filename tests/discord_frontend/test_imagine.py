"""/imagine end to end: progress in place, the final grid with its buttons, and the follow-up buttons."""

from __future__ import annotations

import io

from PIL import Image

from bot.domain import JobState
from tests.discord_frontend.conftest import Discord, labels


async def test_imagine_shows_progress_then_the_grid_with_its_buttons(discord_env: Discord) -> None:
    d = discord_env
    interaction = await d.command("imagine", {"prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"})
    message = await d.response(interaction)
    assert interaction.response_type == 5  # deferred ("thinking…") within the ack deadline
    await d.finished(message)
    embed = message.embeds[0]
    assert embed["title"] == "a lighthouse at dusk --ar 16:9"
    assert embed["description"].startswith("Done")
    (grid,) = message.attachments
    assert embed["image"]["url"] == grid.url  # the embed shows the uploaded grid
    with Image.open(io.BytesIO(grid.data)) as image:
        assert image.width > image.height  # 16:9
    assert labels(message) == [["U1", "U2", "U3", "U4"], ["V1", "V2", "V3", "V4", "🔄"]]
    # progress was shown in the same message before the grid replaced it
    descriptions = [h["embeds"][0]["description"] for h in message.history if h["embeds"]]
    assert any(text.startswith(("Starting", "Submitted", "Queued", "Running")) for text in descriptions)
    # the store knows where the job is shown
    job = await d.job_of(message)
    assert job is not None and job.state is JobState.SUCCEEDED and job.owner.user_id == str(d.alice.id)
    assert len(d.public()) == 1


async def test_u1_then_upscale_creative_each_reply_to_their_parent(discord_env: Discord) -> None:
    d = discord_env
    grid = await d.finished(await d.response(await d.command("imagine", {"prompt": "a red fox"})))
    pressed = await d.press(grid, "U1")
    (upscale,) = await d.reply_to(grid)
    await d.finished(upscale)
    assert pressed.response_type == 6  # deferred update: the grid message itself is unchanged
    assert upscale.embeds[0]["title"].startswith("U1 · a red fox")
    assert upscale.embeds[0]["description"].startswith("Upscaled")
    assert [a.filename.split(".")[0] for a in upscale.attachments] == ["image"]
    assert labels(upscale) == [["Vary (Subtle)", "Vary (Strong)", "Upscale (Subtle)", "Upscale (Creative)"],
                               ["Zoom Out 2x", "Zoom Out 1.5x", "🔍 Custom Zoom"], ["⬅️", "➡️", "⬆️", "⬇️"],
                               ["Upscale (2x)", "Upscale (4x)"]]  # a square image: no Make Square
    await d.press(upscale, "Upscale (Creative)")
    (creative,) = await d.reply_to(upscale)
    await d.finished(creative)
    assert creative.embeds[0]["title"].startswith("Upscale (Creative) · a red fox")
    service = d.bot.app.service
    child = await d.job_of(creative)
    assert child is not None and child.kind.value == "upscale_creative" and child.state is JobState.SUCCEEDED
    parent = await service.get(child.parent_id or "")
    assert parent.kind.value == "upscale" and parent.index == 1


async def test_v4_and_reroll_make_new_grids(discord_env: Discord) -> None:
    d = discord_env
    grid = await d.finished(await d.response(await d.command("imagine", {"prompt": "a blue whale"})))
    await d.press(grid, "V4")
    await d.press(grid, "🔄")
    replies = await d.reply_to(grid, 2)
    for reply in replies:
        await d.finished(reply)
        assert labels(reply)[0] == ["U1", "U2", "U3", "U4"]
        assert reply.attachments[0].filename.startswith("grid")
    jobs = [await d.job_of(r) for r in replies]
    assert {job.kind.value for job in jobs if job} == {"variation", "reroll"}


async def test_the_same_button_twice_makes_one_job(discord_env: Discord) -> None:
    d = discord_env
    grid = await d.finished(await d.response(await d.command("imagine", {"prompt": "a cat"})))
    await d.press(grid, "U2")
    (first,) = await d.reply_to(grid)
    await d.press(grid, "U2")
    (told,) = await d.told(lambda text: "already requested" in text)
    job = await d.job_of(first)
    assert job is not None and f"`{job.id}`" in told
    await d.finished(first)
    assert [m.id for m in d.public() if m.reference == grid.id] == [first.id]


async def test_someone_elses_buttons_are_refused_privately(discord_env: Discord) -> None:
    d = discord_env
    grid = await d.finished(await d.response(await d.command("imagine", {"prompt": "a dog"})))
    await d.press(grid, "U3", user=d.bob)
    (told,) = await d.told(lambda text: "belong to" in text)
    assert "Alice" in told and "/imagine" in told
    assert len(d.public()) == 1  # nothing new in the channel
