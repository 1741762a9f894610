"""`imagine-bot run` with Discord and Telegram both configured: one process, one event loop, one store.

A /imagine on each platform ends as a grid with buttons on that platform; SIGTERM exits 0 and leaves
both jobs in the one database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.bot_process import discord_section, running_bot, stop, telegram_section, write_config
from tests.discord_frontend.conftest import is_final
from tests.discord_frontend.conftest import labels as discord_labels
from tests.fakes.discord_api import DiscordFake
from tests.fakes.telegram_api import TelegramFake
from tests.telegram_frontend.conftest import ANN, BOT
from tests.telegram_frontend.conftest import labels as telegram_labels


async def test_one_process_serves_discord_and_telegram(tmp_path: Path) -> None:
    async with DiscordFake() as discord, TelegramFake(bot_username=BOT) as telegram:
        path = write_config(tmp_path, duration=0.3, poll_interval=0.05,
                            discord=discord_section(discord), telegram=telegram_section(telegram))
        async with running_bot(path, DISCORD_TOKEN=discord.token, TELEGRAM_TOKEN=telegram.token) as process:
            await discord.wait_for(lambda: discord.commands.get(discord.guild_id) and discord.sessions, 30)
            await telegram.wait_until(lambda: telegram.calls("getUpdates"), within=30)
            interaction = await discord.slash_command(discord.guild_id, discord.channel_id, discord.user,
                                                      "imagine", {"prompt": "a harbour seen from Discord"})
            command = telegram.send_text(ANN.id, ANN, "/imagine a harbour seen from Telegram",
                                         chat_type="private")
            on_discord = await discord.wait_for(
                lambda: interaction.response_message_id
                and is_final(m := discord.message(discord.channel_id, interaction.response_message_id))
                and m, 30)  # fmt: skip
            [reply] = await telegram.wait_until(lambda: [
                m for m in telegram.bot_messages(ANN.id) if m.reply_to_message_id == command.message_id])
            on_telegram = await telegram.wait_until(
                lambda: (m := telegram.message(ANN.id, reply.message_id)).keyboard and m, within=30)
            log = await stop(process)
        assert discord_labels(on_discord)[0] == ["U1", "U2", "U3", "U4"] and on_discord.attachments
        assert telegram_labels(on_telegram)[0] == ["U1", "U2", "U3", "U4"] and on_telegram.photo
        assert discord.token not in log and telegram.token not in log
        assert "members would get simulator images" in log  # the config's default is the local provider
        assert discord.violations == [] and telegram.violations == []
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
        rows = db.execute("SELECT owner_platform, state FROM jobs ORDER BY owner_platform").fetchall()
    assert rows == [("discord", "succeeded"), ("telegram", "succeeded")]
