"""Logging, configured once by the composition root: plain or JSON lines on stderr, with every secret
of the config (each SecretStr value: API keys, bot tokens, webhook secrets) redacted from every record,
its arguments, its exception text and its stack, whichever library logged it (httpx logs request
URLs, and a Telegram bot token is part of every Bot API URL)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import BaseModel, SecretStr

from bot.config import AppConfig

REDACTED = "[REDACTED]"
_MIN_SECRET = 4  # shorter values would redact ordinary words; such a secret is no secret anyway
_NOISY = ("httpx", "httpcore", "aiosqlite", "PIL", "asyncio", "discord.gateway", "telegram.ext.Updater")


def secrets_of(value: Any) -> Iterator[str]:
    """Every non-empty SecretStr value inside a config model (nested models, lists, dicts)."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        if secret:
            yield secret
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from secrets_of(getattr(value, name))
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from secrets_of(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from secrets_of(item)


class RedactSecrets(logging.Filter):
    """Replaces every secret in a record's message, exception text and stack with [REDACTED]."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)
        self._formatter = logging.Formatter()

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and exc/stack when present."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(
    config: AppConfig, stream: TextIO | None = None, *, quiet: bool = False
) -> logging.Handler:
    """Install the one root handler (replacing any earlier one) and return it. `quiet` (one-shot CLI
    commands) logs only warnings unless the config asks for DEBUG."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if config.logging.format == "json" else logging.Formatter(PLAIN))
    handler.addFilter(RedactSecrets(secrets_of(config)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level = config.logging.level or config.log_level
    if quiet and level != "DEBUG":
        level = "WARNING"
    root.setLevel(level)
    if level != "DEBUG":  # libraries' INFO chatter (one line per HTTP request) only when debugging
        for name in _NOISY:
            logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return handler
