"""The real bot (service, store, poller, local provider, discord.py client) against the fake Discord."""

from __future__ import annotations

import asyncio
import contextlib
import io
import warnings
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

with warnings.catch_warnings():  # discord.player imports the deprecated stdlib `audioop`
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401

from bot.app import App, build_app, frontend_parts, running
from bot.config import AppConfig, DiscordConfig, MediaConfig, PollingConfig
from bot.discord_frontend.client import DiscordFrontend
from bot.domain import Job
from providers.local import LocalConfig
from tests.fakes.discord_api import DiscordFake, FakeInteraction, FakeMessage, FakeUser, find_buttons

EDIT_LIMIT = (5, 0.25)  # Discord's 5 edits per channel window, on a fast clock


def png(color: tuple[int, int, int] = (200, 40, 40), size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def make_config(fake: DiscordFake, database: Path, ops: dict[str, Any] | None = None,
                **local: Any) -> AppConfig:
    """The bot on the fake with a fast local provider; `ops` adds config sections (limits, admins ...)."""
    return AppConfig(
        database=database,
        providers=[LocalConfig(name="local", **{"duration": 0.3, "poll_interval": 0.05, "grid_size": 256,
                                                **local})],
        discord=DiscordConfig(token=fake.token, guild_ids=[fake.guild_id],
                              api_base=f"{fake.base_url}/api/v10", gateway_url=fake.gateway_url,
                              channel_edits=EDIT_LIMIT[0], channel_period=EDIT_LIMIT[1],
                              guild_ready_timeout=0.05),
        media=MediaConfig(max_download_bytes=1024 * 1024),
        polling=PollingConfig(idle_interval=0.05),
        **(ops or {}),
    )


@dataclass
class Bot:
    app: App
    frontend: DiscordFrontend


@contextlib.asynccontextmanager
async def run_bot(config: AppConfig, clock: Callable[[], float] | None = None) -> AsyncIterator[Bot]:
    """build_app + poller + the Discord frontend (on `clock`, if given), until the block ends (then a
    clean stop)."""
    async with build_app(config) as app, running(app):
        parts = frontend_parts(app)
        frontend = DiscordFrontend(parts, clock) if clock else DiscordFrontend(parts)
        task = asyncio.create_task(frontend.serve())
        try:
            await asyncio.wait_for(frontend.client.ready.wait(), 10)
            yield Bot(app, frontend)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class Discord:
    """The test's view: the fake, the running bot, and what a person in the channel sees."""

    fake: DiscordFake
    config: AppConfig
    bot: Bot
    alice: FakeUser = field(init=False)
    bob: FakeUser = field(init=False)

    def __post_init__(self) -> None:
        self.alice = self.fake.user
        self.bob = next(u for u in self.fake.users if u.username == "bob")

    @property
    def channel(self) -> int:
        return self.fake.channel_id

    async def command(self, name: str, options: dict[str, Any] | None = None,
                      files: dict[str, tuple[str, bytes, str]] | None = None,
                      user: FakeUser | None = None, channel: int | None = None) -> FakeInteraction:
        return await self.fake.slash_command(self.fake.guild_id, channel or self.channel, user or self.alice,
                                             name, options, files)

    async def job_of(self, message: FakeMessage, channel: int | None = None) -> Job:
        """The job a message shows, once the bot has recorded it (just after the message appears)."""
        where = str(channel or self.channel)
        for _ in range(250):
            job = await self.bot.app.service.by_message("discord", where, str(message.id))
            if job is not None:
                return job
            await asyncio.sleep(0.02)
        raise AssertionError(f"message {message.id} never became a job's message")

    def public(self, channel: int | None = None) -> list[FakeMessage]:
        return [m for m in self.fake.messages(channel or self.channel) if not m.ephemeral]

    def ephemeral(self, channel: int | None = None) -> list[FakeMessage]:
        return [m for m in self.fake.messages(channel or self.channel) if m.ephemeral]

    async def response(self, interaction: FakeInteraction) -> FakeMessage:
        """The public message a command's interaction became."""
        def shown() -> FakeMessage | None:
            if interaction.response_message_id is None:
                return None
            message = self.fake.message(self.channel, interaction.response_message_id)
            return message if message.embeds else None

        found: FakeMessage = await self.fake.wait_for(shown)
        return found

    async def finished(self, message: FakeMessage, within: float = 10) -> FakeMessage:
        """Wait until a job message shows its final state (a result with buttons, or an ending)."""
        found: FakeMessage = await self.fake.wait_for(lambda: is_final(message) and message, within)
        return found

    async def press(self, message: FakeMessage, label: str, user: FakeUser | None = None) -> FakeInteraction:
        button = next(b for b in find_buttons(message) if b.label == label)
        return await self.fake.press(self.channel, message.id, user or self.alice, button.custom_id)

    async def reply_to(self, parent: FakeMessage, count: int = 1) -> list[FakeMessage]:
        """The public replies to `parent` once there are `count` of them, oldest first."""
        return await self.fake.wait_for(lambda: (r := [m for m in self.public() if m.reference == parent.id])
                                        and len(r) >= count and r)

    async def told(self, user_facing: Callable[[str], bool], count: int = 1) -> list[str]:
        """Ephemeral texts, once `count` of them match `user_facing`."""
        def matching() -> list[str]:
            return [m.content for m in self.ephemeral() if user_facing(m.content)]
        return await self.fake.wait_for(lambda: len(found := matching()) >= count and found)


def is_final(message: FakeMessage) -> bool:
    embed = message.embeds[0] if message.embeds else {}
    description = embed.get("description") or ""
    return bool(message.attachments and message.components) or description.startswith(
        ("Failed", "Cancelled", "Timed out"))


def labels(message: FakeMessage) -> list[list[str]]:
    rows: dict[int, list[str]] = {}
    for button in find_buttons(message):
        rows.setdefault(button.row, []).append(button.label)
    return [rows[r] for r in sorted(rows)]


@pytest.fixture
async def fake() -> AsyncIterator[DiscordFake]:
    # a restarted bot identifies again at once: real Discord would make it wait out the 5 s identify
    # bucket (discord.py does, after an Invalid Session); the restart tests need not wait for that
    server = DiscordFake(edit_limit=EDIT_LIMIT, identify_interval=0.0)
    server.add_user("bob", "Bob")
    async with server:
        yield server


@pytest.fixture
def local_options() -> dict[str, Any]:
    """Override in a module to change the local provider (duration, failure injection ...)."""
    return {}


@pytest.fixture
async def discord_env(fake: DiscordFake, tmp_path: Path,
                      local_options: dict[str, Any]) -> AsyncIterator[Discord]:
    config = make_config(fake, tmp_path / "bot.sqlite3", **local_options)
    async with run_bot(config) as bot:
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
        yield Discord(fake, config, bot)
    assert fake.violations == [], fake.violations
