"""`imagine-bot run` as a child process against the fakes: its config, its start and its clean stop.

The tests of the process as a whole (one process for both platforms, SIGTERM then restart) share this,
so each says only what it runs and what it expects.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml

from tests.fakes.discord_api import DiscordFake
from tests.fakes.telegram_api import TelegramFake

ROOT = Path(__file__).resolve().parents[1]
Process = asyncio.subprocess.Process


def telegram_section(fake: TelegramFake) -> dict[str, Any]:
    return {"token": "${TELEGRAM_TOKEN}", "base_url": f"{fake.base_url}/bot",
            "base_file_url": f"{fake.base_url}/file/bot", "poll_timeout": 1}  # fmt: skip


def discord_section(fake: DiscordFake) -> dict[str, Any]:
    return {"token": "${DISCORD_TOKEN}", "guild_ids": [fake.guild_id],
            "api_base": f"{fake.base_url}/api/v10", "gateway_url": fake.gateway_url,
            "channel_edits": 5, "channel_period": 0.25, "guild_ready_timeout": 0.05}  # fmt: skip


def write_config(
    tmp_path: Path, *, duration: float, poll_interval: float, **frontends: dict[str, Any]
) -> Path:
    """A config on the local provider (jobs of `duration` s) with the given frontend sections."""
    config = {
        "database": str(tmp_path / "bot.sqlite3"),
        "providers": [{"name": "local", "type": "local", "duration": duration, "poll_interval": poll_interval,
                       "grid_size": 256}],
        "polling": {"idle_interval": min(poll_interval, 0.1)},
        "media": {"allow_private_addresses": True},
        **frontends,
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def running_bot(path: Path, **tokens: str) -> AsyncIterator[Process]:
    """`imagine-bot --config PATH run` with only `tokens` (e.g. TELEGRAM_TOKEN=...) in its environment;
    killed on the way out unless the block stopped it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(path), "run", cwd=ROOT,
        env={**tokens, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stop(process: Process, within: float = 20) -> str:
    """SIGTERM, then the process must exit 0; returns what it logged (stderr)."""
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(within):
        _, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stderr.decode()
