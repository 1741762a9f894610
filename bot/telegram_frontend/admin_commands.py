"""/info for everyone, and /admin <sub> for the chat's administrators and the bot's operators.

Every /admin sub-command is one AdminService call with the `Caller` who ran it; what a chat admin may
do (act on their own chat) and what only operators may (pause/resume, "everywhere") is decided there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from telegram import Message, Update

from bot import i18n, languages
from bot.access import GLOBAL, Caller
from bot.admin import AdminService, parse_period
from bot.errors import UserError, shown
from bot.i18n import N_, t
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

REFUSAL = N_("Sorry, /admin is only for the administrators of this chat.")
ADMIN_HELP = N_(
    "Admin commands (they apply to this chat):\n"
    "/admin ban <user id> [reason] (or reply /admin ban [reason] to their message)\n"
    "/admin unban <user id> (or reply to their message)\n"
    "/admin bans\n"
    "/admin limits\n"
    "/admin setlimit <{limit_keys}> <number|none|default>\n"
    "/admin stats [period, e.g. 24h or 7d]\n"
    "/admin language <language|auto> (this chat's language for everyone who chose none)\n"
    "/admin pause <provider>, /admin resume <provider> (the bot's operators only)\n"
    "Operators may end ban, unban and setlimit with 'everywhere'."
)


def provider_line(status: ProviderStatus, now: float | None = None) -> str:
    state = provider_state(status.held, status.rate_limited_until, time.time() if now is None else now)
    return t("• {name} ({type}): {state} · {queued} queued · {active} running", name=status.name,
             type=status.type, state=state, queued=status.queued, active=status.active)


def _limit(value: float | int | None) -> str:
    return t("none") if value is None else f"{value:g}"


class AdminHandlers:
    def __init__(self, service: JobService, admin: AdminService, outbox: Outbox, admins: ChatAdmins) -> None:
        self._service = service
        self._admin = admin
        self._outbox = outbox
        self._admins = admins
        self._subs: dict[str, Callable[[Caller, Message, list[str]], Awaitable[str]]] = {
            "ban": self._ban, "unban": self._unban, "bans": self._bans, "limits": self._limits,
            "setlimit": self._set_limit, "set-limit": self._set_limit, "pause": self._pause,
            "resume": self._resume, "stats": self._stats, "language": self._language,
        }  # fmt: skip

    async def info(self, update: Update, context: Context) -> None:
        """The providers with their state and queues, and the asking user's usage and what is left."""
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        usage = await self._service.usage(await self._admins.caller(owner_of(user), message.chat, message))
        providers = map(provider_line, await self._service.provider_status())
        lines = [t("Providers:"), *providers, "", *usage.lines()]
        await self._outbox.reply_text(message, "\n".join(lines))

    async def admin(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        caller = await self._admins.caller(owner_of(user), message.chat, message)
        if not self._admin.is_admin(caller):
            await self._outbox.reply_text(message, t(REFUSAL))
            return
        words = arguments(message).split()
        handler = self._subs.get(words[0].lower()) if words else None
        if handler is None:
            await self._outbox.reply_text(message, t(ADMIN_HELP, limit_keys="|".join(LIMIT_KEYS)))
            return
        try:
            text = await handler(caller, message, words[1:])
        except UserError as exc:
            text = render.error_text(shown(exc))
        await self._outbox.reply_text(message, text)

    # -- sub-commands: each returns the reply ---------------------------------------------------------

    async def _target(self, message: Message, words: list[str]) -> tuple[str, str, list[str]]:
        """(user as AdminService takes it, a name to show, the remaining words): the author of the
        message replied to (for one of the bot's job messages: who asked for it), else the first word."""
        replied = replied_to(message)
        if replied is not None and is_anonymous_admin(replied):
            raise UserError(t("That message is from an anonymous admin of this chat; "
                              "admins can't be banned."))
        if replied is not None and (sender := replied.sender_chat or replied.from_user) is not None:
            if sender.id != message.get_bot().id:
                who = owner_of(sender)  # a member posting as a channel is that channel (see owner_of)
                return f"{PLATFORM}:{who.user_id}", who.name or who.user_id, words
            job = await self._service.by_message(PLATFORM, str(message.chat_id), str(replied.message_id))
            if job is not None:
                return f"{PLATFORM}:{job.owner.user_id}", job.owner.name or job.owner.user_id, words
        if not words:
            raise UserError(t("Whom? Reply to one of their messages, or give their user id."))
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
        if ban.scope == GLOBAL:
            if ban.reason:
                return t("Banned {name} everywhere ({reason}). /admin unban lifts it.", name=name,
                         reason=ban.reason)
            return t("Banned {name} everywhere. /admin unban lifts it.", name=name)
        if ban.reason:
            return t("Banned {name} in this chat ({reason}). /admin unban lifts it.", name=name,
                     reason=ban.reason)
        return t("Banned {name} in this chat. /admin unban lifts it.", name=name)

    async def _unban(self, caller: Caller, message: Message, words: list[str]) -> str:
        user, name, rest = await self._target(message, words)
        everywhere, _ = self._everywhere(rest)
        if await self._admin.unban(caller, user, everywhere=everywhere):
            return t("Unbanned {name}.", name=name)
        if everywhere:
            return t("{name} was not banned everywhere.", name=name)
        return t("{name} was not banned in this chat.", name=name)

    async def _bans(self, caller: Caller, message: Message, words: list[str]) -> str:
        bans = await self._admin.bans(caller)
        if not bans:
            return t("Nobody is banned here.")
        lines = [f"• {b.platform}:{b.user_id}{' ' + t('(everywhere)') if b.scope == GLOBAL else ''}"
                 f"{f' — {b.reason}' if b.reason else ''}" for b in bans]  # fmt: skip
        return "\n".join([t("Banned:"), *lines])

    async def _limits(self, caller: Caller, message: Message, words: list[str]) -> str:
        limits = await self._admin.limits(caller)
        lines = [f"• {key}: {_limit(value)}" for key, value in limits.items()]
        return "\n".join([t("Limits here (none = unlimited):"), *lines])

    async def _set_limit(self, caller: Caller, message: Message, words: list[str]) -> str:
        everywhere, words = self._everywhere(words)
        if len(words) != 2:
            raise UserError(t("Usage: /admin setlimit <{limit_keys}> <number|none|default>",
                              limit_keys="|".join(LIMIT_KEYS)))
        key, value = words
        await self._admin.set_limit(caller, key, value, everywhere=everywhere)
        if everywhere:
            return t("{key} is now {value} everywhere.", key=key, value=value)
        return t("{key} is now {value} in this chat.", key=key, value=value)

    async def _pause(self, caller: Caller, message: Message, words: list[str]) -> str:
        name = self._provider(words)
        await self._admin.pause(caller, name)
        return t("Paused {name}: its queued jobs wait and new ones are refused until /admin resume {name}.",
                 name=name)

    async def _resume(self, caller: Caller, message: Message, words: list[str]) -> str:
        name = self._provider(words)
        await self._admin.resume(caller, name)
        return t("Resumed {name}.", name=name)

    def _provider(self, words: list[str]) -> str:
        names = self._service.providers()
        if len(words) != 1 or words[0] not in names:
            raise UserError(t("Name one provider: {names}.", names=", ".join(names)))
        return words[0]

    async def _language(self, caller: Caller, message: Message, words: list[str]) -> str:
        """The chat's language for everyone without their own choice; said in the new language."""
        if len(words) != 1:
            raise UserError(t("Usage: /admin language <{choices}|auto>", choices="|".join(i18n.LOCALES)))
        stored = await self._admin.set_language(caller, words[0])
        if stored == languages.AUTO:
            with i18n.use(message.from_user.language_code if message.from_user else None):
                return t("This chat's language is now each person's app's language.")
        with i18n.use(stored):
            return t("This chat's language is now {language}.", language=i18n.NAMES[stored])

    async def _stats(self, caller: Caller, message: Message, words: list[str]) -> str:
        period = words[0] if words else "24h"
        stats = await self._admin.stats(caller, parse_period(period))
        return "\n".join([t("Last {period}:", period=period), *stats.lines()])
