"""/jobs, /cancel, /settings, /info, /help; and the commands as synced to the guild."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.domain import JobState, Owner
from tests.discord_frontend.conftest import Discord, make_config, run_bot
from tests.fakes.discord_api import DiscordFake, FakeUser


def owner(user: FakeUser) -> Owner:
    return Owner(platform="discord", user_id=str(user.id))


@pytest.fixture
def local_options() -> dict[str, Any]:
    return {"duration": 0.6, "max_concurrency": 1}


async def test_the_commands_are_synced_to_the_configured_guild(discord_env: Discord) -> None:
    commands = {c["name"]: c for c in discord_env.fake.commands[discord_env.fake.guild_id]}
    assert set(commands) == {"imagine", "describe", "blend", "jobs", "cancel", "settings", "info", "help",
                             "admin", "shorten"}
    admin = {o["name"]: o for o in commands["admin"]["options"]}
    assert set(admin) == {"ban", "unban", "bans", "limits", "set-limit", "language", "pause", "resume",
                          "stats"}
    assert all(o["type"] == 1 for o in admin.values())  # subcommands
    assert [o["type"] for o in admin["ban"]["options"]] == [6, 3, 5]  # user, reason, everywhere
    imagine = {o["name"]: o for o in commands["imagine"]["options"]}
    assert list(imagine) == ["prompt", "aspect_ratio", "provider", "speed", "version", "stylize", "chaos",
                             "no", "seed", "image"]
    assert [c["value"] for c in imagine["provider"]["choices"]] == ["local"]
    assert (imagine["stylize"]["min_value"], imagine["stylize"]["max_value"]) == (0, 1000)
    assert imagine["image"]["type"] == 11 and imagine["prompt"]["required"]
    blend = [(o["name"], o.get("required", False)) for o in commands["blend"]["options"]]
    assert blend[:5] == [("image1", True), ("image2", True), ("image3", False), ("image4", False),
                         ("image5", False)]
    assert None not in discord_env.fake.commands  # guild commands only: no global sync


async def test_imagine_options_become_flags(discord_env: Discord) -> None:
    d = discord_env
    options = {"prompt": "a harbour", "aspect_ratio": "3:2", "version": "niji 6", "stylize": 250, "chaos": 10,
               "no": "boats, people", "seed": 42, "speed": "fast"}
    message = await d.response(await d.command("imagine", options))
    job = await d.job_of(message)
    assert job is not None and job.request.prompt is not None
    expected = "a harbour --ar 3:2 --niji 6 --s 250 --c 10 --seed 42 --no boats, people"
    assert job.request.prompt.full() == expected
    assert job.request.speed == "fast"
    assert message.embeds[0]["title"] == job.request.prompt.full()


async def test_settings_are_stored_and_used_by_imagine(discord_env: Discord) -> None:
    d = discord_env
    await d.command("settings", {"aspect_ratio": "9:16", "speed": "relax"})
    (told,) = await d.told(lambda text: text.startswith("**Your settings**"))
    assert "aspect ratio: 9:16" in told and "speed: relax" in told and "provider: local (default)" in told
    message = await d.response(await d.command("imagine", {"prompt": "a tall tower"}))
    job = await d.job_of(message)
    assert job is not None and job.request.prompt is not None
    assert job.request.prompt.aspect_ratio == "9:16" and job.request.speed == "relax"


async def test_jobs_queue_position_and_cancel(discord_env: Discord) -> None:
    d = discord_env
    running = await d.response(await d.command("imagine", {"prompt": "first in line"}))
    queued = await d.response(await d.command("imagine", {"prompt": "second in line"}))
    queued_job = await d.job_of(queued)
    assert queued_job is not None and queued_job.state is JobState.QUEUED  # max_concurrency 1
    await d.command("jobs")
    (listing,) = await d.told(lambda text: text.startswith("**Your recent jobs**"))
    assert f"`{queued_job.id}`" in listing and "second in line" in listing and "first in line" in listing
    await d.command("cancel")  # the latest unfinished job: the queued one
    (told,) = await d.told(lambda text: "cancelled" in text)
    assert told == f"Job `{queued_job.id}` cancelled."
    await d.finished(queued)
    assert queued.embeds[0]["description"].startswith("Cancelled") and not queued.components
    await d.finished(running)
    assert running.attachments
    await d.command("cancel", {"job": queued_job.id})
    (again,) = await d.told(lambda text: "already cancelled" in text)
    assert again == f"Job {queued_job.id} has already cancelled."


async def test_info_and_help(discord_env: Discord) -> None:
    d = discord_env
    await d.command("info")
    await d.command("help")
    answers = await d.fake.wait_for(lambda: len(found := d.ephemeral()) == 2 and found)
    (info,) = [m for m in answers if m.embeds]
    (help_,) = [m for m in answers if not m.embeds]
    (field,) = info.embeds[0]["fields"]
    assert field["name"] == "local (local)" and "available · 0 queued · 0 running" in field["value"]
    assert "imagine" in field["value"] and "blend" in field["value"]
    assert "/imagine prompt" in help_.content and "U1–U4" in help_.content
    assert d.public() == []


async def test_only_the_owner_or_an_admin_cancels_a_job(discord_env: Discord) -> None:
    d = discord_env
    await d.response(await d.command("imagine", {"prompt": "running"}))
    queued = await d.response(await d.command("imagine", {"prompt": "alice's queued job"}))
    job = await d.job_of(queued)
    assert job is not None and job.state is JobState.QUEUED
    await d.command("cancel", {"job": job.id}, user=d.bob)
    (refused,) = await d.told(lambda text: "belongs to" in text)
    assert refused == f"Job {job.id} belongs to Alice."
    d.fake.make_admin(d.bob)  # Manage Server: an admin of this server
    await d.command("cancel", {"job": job.id}, user=d.bob)
    await d.told(lambda text: text == f"Job `{job.id}` cancelled.")
    await d.finished(queued)
    assert queued.embeds[0]["description"].startswith("Cancelled")


@pytest.mark.parametrize("owner_only", [True, False])
async def test_a_strangers_cancel_and_press_follow_owner_only_buttons(fake: DiscordFake, tmp_path: Path,
                                                                      owner_only: bool) -> None:
    """The access policy's one rule, as on Telegram (tests/telegram_frontend/test_errors.py): with
    `access.owner_only_buttons` (the default) a stranger can neither /cancel a job nor press its
    buttons; without it anyone in the channel can do both."""
    config = make_config(fake, tmp_path / "bot.sqlite3", {"access": {"owner_only_buttons": owner_only}},
                         duration=0.6, max_concurrency=1)
    async with run_bot(config) as bot:
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
        d = Discord(fake, config, bot)
        grid = await d.response(await d.command("imagine", {"prompt": "alice's grid"}))
        queued = await d.response(await d.command("imagine", {"prompt": "alice's queued job"}))
        job = await d.job_of(queued)
        assert job.state is JobState.QUEUED
        await d.command("cancel", {"job": job.id}, user=d.bob)
        await d.finished(grid)
        await d.press(grid, "U1", user=d.bob)
        if owner_only:
            refusals = await d.told(lambda text: "belong" in text, count=2)
            assert sorted(refusals) == [f"Job {job.id} belongs to Alice.",
                                        "These buttons belong to Alice. Start your own with /imagine."]
            assert (await d.finished(queued)).attachments  # it ran to the end
            assert await bot.app.service.recent(owner(d.bob)) == []
        else:
            await d.told(lambda text: text == f"Job `{job.id}` cancelled.")
            assert (await d.finished(queued)).embeds[0]["description"].startswith("Cancelled")
            (upscale,) = await d.reply_to(grid)
            assert (await d.job_of(upscale)).owner.user_id == str(d.bob.id)
    assert fake.violations == [], fake.violations
