"""Slash commands and buttons where no guild channel is involved: a DM with the bot (global commands,
no guild_id, `user` instead of `member`) and a public thread (channel type 11) inside a guild."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.access import Caller
from bot.discord_frontend.replies import GENERIC
from bot.domain import JobState, Owner
from tests.discord_frontend.conftest import Discord, labels, make_config, run_bot
from tests.discord_frontend.test_resilience import eventually
from tests.fakes.discord_api import DiscordFake, FakeInteraction, FakeMessage, FakeUser

OPERATOR = Caller(Owner(platform="cli", user_id="test", name="test"), operator=True)
GRID_BUTTONS = [["U1", "U2", "U3", "U4"], ["V1", "V2", "V3", "V4", "🔄"]]


@dataclass
class Elsewhere(Discord):
    """The test's view of one place other than the guild's text channel: a DM or a thread."""

    where: int = 0  # the DM or thread channel id
    guild: int | None = None  # None: a DM

    @property
    def channel(self) -> int:
        return self.where

    async def command(self, name: str, options: dict[str, Any] | None = None,
                      files: dict[str, tuple[str, bytes, str]] | None = None,
                      user: FakeUser | None = None, channel: int | None = None) -> FakeInteraction:
        return await self.fake.slash_command(self.guild, channel or self.channel, user or self.alice,
                                             name, options, files)

    def answers(self) -> list[str]:
        """Every private answer in this place, text and embed titles alike."""
        return [m.content or m.embeds[0].get("title", "") for m in self.ephemeral()]


async def _in_dm(fake: DiscordFake, tmp_path: Path, ops: dict[str, Any]) -> AsyncIterator[Elsewhere]:
    """The bot with global commands (`discord.guild_ids` empty), seen from alice's DM with it."""
    config = make_config(fake, tmp_path / "bot.sqlite3", ops)
    assert config.discord is not None
    config = config.model_copy(update={"discord": config.discord.model_copy(update={"guild_ids": []})})
    async with run_bot(config) as bot:
        await fake.wait_for(lambda: fake.commands.get(None))
        yield Elsewhere(fake, config, bot, where=fake.dm_channel(fake.user))
    assert fake.violations == [], fake.violations


@pytest.fixture
async def dm(fake: DiscordFake, tmp_path: Path) -> AsyncIterator[Elsewhere]:
    async for env in _in_dm(fake, tmp_path, {}):
        yield env


@pytest.fixture
async def operator_dm(fake: DiscordFake, tmp_path: Path) -> AsyncIterator[Elsewhere]:
    """The same, alice being one of the bot's operators (`admins.users`)."""
    async for env in _in_dm(fake, tmp_path, {"admins": {"users": [f"discord:{fake.user.id}"]}}):
        yield env


async def _in_thread(fake: DiscordFake, tmp_path: Path, thread_first: bool) -> AsyncIterator[Elsewhere]:
    """The bot with guild commands, seen from a public thread under #general. `thread_first`: the thread
    exists before the bot connects (it arrives in GUILD_CREATE), else it is made later (THREAD_CREATE)."""
    thread = await fake.add_thread(fake.channel_id, "ideas") if thread_first else None
    config = make_config(fake, tmp_path / "bot.sqlite3")
    async with run_bot(config) as bot:
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
        thread = thread or await fake.add_thread(fake.channel_id, "ideas")
        yield Elsewhere(fake, config, bot, where=thread, guild=fake.guild_id)
    assert fake.violations == [], fake.violations


@pytest.fixture(params=["known at connect", "created later"])
async def thread(request: pytest.FixtureRequest, fake: DiscordFake,
                 tmp_path: Path) -> AsyncIterator[Elsewhere]:
    async for env in _in_thread(fake, tmp_path, request.param == "known at connect"):
        yield env


async def _grid(place: Elsewhere, prompt: str) -> FakeMessage:
    return await place.finished(await place.response(await place.command("imagine", {"prompt": prompt})))


def _nothing_generic(place: Elsewhere) -> None:
    assert not any(GENERIC in text or "Traceback" in text for text in place.answers())


