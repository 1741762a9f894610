"""Secrets never reach the logs: a whole `imagine-bot run` at DEBUG, and the filter on its own."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import sys
from pathlib import Path

import pytest
import yaml

from bot.config import parse_config
from bot.logs import REDACTED, configure_logging, secrets_of
from tests.fakes.midjourney_api import MidjourneyApiFake
from tests.fakes.telegram_api import FakeUser, TelegramFake

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "987654321:AAHsecretTelegramTokenValue_0123"
API_KEY = "mjk-live-7f3a9c2e5b1d4f6a8c0e"
HOOK_SECRET = "whsec-9d8c7b6a5f4e"
ANN = FakeUser(42, "Ann", "ann")


def _config(fmt: str = "plain") -> dict[str, object]:
    return {
        "providers": [{"name": "mj", "type": "mj_rest", "base_url": "http://127.0.0.1:1", "api_key": API_KEY,
                       "webhook_secret": HOOK_SECRET}],
        "default_provider": "mj",
        "telegram": {"token": TOKEN},
        "logging": {"format": fmt, "level": "DEBUG"},
    }  # fmt: skip


def test_every_secret_of_the_config_is_found() -> None:
    found = set(secrets_of(parse_config(_config(), {})))
    assert {TOKEN, API_KEY, HOOK_SECRET} <= found


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_messages_arguments_and_tracebacks_are_redacted(fmt: str, root_logging: None) -> None:
    out = io.StringIO()
    configure_logging(parse_config(_config(fmt), {}), out)
    log = logging.getLogger("some.library")
    log.debug("POST https://api.telegram.org/bot%s/getMe", TOKEN)
    log.info(f"header API-KEY: {API_KEY}")
    try:
        raise RuntimeError(f"signature {HOOK_SECRET} did not match")
    except RuntimeError:
        log.exception("callback failed for key %r", API_KEY)
    text = out.getvalue()
    assert TOKEN not in text and API_KEY not in text and HOOK_SECRET not in text
    assert text.count(REDACTED) == 4
    if fmt == "json":
        entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert [e["level"] for e in entries] == ["DEBUG", "INFO", "ERROR"]
        assert "RuntimeError: signature [REDACTED] did not match" in entries[2]["exc"]


async def test_a_full_run_at_debug_logs_no_secret(tmp_path: Path) -> None:
    mj_fake = MidjourneyApiFake(api_key=API_KEY, polls_to_finish=1)
    async with TelegramFake(token=TOKEN) as telegram, mj_fake as mj:
        telegram.open_chat(ANN.id, "private", user=ANN)
        config = {
            "database": str(tmp_path / "bot.sqlite3"), "default_provider": "mj", "log_level": "DEBUG",
            "providers": [{"name": "mj", "type": "midjourney_api", "base_url": mj.base_url,
                           "api_key": "${TEST_MJ_KEY}", "poll_interval": 0.05}],
            "telegram": {"token": "${TEST_TG_TOKEN}", "base_url": f"{telegram.base_url}/bot",
                         "base_file_url": f"{telegram.base_url}/file/bot", "poll_timeout": 1.0},
            "media": {"allow_private_addresses": True},
            "polling": {"idle_interval": 0.05},
            "logging": {"format": "json"},
        }  # fmt: skip
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        logged = tmp_path / "output.log"  # a file, not a pipe: DEBUG output would fill a pipe's buffer
        with logged.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "--config", str(path), "run", cwd=ROOT,
                env={"TEST_TG_TOKEN": TOKEN, "TEST_MJ_KEY": API_KEY, "PATH": "/usr/bin:/bin"},
                stdout=sink, stderr=sink)
        try:
            await telegram.wait_until(lambda: telegram.calls("getUpdates"), within=20)
            telegram.send_text(ANN.id, ANN, "/imagine a lighthouse at dusk")
            await telegram.wait_until(
                lambda: any(m.keyboard for m in telegram.bot_messages(ANN.id)), within=20)
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    output = logged.read_text(encoding="utf-8", errors="replace")
    assert process.returncode == 0, output[-2000:]
    assert mj.submits(), "the job went through the keyed provider"
    assert '"level": "DEBUG"' in output  # it really logged at DEBUG ...
    assert REDACTED in output  # ... including lines that carried the token (Bot API URLs)
    for secret in (TOKEN, TOKEN.split(":")[1], API_KEY):
        assert secret not in output
