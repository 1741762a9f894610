"""What the chats show, and which worker process sent each request the fake platforms handled.

`Senders` tells the workers apart by the client port of each connection (/proc: the port's socket inode
and the process holding it), so the fakes stay as they are and the bot needs no test hook. The fake
Telegram's call log is swapped for one that notes, per call, the worker, the time and the status.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiohttp import web

from tests.discord_frontend.conftest import is_final as discord_final
from tests.fakes.discord_api import DiscordFake, FakeInteraction
from tests.fakes.discord_api import FakeMessage as DiscordMessage
from tests.fakes.telegram_api import FakeMessage, TelegramFake

Platform = Literal["telegram", "discord"]
Key = tuple[str, int, int]  # (platform, chat, message)
CHANNEL_PATH = re.compile(r"/api/v10/channels/(\d+)/messages")
_FOOTER_JOB = re.compile(r"\bjob (\w+)\b")


@dataclass(frozen=True)
class Place:
    """Where commands come from: a Telegram chat, or a Discord channel of a shard's guild."""

    platform: Platform
    chat_id: int  # Telegram chat, or Discord channel
    kind: str = "private"  # Telegram chat type
    guild_id: int | None = None
    shard: int | None = None  # the Discord shard whose worker receives its commands

    @property
    def lease(self) -> str:
        return f"chat:{self.platform}:{self.chat_id}"


@dataclass
class Sent:
    """One /imagine command, each with a prompt of its own."""

    place: Place
    prompt: str
    at: float
    message_id: int | None = None  # Telegram: the command's message
    interaction: FakeInteraction | None = None  # Discord


# -- what the chats show -------------------------------------------------------------------------


def telegram_final(message: FakeMessage) -> bool:
    """The message shows a finished grid: a photo with the U1-U4 buttons."""
    return bool(message.photo) and any(text == "U1" for row in message.keyboard for text, _ in row)


def telegram_replies(telegram: TelegramFake, sent: Sent) -> list[FakeMessage]:
    return [m for m in telegram.bot_messages(sent.place.chat_id) if m.reply_to_message_id == sent.message_id]


def discord_messages(discord: DiscordFake, sent: Sent, job_id: str | None = None) -> list[DiscordMessage]:
    """The bot's messages about the command: its interaction's response, and every message whose embed
    names the command's prompt (or its job)."""
    found = []
    response = sent.interaction.response_message_id if sent.interaction else None
    for message in discord.messages(sent.place.chat_id):
        if message.author.id != discord.bot_user.id or message.ephemeral:
            continue
        embed = message.embeds[0] if message.embeds else {}
        footer = _FOOTER_JOB.search(str((embed.get("footer") or {}).get("text", "")))
        if message.id == response or sent.prompt in str(embed.get("title", "")) or (
                job_id is not None and footer is not None and footer.group(1) == job_id):
            found.append(message)
    return found


def shown(telegram: TelegramFake, discord: DiscordFake, sent: Sent) -> bool:
    """The command's result is shown (by some message)."""
    if sent.place.platform == "telegram":
        return any(telegram_final(m) for m in telegram_replies(telegram, sent))
    return any(discord_final(m) for m in discord_messages(discord, sent))


def is_final(telegram: TelegramFake, discord: DiscordFake, key: Key) -> bool:
    platform, chat, message = key
    if platform == "telegram":
        return telegram_final(telegram.message(chat, message))
    return discord_final(discord.message(chat, message))


def fingerprint(telegram: TelegramFake, discord: DiscordFake, key: Key) -> str:
    """What a message shows now (changes with every edit)."""
    platform, chat, message = key
    if platform == "telegram":
        m = telegram.message(chat, message)
        photo = m.photo[-1]["file_unique_id"] if m.photo else None
        return json.dumps([m.caption, m.text, photo, m.reply_markup])
    return str(discord.message(chat, message).edit_count)


def discord_finals_sent(message: DiscordMessage) -> int:
    """How many times the message was made to show a result (created so, or edited into one again)."""
    states = [*message.history, message.snapshot()]
    return sum(1 for state in states if state["attachments"] and state["components"])


def _gives_result(params: dict[str, Any]) -> bool:
    return '"U1"' in json.dumps(params.get("reply_markup"))


def telegram_finals_sent(telegram: TelegramFake, chat_id: int, message_id: int) -> list[str | None]:
    """The workers that edited the message to show a result (one entry per edit)."""
    log = attributed(telegram)
    return [sender for (method, p), sender in zip(log, log.senders, strict=True)
            if method == "editMessageMedia" and p.get("chat_id") == chat_id
            and p.get("message_id") == message_id and _gives_result(p)]  # fmt: skip


# -- who sent what -------------------------------------------------------------------------------


class HasProcess(Protocol):
    id: str

    @property
    def pid(self) -> int | None:
        """The process while it runs."""


@dataclass
class _Call:
    worker: str | None
    entry: int | None = None  # its place in the fake's log


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("call", default=None)


class AttributedLog(list[tuple[str, dict[str, Any]]]):
    """The fake Telegram's call log, each entry noted with the worker whose request it was, when it
    came and how it was answered."""

    def __init__(self) -> None:
        super().__init__()
        self.senders: list[str | None] = []
        self.times: list[float] = []
        self.statuses: dict[int, int] = {}

    def append(self, item: tuple[str, dict[str, Any]]) -> None:
        super().append(item)
        call = _CALL.get()
        if call is not None:
            call.entry = len(self) - 1
        self.senders.append(call.worker if call else None)
        self.times.append(time.time())


