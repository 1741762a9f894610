"""`imagine-bot run`: build the configured chat frontends and serve them beside the poller.

A frontend is anything with a `name` and an `async serve()` that runs until cancelled (it registers
its job listener on `app.listeners` itself and removes it on the way out). Everything runs in one
event loop under one TaskGroup; SIGTERM/SIGINT cancel it, so every part shuts down in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Protocol

from bot.app import App, build_app, frontend_parts, running
from bot.config import AppConfig
from bot.config_check import config_warnings
from bot.errors import ExitCode

log = logging.getLogger(__name__)


class Frontend(Protocol):
    name: str

    async def serve(self) -> None:
        """Connect, serve commands and button presses, and deliver job changes until cancelled."""


def build(app: App, names: list[str]) -> list[Frontend]:
    """One frontend object per configured platform (imports stay inside: each pulls a chat library)."""
    built: list[Frontend] = []
    if "telegram" in names:
        from bot.telegram_frontend.app import TelegramFrontend

        built.append(TelegramFrontend(frontend_parts(app)))
    if "discord" in names:
        from bot.discord_frontend.client import DiscordFrontend

        built.append(DiscordFrontend(frontend_parts(app)))
    return built


async def run(config: AppConfig) -> int:
    names = config.chat_frontends
    if not names and not config.web_enabled:
        print("No chat frontend is configured: set telegram.token and/or discord.token in the config "
              "(see config.example.yaml), or turn on the web pages (web.enabled). The CLI works without "
              "one: imagine-bot imagine \"a prompt\".", file=sys.stderr)
        return ExitCode.NO_FRONTEND
    for warning in config_warnings(config):
        log.warning("config: %s", warning)
    async with build_app(config) as app, running(app):
        frontends = build(app, names)
        if not frontends and app.web is None:
            print(f"The {' and '.join(names)} frontend(s) are not part of this version yet.", file=sys.stderr)
            return ExitCode.NO_FRONTEND
        await _serve_until_signal(frontends)
    return 0


async def _serve_until_signal(frontends: list[Frontend]) -> None:
    """Serve every frontend; SIGTERM or SIGINT ends them all cleanly (jobs resume on the next start)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(f.serve(), name=f.name) for f in frontends]
            await stop.wait()
            log.info("signal received: stopping %s", ", ".join(f.name for f in frontends))
            for task in tasks:
                task.cancel()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):
                loop.remove_signal_handler(sig)
