"""`imagine-bot run` with Discord and Telegram both configured: one process, one event loop, one store.

A /imagine on each platform ends as a grid with buttons on that platform; SIGTERM exits 0 and leaves
both jobs in the one database.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import yaml

from tests.discord_frontend.conftest import is_final
from tests.discord_frontend.conftest import labels as discord_labels
from tests.fakes.discord_api import DiscordFake
from tests.fakes.telegram_api import TelegramFake
from tests.telegram_frontend.conftest import ANN, BOT
from tests.telegram_frontend.conftest import labels as telegram_labels

ROOT = Path(__file__).resolve().parents[1]


def write_config(tmp_path: Path, discord: DiscordFake, telegram: TelegramFake) -> Path:
    config = {
        "database": str(tmp_path / "bot.sqlite3"),
        "providers": [{"name": "local", "type": "local", "duration": 0.3, "poll_interval": 0.05,
                       "grid_size": 256}],
        "polling": {"idle_interval": 0.05},
        "media": {"allow_private_addresses": True},
        "telegram": {"token": "${TELEGRAM_TOKEN}", "base_url": f"{telegram.base_url}/bot",
                     "base_file_url": f"{telegram.base_url}/file/bot", "poll_timeout": 1},
        "discord": {"token": "${DISCORD_TOKEN}", "guild_ids": [discord.guild_id],
                    "api_base": f"{discord.base_url}/api/v10", "gateway_url": discord.gateway_url,
                    "channel_edits": 5, "channel_period": 0.25, "guild_ready_timeout": 0.05},
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


async def test_one_process_serves_discord_and_telegram(tmp_path: Path) -> None:
    async with DiscordFake() as discord, TelegramFake(bot_username=BOT) as telegram:
        path = write_config(tmp_path, discord, telegram)
        env = {"DISCORD_TOKEN": discord.token, "TELEGRAM_TOKEN": telegram.token, "PATH": "/usr/bin:/bin"}
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(path), "run", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
        try:
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
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                _, stderr = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0, stderr.decode()
        assert discord_labels(on_discord)[0] == ["U1", "U2", "U3", "U4"] and on_discord.attachments
        assert telegram_labels(on_telegram)[0] == ["U1", "U2", "U3", "U4"] and on_telegram.photo
        log = stderr.decode()
        assert discord.token not in log and telegram.token not in log
        assert discord.violations == [] and telegram.violations == []
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
        rows = db.execute("SELECT owner_platform, state FROM jobs ORDER BY owner_platform").fetchall()
    assert rows == [("discord", "succeeded"), ("telegram", "succeeded")]
