"""The real PTB Application against the fake Bot API on 127.0.0.1, with a real service, store and the
local provider. Tests act as people in a chat (fake.send_text, press ...) and look at what they see.

Time: the fake's flood windows are scaled by TIME_SCALE and the bot's pacing is scaled alike (with a
margin), so bursts exercise the real limits in a fraction of the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from PIL import Image

from bot.app import App, build_app, frontend_parts, running
from bot.config import AppConfig, parse_config
from bot.domain import Job
from bot.telegram_frontend.app import TelegramFrontend
from tests.fakes.telegram_api import FakeMessage, FakeUser, TelegramFake

TIME_SCALE = 0.02
GROUP = -1001234567890
ANN = FakeUser(42, "Ann", "ann")
BOB = FakeUser(43, "Bob")
BOT = "imagine_test_bot"


def scaled(period: float, margin: float) -> float:
    return period * TIME_SCALE * margin


def make_config(tmp_path: Path, fake: TelegramFake, *, local: dict[str, Any] | None = None,
                telegram: dict[str, Any] | None = None, **top: Any) -> AppConfig:
    document: dict[str, Any] = {
        "database": str(tmp_path / "bot.sqlite3"),
        "providers": [{"name": "local", "type": "local", "duration": 0.3, "poll_interval": 0.05,
                       "grid_size": 256, **(local or {})}],
        "telegram": {
            "token": fake.token,
            "base_url": f"{fake.base_url}/bot",
            "base_file_url": f"{fake.base_url}/file/bot",
            "chat_rate": {"count": 1, "period": scaled(1.0, 1.5)},
            "group_rate": {"count": 20, "period": scaled(60.0, 1.1)},
            "global_rate": {"count": 30, "period": scaled(1.0, 1.5)},
            "album_wait": 0.2,
            "poll_timeout": 1.0,
            **(telegram or {}),
        },
        "media": {"allow_private_addresses": True},
        "polling": {"idle_interval": 0.05, "backoff_base": 0.02, "backoff_max": 0.1},
        **top,
    }  # fmt: skip
    return parse_config(document, {})


def image(width: int = 96, height: int = 64, color: str = "red", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, fmt)
    return buf.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


def labels(message: FakeMessage) -> list[list[str]]:
    return [[text for text, _ in row] for row in message.keyboard]


@dataclass
class Bot:
    """A running bot and the chat it talks to, with the questions tests ask of them."""

    fake: TelegramFake
    app: App
    frontend: TelegramFrontend

    def replies(self, chat_id: int, message_id: int) -> list[FakeMessage]:
        """The bot's messages replying to `message_id`."""
        return [m for m in self.fake.bot_messages(chat_id) if m.reply_to_message_id == message_id]

    async def reply(self, chat_id: int, message_id: int, within: float = 10.0) -> FakeMessage:
        replies = await self.fake.wait_until(lambda: self.replies(chat_id, message_id), within)
        return replies[0]

    async def until(self, chat_id: int, message_id: int, test: Callable[[FakeMessage], object],
                    within: float = 15.0) -> FakeMessage:
        """Wait until the message passes `test`; return it."""
        await self.fake.wait_until(lambda: test(self.fake.message(chat_id, message_id)), within)
        return self.fake.message(chat_id, message_id)

    async def finished(self, chat_id: int, message_id: int, within: float = 15.0) -> FakeMessage:
        """Wait until the message shows a result with buttons."""
        return await self.until(chat_id, message_id, lambda m: m.keyboard, within)

    async def job(self, chat_id: int, message: FakeMessage, within: float = 5.0) -> Job:
        """The job the message shows (recorded just after the message is sent: wait for it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (job := await self.app.service.by_message("telegram", str(chat_id),
                                                        str(message.message_id))) is None:
            assert loop.time() < deadline, f"message {message.message_id} shows no job"
            await asyncio.sleep(0.01)
        return job

    async def ended(self, job_id: str, within: float = 15.0) -> Job:
        """Wait until the stored job is terminal; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not (job := await self.app.service.get(job_id)).terminal:
            assert loop.time() < deadline, f"job {job_id} still {job.state.value} after {within}s"
            await asyncio.sleep(0.02)
        return job

    async def settled(self) -> None:
        """Every queued edit delivered."""
        await self.frontend.outbox.delivery.flush()


Serving = contextlib.AbstractAsyncContextManager[Bot]


class BotFactory(Protocol):
    def __call__(self, config: AppConfig | None = None, **overrides: Any) -> Serving: ...


@contextlib.asynccontextmanager
async def serving(config: AppConfig, fake: TelegramFake, *, shutdown_flush: float = 5.0,
                  prepare: Callable[[App, TelegramFrontend], None] | None = None) -> AsyncIterator[Bot]:
    """build_app + poller + TelegramFrontend.serve() (`prepare`d first, if given), until the block ends
    (then a clean stop); yields once the bot receives updates (polls, or its webhook is set)."""
    async with build_app(config) as app, running(app):
        frontend = TelegramFrontend(frontend_parts(app), retry_after_scale=fake.time_scale,
                                    shutdown_flush=shutdown_flush)
        if prepare is not None:
            prepare(app, frontend)
        task = asyncio.create_task(frontend.serve(), name="telegram-under-test")
        try:
            await fake.wait_until(lambda: frontend.inbox.receiving or task.done())
            if task.done():
                task.result()
            yield Bot(fake, app, frontend)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert frontend.handlers.errors == 0, "a handler failed unexpectedly (see the log)"


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB 22 warns when RetryAfter.retry_after is read as an int; opt in to timedelta (both handled)."""
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def fake() -> AsyncIterator[TelegramFake]:
    async with TelegramFake(bot_username=BOT, time_scale=TIME_SCALE) as f:
        f.open_chat(GROUP, "supergroup", title="Artists")
        f.open_chat(ANN.id, "private", user=ANN)
        f.open_chat(BOB.id, "private", user=BOB)
        yield f
        assert f.violations == []


@pytest.fixture
def make_bot(fake: TelegramFake, tmp_path: Path) -> BotFactory:
    def factory(config: AppConfig | None = None, **overrides: Any) -> Serving:
        return serving(config or make_config(tmp_path, fake, **overrides), fake)

    return factory


@pytest.fixture
async def bot(make_bot: BotFactory) -> AsyncIterator[Bot]:
    async with make_bot() as running_bot:
        yield running_bot
