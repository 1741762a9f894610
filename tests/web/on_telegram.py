"""A bot on the fake Telegram with the web pages on: the real PTB frontend, the real webhooks server
(serving the pages) on a free loopback port, the local provider."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import AppConfig
from tests.fakes.telegram_api import FakeMessage, TelegramFake
from tests.net import free_port
from tests.telegram_frontend.conftest import ANN, BOB, BOT, GROUP, TIME_SCALE, Bot, make_config, serving

__all__ = ["ANN", "BOB", "GROUP", "Bot", "link_in", "telegram_bot"]


def web_config(tmp_path: Path, fake: TelegramFake, public_url: str | None = None, **top: Any) -> AppConfig:
    port = free_port()
    return make_config(tmp_path, fake, webhooks={"listen": f"127.0.0.1:{port}",
                                                 "public_url": public_url or f"http://127.0.0.1:{port}"},
                       web={"enabled": True}, **top)  # fmt: skip


def link_in(message: FakeMessage) -> str:
    match = re.search(r"http://\S+/web/login\?t=\S+", message.text or "")
    assert match, f"no sign-in link in {message.text!r}"
    return match[0]


@contextlib.asynccontextmanager
async def telegram_bot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, public_url: str | None = None,
                       **top: Any) -> AsyncIterator[tuple[TelegramFake, Bot]]:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    async with TelegramFake(bot_username=BOT, time_scale=TIME_SCALE) as fake:
        fake.open_chat(GROUP, "supergroup", title="Artists")
        fake.open_chat(ANN.id, "private", user=ANN)
        async with serving(web_config(tmp_path, fake, public_url, **top), fake) as bot:
            yield fake, bot
        assert fake.violations == []
