"""Discord sharding: several shards in one process, or one shard per worker on a shared PostgreSQL,
against the fake gateway that routes each guild's events to the shard that owns it, DMs to shard 0,
and refuses an IDENTIFY that comes sooner than its bucket allows."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bot import faults
from bot.config import AppConfig, WorkersConfig
from tests import postgres
from tests.discord_frontend.conftest import Bot, Discord, is_final, make_config, run_bot
from tests.fakes.discord_api import DiscordFake, FakeMessage

INTERVAL = 0.4  # the fake's identify bucket (Discord: 5 s); the bot's gate waits a little longer


def sharded(fake: DiscordFake, database: Path | str, guilds: list[int], **discord: object) -> AppConfig:
    config = make_config(fake, database)  # type: ignore[arg-type]
    section = config.discord.model_copy(update={  # type: ignore[union-attr]
        "guild_ids": guilds, "identify_interval": INTERVAL + 0.1, "channel_edits": 50, "channel_period": 1.0,
        **discord})  # fmt: skip
    return config.model_copy(update={"discord": section})


async def imagine_in(fake: DiscordFake, guild: int | None, channel: int, prompt: str) -> FakeMessage:
    """/imagine in `channel` of `guild`; its message once it shows the finished grid."""
    interaction = await fake.slash_command(guild, channel, fake.user, "imagine", {"prompt": prompt})

    def finished() -> FakeMessage | None:
        if interaction.response_message_id is None:
            return None
        message = fake.message(channel, interaction.response_message_id)
        return message if is_final(message) else None

    found: FakeMessage = await fake.wait_for(finished, 15)
    return found


@contextlib.asynccontextmanager
async def fake_with_two_shards() -> AsyncIterator[tuple[DiscordFake, list[tuple[int, int]]]]:
    fake = DiscordFake(identify_interval=INTERVAL, shards=2, max_concurrency=1, edit_limit=(50, 1.0))
    places = [fake.add_guild(f"guild on shard {i}", shard=(i, 2)) for i in (0, 1)]
    async with fake:
        yield fake, [(guild, channels[0]) for guild, channels in places]


async def test_one_process_runs_both_shards_and_takes_dms_on_shard_0(tmp_path: Path) -> None:
    async with fake_with_two_shards() as (fake, places):
        config = sharded(fake, tmp_path / "bot.sqlite3", [], shard_count=2)  # global commands (DMs too)
        async with run_bot(config) as bot:
            await fake.wait_for(lambda: len(fake.shards_connected()) == 2, 10)
            assert fake.shards_connected() == [(0, 2), (1, 2)]
            for guild, channel in places:
                await imagine_in(fake, guild, channel, f"a lighthouse in guild {guild}")
            await imagine_in(fake, None, fake.dm_channel(fake.user), "a lighthouse in a DM")
            sessions = sorted(fake.sessions, key=lambda s: s.shard)
            dms = [sum(name == "INTERACTION_CREATE" and "guild_id" not in d for name, d in s.dispatched)
                   for s in sessions]  # fmt: skip
            assert dms == [1, 0]  # Discord routes DMs to shard 0
            assert bot.app.worker.describe()["discord_shards"] == [0, 1]
        assert fake.identify_violations == []
        assert fake.violations == []


async def test_two_workers_one_shard_each_take_turns_to_identify(tmp_path: Path) -> None:
    """Two workers on one PostgreSQL start at once with one identify bucket: the second waits for the
    first's turn to pass (the fake refuses an IDENTIFY inside the bucket's window)."""
    async with fake_with_two_shards() as (fake, places), postgres.database() as url:
        guilds = [g for g, _ in places]
        configs = [sharded(fake, url, guilds, shard_count=2, shard_ids=[i]).model_copy(
            update={"workers": WorkersConfig(id=f"worker-{i}", heartbeat=0.2, lease=1.0)}) for i in (0, 1)]
        async with contextlib.AsyncExitStack() as stack:
            started = await asyncio.gather(*(stack.enter_async_context(run_bot(c)) for c in configs))
            bots: list[Bot] = list(started)
            assert fake.shards_connected() == [(0, 2), (1, 2)]
            for (guild, channel), bot in zip(places, bots, strict=True):
                message = await imagine_in(fake, guild, channel, f"a harbour in guild {guild}")
                job = await bot.app.service.by_message("discord", str(channel), str(message.id))
                assert job is not None and job.state.value == "succeeded"
            assert [b.app.worker.describe()["discord_shards"] for b in bots] == [[0], [1]]
        assert fake.identify_violations == []
        assert len(fake.identifies) == 2
        assert fake.violations == []


async def test_a_takeover_sweep_leaves_a_job_whose_command_is_being_answered_here(
        discord_env: Discord) -> None:
    """The first time a worker shows a channel it sends the first messages left unsent there; a job
    whose /imagine this very worker is answering at that moment (stored, its "thinking…" not yet edited)
    is not one of them: the command's own answer is its one message."""
    env, frontend = discord_env, discord_env.bot.frontend
    faults.arm("job_created=sleep:1")  # the job is stored; its answer waits
    try:
        interaction = await env.command("imagine", {"prompt": "a harbour answered once"})
        for _ in range(250):
            if await env.bot.app.service.unreplied("discord"):
                break
            await asyncio.sleep(0.02)
        assert interaction.loading  # "thinking…": acknowledged, its answer not edited in yet
        sweep = frontend.client.handlers.send_unreplied  # what taking the channel over runs
        await sweep(time.time() + 1, {str(env.channel)})
        final = await env.finished(await env.response(interaction))
    finally:
        faults.arm("")
    assert [m.id for m in env.public()] == [final.id]  # one message: the answer, no channel post
