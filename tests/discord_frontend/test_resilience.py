"""Long jobs, restarts, bursts and 429s: the final grid always arrives, old buttons keep working."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.domain import JobState
from tests.discord_frontend.conftest import Bot, Discord, is_final, labels, make_config, run_bot
from tests.fakes.discord_api import DiscordFake, FakeMessage


@pytest.fixture
def local_options() -> dict[str, float]:
    return {"duration": 0.8}


async def test_edits_use_the_interaction_webhook_while_it_lives_then_the_bot_token(
        fake: DiscordFake, tmp_path: Path) -> None:
    fake.token_lifetime = 0.4  # Discord's 15 minutes, shortened: the job takes longer than this
    config = make_config(fake, tmp_path / "bot.sqlite3", duration=1.2)
    section = config.discord.model_copy(update={"interaction_edit_window": 0.3})  # type: ignore[union-attr]
    async with run_bot(config.model_copy(update={"discord": section})) as bot:
        d = Discord(fake, config, bot)
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
        interaction = await d.command("imagine", {"prompt": "a slow sunrise"})
        message = await d.response(interaction)
        await d.finished(message)
    assert not fake.token_alive(interaction)
    assert message.attachments and labels(message)[0] == ["U1", "U2", "U3", "U4"], message.embeds
    channel_edits = [r for r in fake.requests if r == ("PATCH", f"/api/v10/channels/{d.channel}/messages/"
                                                                f"{message.id}")]
    webhook_edits = [r for r in fake.requests if r[0] == "PATCH" and "/webhooks/" in r[1]]
    assert len(webhook_edits) >= 2  # the response, then progress through the interaction's own bucket
    assert len(channel_edits) >= 1  # past the window: the bot token (the final grid among them)
    assert len(channel_edits) + len(webhook_edits) == message.edit_count
    assert fake.violations == []  # never a call with an expired token


async def _started(d: Discord, prompt: str) -> FakeMessage:
    return await d.response(await d.command("imagine", {"prompt": prompt}))


async def test_a_restart_mid_job_finishes_it_and_old_buttons_work(fake: DiscordFake, tmp_path: Path) -> None:
    config = make_config(fake, tmp_path / "bot.sqlite3", duration=0.8)
    async with run_bot(config) as first:
        d = Discord(fake, config, first)
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
        done_before = await d.finished(await _started(d, "finished before the restart"))
        mid_job = await _started(d, "running across the restart")
        await fake.wait_for(lambda: "Running" in mid_job.embeds[0]["description"])
    assert not is_final(mid_job) and fake.sessions == []
    async with run_bot(config) as second:  # a new client, service and store on the same database
        d = Discord(fake, config, second)
        await d.finished(mid_job)
        assert labels(mid_job)[0] == ["U1", "U2", "U3", "U4"]
        await d.press(done_before, "U1")
        await d.press(mid_job, "V2")
        (upscale,) = await d.reply_to(done_before)
        (variation,) = await d.reply_to(mid_job)
        for reply in (upscale, variation):
            await d.finished(reply)
        job = await second.app.service.by_message("discord", str(d.channel), str(variation.id))
        assert job is not None and job.kind.value == "variation" and job.state is JobState.SUCCEEDED
    assert fake.violations == []


async def eventually(check: Callable[[], Awaitable[bool]], attempts: int = 500) -> None:
    """Wait until `check()` holds (the store has no change event: look every 20 ms, up to 10 s)."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{check} never held")


async def test_a_final_edit_pending_at_shutdown_is_sent_after_the_restart(fake: DiscordFake,
                                                                          tmp_path: Path) -> None:
    # the local provider's image server gets a new port at the restart; its old URLs still resolve
    config = make_config(fake, tmp_path / "bot.sqlite3", duration=0.5)
    async with run_bot(config) as first:
        d = Discord(fake, config, first)
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
        delivered = await d.finished(await _started(d, "delivered before the stop"))
        command = await d.command("imagine", {"prompt": "finished while Discord says wait"})
        pending = await d.response(command)
        job = await first.app.service.by_message("discord", str(d.channel), str(pending.id))
        assert job is not None
        # a minute's 429 on this message (edited through its interaction's webhook): longer than
        # discord.py waits, longer than the stop's drain
        fake.inject_429(times=1000, retry_after=60, path_contains=command.token)
        first.frontend.drain_timeout = 0.1
        await eventually(lambda: _ended(first, job.id))
        await fake.wait_for(lambda: fake.sent_429 >= 1)
    assert not is_final(pending)  # the bot stopped (as on SIGTERM) with the final grid undelivered
    fake.clear_429s()
    edits_of_delivered = delivered.edit_count
    async with run_bot(config) as second:
        d = Discord(fake, config, second)
        await d.finished(pending)
        assert labels(pending)[0] == ["U1", "U2", "U3", "U4"]
        await eventually(lambda: _none_undelivered(second))
    assert delivered.edit_count == edits_of_delivered  # what was shown before is not sent again
    assert fake.violations == []


async def _ended(bot: Bot, job_id: str) -> bool:
    return (await bot.app.service.get(job_id)).terminal


async def _none_undelivered(bot: Bot) -> bool:
    return await bot.app.service.undelivered("discord") == []


async def test_twenty_jobs_at_once_in_one_channel_all_end_with_their_grid(discord_env: Discord) -> None:
    d = discord_env
    interactions = await asyncio.gather(*(d.command("imagine", {"prompt": f"burst {i}"}) for i in range(20)))
    messages = [await d.response(i) for i in interactions]
    for message in messages:
        await d.finished(message, within=30)
    assert all(m.attachments and len(labels(m)) == 2 for m in messages)
    assert sorted(m.embeds[0]["title"] for m in messages) == sorted(f"burst {i}" for i in range(20))
    jobs = [await d.job_of(m) for m in messages]
    assert all(j is not None and j.state is JobState.SUCCEEDED for j in jobs)
    assert d.fake.sent_429 == 0  # paced below the channel's edit limit
    stats = d.bot.frontend.outbox.delivery.stats
    assert stats.sent < stats.pushed  # progress edits were coalesced or skipped, finals all went out


async def test_429s_past_discord_py_retries_still_deliver_the_final_edit(discord_env: Discord) -> None:
    d = discord_env
    command = await d.command("imagine", {"prompt": "through a storm of 429s"})
    message = await d.response(command)
    d.fake.inject_429(times=12, retry_after=0.02, path_contains=command.token)  # its webhook's edits
    await d.finished(message)
    assert d.fake.sent_429 >= 12 and message.attachments
    assert d.bot.frontend.outbox.delivery.stats.retried >= 2  # discord.py gave up twice; Delivery did not