# --------------------------------------------------------------------------------------------- DMs
async def test_imagine_in_a_dm_ends_with_the_grid_and_its_buttons_in_the_dm(dm: Elsewhere) -> None:
    interaction = await dm.command("imagine", {"prompt": "a paper boat"})
    message = await dm.response(interaction)
    assert interaction.guild_id is None and interaction.response_type == 5
    await dm.finished(message)
    assert message.channel_id == dm.channel and message.guild_id is None
    assert message.embeds[0]["description"].startswith("Done")
    (grid,) = message.attachments
    assert message.embeds[0]["image"]["url"] == grid.url
    assert labels(message) == GRID_BUTTONS
    job = await dm.job_of(message)
    assert job is not None and job.state is JobState.SUCCEEDED and job.owner.user_id == str(dm.alice.id)
    assert dm.fake.messages(dm.fake.channel_id) == []  # nothing leaked into the guild channel
    _nothing_generic(dm)


async def test_u1_in_a_dm_replies_there_with_the_upscale(dm: Elsewhere) -> None:
    grid = await _grid(dm, "a paper crane")
    pressed = await dm.press(grid, "U1")
    (upscale,) = await dm.reply_to(grid)
    await dm.finished(upscale)
    assert pressed.guild_id is None and pressed.response_type == 6
    assert upscale.channel_id == dm.channel and upscale.embeds[0]["title"].startswith("U1 · a paper crane")
    assert [a.filename.split(".")[0] for a in upscale.attachments] == ["image"]
    child = await dm.job_of(upscale)
    assert child is not None and child.kind.value == "upscale" and child.state is JobState.SUCCEEDED
    parent = await dm.job_of(grid)
    assert parent is not None and child.parent_id == parent.id
    _nothing_generic(dm)


async def test_jobs_and_info_answer_in_a_dm(dm: Elsewhere) -> None:
    grid = await _grid(dm, "a tin robot")
    job = await dm.job_of(grid)
    assert job is not None
    await dm.command("jobs")
    (listing,) = await dm.told(lambda text: text.startswith("**Your recent jobs**"))
    assert f"`{job.id}`" in listing and "a tin robot" in listing
    await dm.command("info")
    info = await dm.fake.wait_for(lambda: [m for m in dm.ephemeral() if m.embeds])
    (field,) = info[0].embeds[0]["fields"]
    assert field["name"] == "local (local)" and "available" in field["value"]
    _nothing_generic(dm)


@pytest.mark.parametrize("command", ["admin limits", "admin bans", "admin stats", "admin ban"])
async def test_admin_in_a_dm_is_refused_clearly(dm: Elsewhere, command: str) -> None:
    options = {"user": dm.bob} if command == "admin ban" else None
    await dm.command(command, options)
    (told,) = await dm.told(lambda text: bool(text))
    assert "server" in told and "direct message" in told.lower()
    _nothing_generic(dm)
    assert await dm.bot.app.admin.bans(OPERATOR) == []  # `admin ban` did nothing
    await dm.finished(await dm.response(await dm.command("imagine", {"prompt": "still served"})))


async def test_an_operator_bans_everywhere_from_a_dm(operator_dm: Elsewhere) -> None:
    dm = operator_dm
    await dm.command("admin ban", {"user": dm.bob, "reason": "spam"})
    (told,) = await dm.told(lambda text: "banned" in text)
    assert "**Bob**" in told and "everywhere" in told
    (ban,) = await dm.bot.app.admin.bans(OPERATOR)
    assert (ban.user_id, ban.reason) == (str(dm.bob.id), "spam")
    bobs_dm = dm.fake.dm_channel(dm.bob)
    await dm.command("imagine", {"prompt": "a forbidden fruit"}, user=dm.bob, channel=bobs_dm)
    refused = await dm.fake.wait_for(lambda: [m.content for m in dm.ephemeral(bobs_dm)])
    assert refused == ["You are banned from this bot (spam). Ask an admin if you think this is wrong."]
    assert dm.public(bobs_dm) == []


