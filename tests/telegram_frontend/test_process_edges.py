"""`imagine-bot run` with Telegram at its edges: the Bot API unreachable at start, and a SIGTERM stop.
Both are one line each in the log, never a traceback, and the process keeps (or ends) its work cleanly."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from tests.bot_process import running_bot, stop, telegram_section, write_config
from tests.fakes.telegram_api import TelegramFake
from tests.telegram_frontend.conftest import ANN, BOT


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_bot_api_is_one_line_per_try_and_no_traceback(tmp_path: Path) -> None:
    port = _closed_port()
    section = {"token": "${TELEGRAM_TOKEN}", "base_url": f"http://127.0.0.1:{port}/bot",
               "base_file_url": f"http://127.0.0.1:{port}/file/bot", "poll_timeout": 1}  # fmt: skip
    path = write_config(tmp_path, duration=0.2, poll_interval=0.1, telegram=section)
    async with running_bot(path, TELEGRAM_TOKEN="123456:unreachable-secret-" + "x" * 16) as process:
        assert process.stderr is not None
        lines: list[str] = []  # the config's warnings come first (a chat bot on the simulator)
        while sum("can't reach the Bot API" in line for line in lines) < 2:
            lines.append((await asyncio.wait_for(process.stderr.readline(), 20)).decode())
            assert lines[-1], "the bot exited"
        log = await stop(process)
    tries = [line for line in [*lines, *log.splitlines()] if "can't reach the Bot API" in line]
    assert len(tries) >= 2, lines + log.splitlines()
    assert "Traceback" not in "".join(lines) + log
    assert "unreachable-secret" not in "".join(lines) + log


async def test_a_sigterm_stop_while_polling_logs_no_error(tmp_path: Path) -> None:
    async with TelegramFake(bot_username=BOT) as fake:
        path = write_config(tmp_path, duration=0.2, poll_interval=0.1, telegram=telegram_section(fake))
        async with running_bot(path, TELEGRAM_TOKEN=fake.token) as process:
            await fake.wait_until(lambda: len(fake.calls("getUpdates")) >= 2, within=30)  # mid long-poll
            fake.send_text(ANN.id, ANN, "/imagine a lighthouse before the stop", chat_type="private")
            await fake.wait_until(lambda: fake.bot_messages(ANN.id), within=20)
            log = await stop(process)
    assert "ERROR" not in log and "Traceback" not in log, log
