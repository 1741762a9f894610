"""`imagine-bot run`: start the configured chat frontends and the poller under one TaskGroup."""

from __future__ import annotations

import logging
import sys

from bot.config import AppConfig

log = logging.getLogger(__name__)


def configured(config: AppConfig) -> list[str]:
    """Names of the frontends the config turns on (a section with a non-empty token)."""
    names = []
    if config.telegram and config.telegram.token.get_secret_value():
        names.append("telegram")
    if config.discord and config.discord.token.get_secret_value():
        names.append("discord")
    return names


async def run(config: AppConfig) -> int:
    names = configured(config)
    if not names:
        print("No chat frontend is configured: set telegram.token and/or discord.token in the config "
              "(see config.example.yaml). The CLI works without one: imagine-bot imagine \"a prompt\".",
              file=sys.stderr)
        return 2
    print(f"The {' and '.join(names)} frontend(s) are not part of this version yet; "
          "use the CLI (imagine-bot imagine ...) meanwhile.", file=sys.stderr)
    return 2