# ----------------------------------------------------------------------------------------- threads
async def test_imagine_in_a_thread_lands_there_and_its_buttons_work(thread: Elsewhere) -> None:
    interaction = await thread.command("imagine", {"prompt": "a quiet library"})
    message = await thread.finished(await thread.response(interaction))
    assert interaction.channel_id == thread.channel
    assert isinstance(thread.bot.frontend.client.get_channel(thread.channel), discord.Thread)  # in the cache
    assert message.channel_id == thread.channel and message.guild_id == thread.fake.guild_id
    assert labels(message) == GRID_BUTTONS and message.attachments
    await thread.press(message, "V2")
    (variation,) = await thread.reply_to(message)
    await thread.finished(variation)
    assert labels(variation) == GRID_BUTTONS and variation.attachments[0].filename.startswith("grid")
    service = thread.bot.app.service
    child = await service.by_message("discord", str(thread.channel), str(variation.id))
    assert child is not None and child.kind.value == "variation" and child.state is JobState.SUCCEEDED
    assert child.placement is not None and child.placement.chat_id == str(thread.channel)
    assert thread.fake.messages(thread.fake.channel_id) == []  # the parent channel saw none of it
    _nothing_generic(thread)


# ------------------------------------------------------------------------------ archived threads
@pytest.fixture
async def slow_thread(fake: DiscordFake, tmp_path: Path) -> AsyncIterator[Elsewhere]:
    """A thread whose jobs run long enough (1.5 s) to archive it while one runs."""
    thread = await fake.add_thread(fake.channel_id, "ideas")
    async with run_bot(make_config(fake, tmp_path / "bot.sqlite3", duration=1.5)) as bot:
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
        yield Elsewhere(fake, bot.app.config, bot, where=thread, guild=fake.guild_id)
    assert fake.violations == [], fake.violations


async def _archived_mid_job(place: Elsewhere, prompt: str, locked: bool) -> tuple[FakeMessage, int]:
    """Start a job, archive the thread while it runs, wait for the job to end: its first message, and
    how many requests named the thread from the archiving on."""
    message = await place.response(await place.command("imagine", {"prompt": prompt}))
    await place.fake.archive_thread(place.channel, locked=locked)
    before = _requests_to(place)
    service = place.bot.app.service
    job = await service.by_message("discord", str(place.channel), str(message.id))
    assert job is not None

    async def ended() -> bool:
        current = await service.get(job.id)
        return current.terminal and not any(j.id == job.id for j in await service.undelivered("discord"))

    await eventually(ended)
    return message, _requests_to(place) - before


def _requests_to(place: Elsewhere) -> int:
    return sum(f"/channels/{place.channel}/" in path for _, path in place.fake.requests)


async def test_a_job_whose_thread_was_archived_replies_there_with_its_grid(slow_thread: Elsewhere) -> None:
    thread = slow_thread
    first, _ = await _archived_mid_job(thread, "a sunken ship", locked=False)
    (grid,) = await thread.reply_to(first)
    await thread.finished(grid)
    assert grid.channel_id == thread.channel and labels(grid) == GRID_BUTTONS and grid.attachments
    assert not thread.fake.channels[thread.channel]["thread_metadata"]["archived"]  # the reply reopened it
    service = thread.bot.app.service
    job = await service.by_message("discord", str(thread.channel), str(grid.id))  # now the job's message
    assert job is not None and job.state is JobState.SUCCEEDED
    assert job.id not in {j.id for j in await service.undelivered("discord")}
    await thread.press(grid, "U3")
    (upscale,) = await thread.reply_to(grid)
    await thread.finished(upscale)
    child = await service.by_message("discord", str(thread.channel), str(upscale.id))
    assert child is not None and child.parent_id == job.id and child.state is JobState.SUCCEEDED
    _nothing_generic(thread)


async def test_a_job_whose_thread_was_locked_ends_quietly(slow_thread: Elsewhere) -> None:
    thread = slow_thread
    first, asked = await _archived_mid_job(thread, "a walled garden", locked=True)
    assert asked <= 3  # at most one refused progress edit, the refused final edit and the refused reply
    settled = _requests_to(thread)
    await asyncio.sleep(1.0)  # long enough for several Delivery retries, were there any
    assert _requests_to(thread) == settled
    assert [m.id for m in thread.public()] == [first.id]  # nothing new could be said there
    job = await thread.job_of(first)
    assert job is not None and job.state is JobState.SUCCEEDED
    assert job.id not in {j.id for j in await thread.bot.app.service.undelivered("discord")}
