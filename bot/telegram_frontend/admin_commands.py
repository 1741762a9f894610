"""/info for everyone, and /admin <sub> for the chat's administrators and the bot's operators.

Every /admin sub-command is one AdminService call with the `Caller` who ran it; what a chat admin may
do (act on their own chat) and what only operators may (pause/resume, "everywhere") is decided there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from telegram import Message, Update

from bot.access import GLOBAL, Caller
from bot.admin import AdminService, parse_period
from bot.errors import UserError
from bot.presentation import provider_state
from bot.quota import LIMIT_KEYS
from bot.service import JobService, ProviderStatus
from bot.telegram_frontend import render
from bot.telegram_frontend.admins import ChatAdmins
from bot.telegram_frontend.common import (
    PLATFORM,
    Context,
    arguments,
    is_anonymous_admin,
    owner_of,
    replied_to,
)
from bot.telegram_frontend.outbox import Outbox

REFUSAL = "Sorry, /admin is only for the administrators of this chat."
ADMIN_HELP = (
    "Admin commands (they apply to this chat):\n"
    "/admin ban <user id> [reason] (or reply /admin ban [reason] to their message)\n"
    "/admin unban <user id> (or reply to their message)\n"
    "/admin bans\n"
    "/admin limits\n"
    f"/admin setlimit <{'|'.join(LIMIT_KEYS)}> <number|none|default>\n"
    "/admin stats [period, e.g. 24h or 7d]\n"
    "/admin pause <provider>, /admin resume <provider> (the bot's operators only)\n"
    "Operators may end ban, unban and setlimit with 'everywhere'."
)


def provider_line(status: ProviderStatus, now: float | None = None) -> str:
    state = provider_state(status.held, status.rate_limited_until, time.time() if now is None else now)
    return f"• {status.name} ({status.type}): {state} · {status.queued} queued · {status.active} running"


def _limit(value: float | int | None) -> str:
    return "none" if value is None else f"{value:g}"


class AdminHandlers:
    def __init__(self, service: JobService, admin: AdminService, outbox: Outbox, admins: ChatAdmins) -> None:
        self._service = service
        self._admin = admin
        self._outbox = outbox
        self._admins = admins
        self._subs: dict[str, Callable[[Caller, Message, list[str]], Awaitable[str]]] = {
            "ban": self._ban, "unban": self._unban, "bans": self._bans, "limits": self._limits,
            "setlimit": self._set_limit, "set-limit": self._set_limit, "pause": self._pause,
            "resume": self._resume, "stats": self._stats,
        }  # fmt: skip

    async def info(self, update: Update, context: Context) -> None:
        """The providers with their state and queues, and the asking user's usage and what is left."""
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        usage = await self._service.usage(await self._admins.caller(owner_of(user), message.chat, message))
        lines = ["Providers:", *map(provider_line, await self._service.provider_status()), "", *usage.lines()]
        await self._outbox.reply_text(message, "\n".join(lines))

    async def admin(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        caller = await self._admins.caller(owner_of(user), message.chat, message)
        if not self._admin.is_admin(caller):
            await self._outbox.reply_text(message, REFUSAL)
            return
        words = arguments(message).split()
        handler = self._subs.get(words[0].lower()) if words else None
        if handler is None:
            await self._outbox.reply_text(message, ADMIN_HELP)
            return
        try:
            text = await handler(caller, message, words[1:])
        except UserError as exc:
            text = render.error_text(exc.message)
        await self._outbox.reply_text(message, text)

    # -- sub-commands: each returns the reply ---------------------------------------------------------

    async def _target(self, message: Message, words: list[str]) -> tuple[str, str, list[str]]:
        """(user as AdminService takes it, a name to show, the remaining words): the author of the
        message replied to (for one of the bot's job messages: who asked for it), else the first word."""
        replied = replied_to(message)
        if replied is not None and is_anonymous_admin(replied):
            raise UserError("That message is from an anonymous admin of this chat; admins can't be banned.")
        if replied is not None and (sender := replied.sender_chat or replied.from_user) is not None:
            if sender.id != message.get_bot().id:
                who = owner_of(sender)  # a member posting as a channel is that channel (see owner_of)
                return f"{PLATFORM}:{who.user_id}", who.name or who.user_id, words
            job = await self._service.by_message(PLATFORM, str(message.chat_id), str(replied.message_id))
            if job is not None:
                return f"{PLATFORM}:{job.owner.user_id}", job.owner.name or job.owner.user_id, words
        if not words:
            raise UserError("Whom? Reply to one of their messages, or give their user id.")
        return words[0], words[0], words[1:]

    @staticmethod
    def _everywhere(words: list[str]) -> tuple[bool, list[str]]:
        if words and words[-1].lower() == "everywhere":
            return True, words[:-1]
        return False, words

    async def _ban(self, caller: Caller, message: Message, words: list[str]) -> str:
        user, name, rest = await self._target(message, words)
        everywhere, rest = self._everywhere(rest)
        ban = await self._admin.ban(caller, user, " ".join(rest), everywhere=everywhere)
        where = "everywhere" if ban.scope == GLOBAL else "in this chat"
        reason = f" ({ban.reason})" if ban.reason else ""
        return f"Banned {name} {where}{reason}. /admin unban lifts it."

    async def _unban(self, caller: Caller, message: Message, words: list[str]) -> str:
        user, name, rest = await self._target(message, words)
        everywhere, _ = self._everywhere(rest)
        if await self._admin.unban(caller, user, everywhere=everywhere):
            return f"Unbanned {name}."
        return f"{name} was not banned {'everywhere' if everywhere else 'in this chat'}."

    async def _bans(self, caller: Caller, message: Message, words: list[str]) -> str:
        bans = await self._admin.bans(caller)
        if not bans:
            return "Nobody is banned here."
        lines = [f"• {b.platform}:{b.user_id}{' (everywhere)' if b.scope == GLOBAL else ''}"
                 f"{f' — {b.reason}' if b.reason else ''}" for b in bans]  # fmt: skip
        return "\n".join(["Banned:", *lines])

    async def _limits(self, caller: Caller, message: Message, words: list[str]) -> str:
        limits = await self._admin.limits(caller)
        lines = [f"• {key}: {_limit(value)}" for key, value in limits.items()]
        return "\n".join(["Limits here (none = unlimited):", *lines])

    async def _set_limit(self, caller: Caller, message: Message, words: list[str]) -> str:
        everywhere, words = self._everywhere(words)
        if len(words) != 2:
            raise UserError(f"Usage: /admin setlimit <{'|'.join(LIMIT_KEYS)}> <number|none|default>")
        key, value = words
        await self._admin.set_limit(caller, key, value, everywhere=everywhere)
        return f"{key} is now {value}{' everywhere' if everywhere else ' in this chat'}."

    async def _pause(self, caller: Caller, message: Message, words: list[str]) -> str:
        name = self._provider(words)
        await self._admin.pause(caller, name)
        return f"Paused {name}: its queued jobs wait and new ones are refused until /admin resume {name}."

    async def _resume(self, caller: Caller, message: Message, words: list[str]) -> str:
        name = self._provider(words)
        await self._admin.resume(caller, name)
        return f"Resumed {name}."

    def _provider(self, words: list[str]) -> str:
        names = self._service.providers()
        if len(words) != 1 or words[0] not in names:
            raise UserError(f"Name one provider: {', '.join(names)}.")
        return words[0]

    async def _stats(self, caller: Caller, message: Message, words: list[str]) -> str:
        period = words[0] if words else "24h"
        stats = await self._admin.stats(caller, parse_period(period))
        return "\n".join([f"Last {period}:", *stats.lines()])
