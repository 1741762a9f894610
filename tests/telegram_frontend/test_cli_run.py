"""`imagine-bot run` as a real process, with `telegram.base_url` pointing at the fake: /imagine end to end,
then SIGTERM, and the process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import yaml

from tests.fakes.telegram_api import TelegramFake
from tests.telegram_frontend.conftest import ANN, BOT, labels

_CLI = Path(sys.executable).with_name("imagine-bot")


async def test_imagine_bot_run_serves_telegram_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with TelegramFake(bot_username=BOT) as fake:
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "database": str(tmp_path / "bot.sqlite3"),
            "providers": [{"name": "local", "type": "local", "duration": 0.5, "poll_interval": 0.1,
                           "grid_size": 256}],
            "telegram": {"token": "${TELEGRAM_TOKEN}", "base_url": f"{fake.base_url}/bot",
                         "base_file_url": f"{fake.base_url}/file/bot", "poll_timeout": 1},
            "media": {"allow_private_addresses": True},
            "polling": {"idle_interval": 0.1},
        }), encoding="utf-8")  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "IMAGINE_BOT_CONFIG"}
        env["TELEGRAM_TOKEN"] = fake.token
        process = await asyncio.create_subprocess_exec(
            str(_CLI), "--config", str(config), "run",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        try:
            await fake.wait_until(lambda: fake.calls("getUpdates"), within=30)
            command = fake.send_text(ANN.id, ANN, "/imagine a lighthouse at dusk", chat_type="private")
            [reply] = await fake.wait_until(
                lambda: [m for m in fake.bot_messages(ANN.id) if m.reply_to_message_id == command.message_id])
            await fake.wait_until(lambda: fake.message(ANN.id, reply.message_id).keyboard, within=20)
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode == 0, f"stdout:\n{out.decode()}\nstderr:\n{err.decode()}"
        final = fake.message(ANN.id, reply.message_id)
        assert labels(final)[0] == ["U1", "U2", "U3", "U4"] and final.photo
        assert fake.token not in out.decode() + err.decode()  # the token is never logged
        assert fake.violations == []
