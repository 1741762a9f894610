"""`imagine-bot run` as a process: a config pointing at the fake serves /imagine; SIGTERM exits 0."""

from __future__ import annotations

from pathlib import Path

from tests.bot_process import discord_section, running_bot, stop, write_config
from tests.discord_frontend.conftest import is_final, labels
from tests.fakes.discord_api import DiscordFake


async def test_run_serves_imagine_and_stops_cleanly_on_sigterm(fake: DiscordFake, tmp_path: Path) -> None:
    path = write_config(tmp_path, duration=0.3, poll_interval=0.05, discord=discord_section(fake))
    async with running_bot(path, DISCORD_TOKEN=fake.token) as process:
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id) and fake.sessions, 20)
        interaction = await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine",
                                               {"prompt": "a process of its own"})
        message = await fake.wait_for(
            lambda: interaction.response_message_id
            and is_final(m := fake.message(fake.channel_id, interaction.response_message_id)) and m, 20)
        assert labels(message)[0] == ["U1", "U2", "U3", "U4"] and message.attachments
        log = await stop(process, within=15)
        assert fake.token not in log  # the token is never logged
    assert fake.violations == []
