"""`imagine-bot run` as a process: a config pointing at the fake serves /imagine; SIGTERM exits 0."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import yaml

from tests.discord_frontend.conftest import is_final, labels
from tests.fakes.discord_api import DiscordFake

ROOT = Path(__file__).resolve().parents[2]


def write_config(fake: DiscordFake, tmp_path: Path) -> Path:
    config = {
        "database": str(tmp_path / "bot.sqlite3"),
        "providers": [{"name": "local", "type": "local", "duration": 0.3, "poll_interval": 0.05,
                       "grid_size": 256}],
        "polling": {"idle_interval": 0.05},
        "discord": {"token": "${TEST_DISCORD_TOKEN}", "guild_ids": [fake.guild_id],
                    "api_base": f"{fake.base_url}/api/v10", "gateway_url": fake.gateway_url,
                    "channel_edits": 5, "channel_period": 0.25, "guild_ready_timeout": 0.05},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_run_serves_imagine_and_stops_cleanly_on_sigterm(fake: DiscordFake, tmp_path: Path) -> None:
    path = write_config(fake, tmp_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(path), "run", cwd=ROOT,
        env={"TEST_DISCORD_TOKEN": fake.token, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id) and fake.sessions, 20)
        interaction = await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine",
                                               {"prompt": "a process of its own"})
        message = await fake.wait_for(
            lambda: interaction.response_message_id
            and is_final(m := fake.message(fake.channel_id, interaction.response_message_id)) and m, 20)
        assert labels(message)[0] == ["U1", "U2", "U3", "U4"] and message.attachments
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            _, stderr = await process.communicate()
        assert process.returncode == 0, stderr.decode()
        assert fake.token not in stderr.decode()  # the token is never logged
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert fake.violations == []
