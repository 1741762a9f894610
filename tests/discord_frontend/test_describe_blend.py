"""/describe → press a prompt number; /blend of 2 and of 5 attachments served from the fake's CDN."""

from __future__ import annotations

from bot.domain import JobState
from tests.discord_frontend.conftest import Discord, labels, png


async def test_describe_then_imagine_prompt_two(discord_env: Discord) -> None:
    d = discord_env
    interaction = await d.command("describe", files={"image": ("cat.png", png((250, 180, 20)), "image/png")})
    described = await d.finished(await d.response(interaction))
    assert labels(described) == [["1", "2", "3", "4"]]
    embed = described.embeds[0]
    assert embed["title"] == "Describe" and "**2.**" in embed["description"]
    assert embed["thumbnail"]["url"] == described.attachments[0].url  # the described image, re-shown
    job = await d.job_of(described)
    assert job is not None and job.result is not None and len(job.result.prompts) == 4
    await d.press(described, "2")
    (imagined,) = await d.reply_to(described)
    await d.finished(imagined)
    child = await d.job_of(imagined)
    assert child is not None and child.kind.value == "imagine" and child.state is JobState.SUCCEEDED
    assert child.request.prompt is not None
    assert child.request.prompt.text == job.result.prompts[1].split(" --")[0]
    assert labels(imagined)[0] == ["U1", "U2", "U3", "U4"]


async def test_blend_of_two(discord_env: Discord) -> None:
    d = discord_env
    files = {"image1": ("a.png", png((255, 0, 0)), "image/png"),
             "image2": ("b.png", png((0, 0, 255)), "image/png")}
    message = await d.finished(await d.response(await d.command("blend", {"dimensions": "landscape"}, files)))
    assert message.embeds[0]["title"] == "Blend of 2 images"
    assert labels(message)[0] == ["U1", "U2", "U3", "U4"]
    job = await d.job_of(message)
    assert job is not None and job.request.dimensions == "landscape" and len(job.request.images) == 2
    assert all(i.sha256 and not i.data for i in job.request.images)  # the row names them; the bytes:
    assert [i.data for i in await d.bot.app.service.inputs(job)] == [files["image1"][1], files["image2"][1]]


async def test_blend_of_five(discord_env: Discord) -> None:
    d = discord_env
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255)]
    files = {f"image{i}": (f"{i}.png", png(c), "image/png") for i, c in enumerate(colors, start=1)}
    message = await d.finished(await d.response(await d.command("blend", files=files)))
    assert message.embeds[0]["title"] == "Blend of 5 images" and message.attachments
    job = await d.job_of(message)
    assert job is not None and len(job.request.images) == 5 and job.state is JobState.SUCCEEDED
