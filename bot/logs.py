"""Logging, configured once by the composition root: plain or JSON lines on stderr, with every secret
of the config (each SecretStr value: API keys, bot tokens, webhook secrets) redacted from every record,
its arguments, its exception text and its stack, whichever library logged it (httpx logs request
URLs, and a Telegram bot token is part of every Bot API URL).

A secret is found in every form it takes in logged text: as is, percent-encoded (PTB's file URLs carry
the token as `123%3AAB...`), form- or JSON-escaped, base64. Secrets the config does not hold, Discord's
interaction and webhook tokens (in the URLs discord.py logs and the events its gateway logs), and
`token=`-like query parameters are found by their shape."""

from __future__ import annotations

import base64
import json
import logging
import re
import string
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import BaseModel, SecretStr

from bot.config import AppConfig, database_password

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


_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")  # never percent-encoded in practice
_ESCAPED = {"/": r"\\/", '"': r'\\"', "'": r"\\'", "\\": r"\\\\"}  # JSON's and repr's escapes


def _hex(byte: int) -> str:
    """`%XX` for `byte`, either case of hex digit (quote() writes upper case, some clients lower)."""
    return "%" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in f"{byte:02X}")


def _char(char: str) -> str:
    """A pattern for one character of a secret in any of its encodings, mixed freely within a secret."""
    if char in _UNRESERVED:
        return re.escape(char)
    encoded = "".join(_hex(b) for b in char.encode())
    forms = [re.escape(char), encoded, encoded.replace("%", "%25")]  # plain, encoded, encoded twice
    if char == " ":
        forms.append(r"\+")
    if char in _ESCAPED:
        forms.append(_ESCAPED[char])
    if 127 < ord(char) <= 0xFFFF:  # json.dumps writes non-ASCII as \\uXXXX
        forms.append(r"\\u" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in f"{ord(char):04X}"))
    return "(?:" + "|".join(forms) + ")"


def _secret_forms(secret: str) -> list[str]:
    """Patterns for `secret`: every percent/escape encoding of it, and its base64 (a header, a data URI
    or a query parameter that carries it encoded)."""
    encoded = secret.encode()
    b64 = {base64.b64encode(encoded).decode(), base64.urlsafe_b64encode(encoded).decode()}
    return ["".join(_char(c) for c in secret), *(re.escape(f.rstrip("=")) for f in b64)]


#: Secrets no config holds: Discord interaction tokens and webhook tokens in request paths
#: (`/interactions/<id>/<token>/callback`, `/webhooks/<app>/<token>/messages/@original`, slashes plain or
#: encoded), the `token` field of the gateway events discord.py logs at DEBUG, and `token=`-like
#: query parameters. Each pattern keeps its first group and masks its second.
_SHAPES = (
    re.compile(r"((?:/|%2[Ff])(?:interactions|webhooks)(?:/|%2[Ff])\d+(?:/|%2[Ff]))([^/%\s?#&'\"]+)"),
    re.compile(r"""(["']token["']\s*:\s*["'])([^"']+)"""),
    re.compile(r"([?&](?:token|access_token|secret|api_key|apikey|key|signature)=)([^&\s#'\"]+)", re.I),
)


class RedactSecrets(logging.Filter):
    """Replaces every secret in a record's message, exception text and stack with [REDACTED]."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret containing another is replaced whole.
        kept = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)
        forms = [form for secret in kept for form in _secret_forms(secret)]
        self._secrets = re.compile("|".join(forms)) if forms else None
        self._formatter = logging.Formatter()

    def redact(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        for shape in _SHAPES:
            text = shape.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
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
    handler.addFilter(RedactSecrets([*secrets_of(config), database_password(config.database) or ""]))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    level = config.logging.level or config.log_level
    if quiet and level != "DEBUG":
        level = "WARNING"
    root.setLevel(level)
    for name in _NOISY:  # libraries' INFO chatter (one line per HTTP request) only when debugging
        logging.getLogger(name).setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)
    logging.captureWarnings(True)
    return handler