def attributed(telegram: TelegramFake) -> AttributedLog:
    log = telegram.log
    assert isinstance(log, AttributedLog), "Senders.watch() the fake before it starts"
    return log


def _answer(response: web.StreamResponse) -> dict[str, Any]:
    """A fake's JSON answer, or {}."""
    if not isinstance(response, web.Response) or response.content_type != "application/json":
        return {}
    with contextlib.suppress(ValueError, TypeError):
        answer = json.loads(response.body)  # type: ignore[arg-type]
        return answer if isinstance(answer, dict) else {}
    return {}


class Senders:
    """Which worker sent each request the fakes handle, and which worker created each message."""

    def __init__(self, workers: Sequence[HasProcess]) -> None:
        self._workers = workers
        self._ports: dict[int, str] = {}  # client port -> worker id (a port is not reused within a run)
        self._log = AttributedLog()
        self.discord: list[tuple[float, str | None, str, str]] = []  # (at, worker, method, path)
        self.created: dict[tuple[int, int], str | None] = {}  # (chat, message) -> the worker that sent it

    def watch(self, telegram: TelegramFake, discord: DiscordFake | None) -> None:
        """Install the middlewares (before the fakes start)."""
        telegram.log = self._log
        telegram.app.middlewares.insert(0, self._telegram)
        if discord is not None:
            discord.app.middlewares.insert(0, self._discord)

    @web.middleware
    async def _telegram(self, request: web.Request, handler: Any) -> web.StreamResponse:
        call = _Call(self.of(request))
        token = _CALL.set(call)
        try:
            response: web.StreamResponse = await handler(request)
        finally:
            _CALL.reset(token)
        if call.entry is not None:
            self._log.statuses[call.entry] = response.status
        result = _answer(response).get("result")
        if isinstance(result, dict) and "message_id" in result and "chat" in result:
            self.created.setdefault((result["chat"]["id"], result["message_id"]), call.worker)
        return response

    @web.middleware
    async def _discord(self, request: web.Request, handler: Any) -> web.StreamResponse:
        worker = self.of(request)
        if request.path.startswith("/api/"):
            self.discord.append((time.time(), worker, request.method, request.path))
        response: web.StreamResponse = await handler(request)
        answer = _answer(response)
        made = answer.get("resource", {}).get("message") if "resource" in answer else answer  # a callback's
        if request.method == "POST" and isinstance(made, dict) and "channel_id" in made and "id" in made:
            # a message sent again with the same nonce comes back as it was: its first sender made it
            self.created.setdefault((int(made["channel_id"]), int(made["id"])), worker)
        return response

    def of(self, request: web.Request) -> str | None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if not peer:
            return None
        port = int(peer[1])
        if port not in self._ports and (found := self._owner(port)) is not None:
            self._ports[port] = found
        return self._ports.get(port)

    def _owner(self, port: int) -> str | None:
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as lines:
                for line in itertools.islice(lines, 1, None):
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        for worker in self._workers:
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{worker.pid}/fd") if worker.pid else ():
                    with contextlib.suppress(OSError):
                        link = os.readlink(f"/proc/{worker.pid}/fd/{fd}")
                        if link.startswith("socket:[") and link[8:-1] in inodes:
                            return worker.id
        return None

    def chat_turns(self) -> dict[str, list[str | None]]:
        """Per chat (its lease's name), the workers that sent or edited its messages, in turn (one
        entry per change of worker). Discord: by the bot token; an interaction's own response comes
        from the worker of the guild's shard, whoever shows the channel."""
        turns: dict[str, list[str | None]] = {}

        def note(lease: str, sender: str | None) -> None:
            if not turns.get(lease) or turns[lease][-1] != sender:
                turns.setdefault(lease, []).append(sender)

        for (_, params), sender in zip(self._log, self._log.senders, strict=True):
            if isinstance(chat := params.get("chat_id"), int):
                note(f"chat:telegram:{chat}", sender)
        for _, sender, method, path in self.discord:
            if method in ("POST", "PATCH") and (found := CHANNEL_PATH.match(path)):
                note(f"chat:discord:{found.group(1)}", sender)
        return turns

    def telegram_lines(self, zero: float) -> dict[str, list[str]]:
        """The fake Telegram's calls that named a chat, per chat: time from `zero`, worker, method,
        message, status and what it shows."""
        lines: dict[str, list[str]] = {}
        log = self._log
        for n, ((method, p), sender, at) in enumerate(zip(log, log.senders, log.times, strict=True)):
            if not isinstance(chat := p.get("chat_id"), int):
                continue
            media = p.get("media")
            media = json.loads(media) if isinstance(media, str) else media if isinstance(media, dict) else {}
            text = str(p.get("caption") or p.get("text") or media.get("caption") or "").replace("\n", " | ")
            final = "RESULT " if _gives_result(p) else ""
            lines.setdefault(f"telegram {chat}", []).append(
                f"  {at - zero:+8.3f} {sender} {method} msg={p.get('message_id')} "
                f"[{log.statuses.get(n, '?')}] {final}{text}")  # fmt: skip
        return lines
