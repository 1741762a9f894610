"""`/admin …`: ban/unban, bans, limits, set-limit, pause/resume a provider, stats, on top of AdminService.

Every answer is ephemeral. The frontend judges whether the member administers this server (Manage
Server or a configured role, see `handlers.is_admin`) and says so in the `Caller`; AdminService decides
what that caller may do and refuses the rest with a message that is shown as it is.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import discord

from bot import i18n
from bot.access import GLOBAL, Caller
from bot.admin import AdminService, parse_period
from bot.config import AdminsConfig
from bot.discord_frontend.handlers import caller_of
from bot.discord_frontend.replies import answering, locale_of, tell
from bot.errors import NotAllowed
from bot.i18n import N_, t
from bot.languages import AUTO, Languages
from bot.presentation import shorten
from bot.store.ops import Ban

REFUSAL = N_("Only this server's admins can use /admin (members with Manage Server, or a role the bot's "
             "config names).")
# A DM has no server to administer, so "this server's admins" would point at nothing there.
DM_REFUSAL = N_("/admin works inside a server, for that server's admins; in a direct message with the bot "
                "only the bot's operators can use it.")
Command = Callable[[Caller], Awaitable[str]]


def _where(scope: str) -> str:
    return t("everywhere") if scope == GLOBAL else t("in this server")


def _who(user: discord.abc.User) -> str:
    return f"**{discord.utils.escape_markdown(user.display_name)}** (`{user.id}`)"


def bans_text(bans: list[Ban], now: float | None = None) -> str:
    if not bans:
        return t("Nobody is banned here.")
    now = time.time() if now is None else now
    lines = [t("**Bans**")]
    for ban in bans:
        days = max(0, int((now - ban.banned_at) // 86400))
        reason = f": {ban.reason}" if ban.reason else ""
        who = f"{ban.platform}:{ban.user_id}"
        lines.append(t("`{who}` {where}{reason} (by {by}, {days} d ago)", who=who, where=_where(ban.scope),
                       reason=reason, by=ban.banned_by, days=days))
    return shorten("\n".join(lines), 2000)


def limits_text(limits: dict[str, float | int | None]) -> str:
    rows = [f"{key:<18}{t('none') if value is None else f'{value:g}'}" for key, value in limits.items()]
    heading = t("**Limits in force here** (`/admin set-limit` changes them)")
    return heading + "\n```\n" + "\n".join(rows) + "\n```"


def block(lines: list[str], title: str) -> str:
    body = "\n".join(lines)
    return f"**{title}**\n```\n{shorten(body, 1900 - len(title))}\n```"


class AdminHandlers:
    def __init__(self, admin: AdminService, admins: AdminsConfig, languages: Languages | None = None) -> None:
        self._admin = admin
        self._admins = admins
        self._languages = languages

    def caller(self, interaction: discord.Interaction) -> Caller:
        return caller_of(interaction, self._admins)

    async def _run(self, interaction: discord.Interaction, command: Command) -> None:
        async with answering(interaction, self._languages):
            caller = self.caller(interaction)
            if not self._admin.is_admin(caller):
                raise NotAllowed(t(REFUSAL) if interaction.guild_id else t(DM_REFUSAL))
            await tell(interaction, await command(caller))

    async def ban(self, interaction: discord.Interaction, user: discord.abc.User, reason: str | None,
                  everywhere: bool) -> None:
        async def ban(caller: Caller) -> str:
            done = await self._admin.ban(caller, f"discord:{user.id}", reason or "", everywhere=everywhere)
            why = f": {done.reason}." if done.reason else "."
            return t("{who} is banned {where}{why}", who=_who(user), where=_where(done.scope), why=why)

        await self._run(interaction, ban)

    async def unban(self, interaction: discord.Interaction, user: discord.abc.User, everywhere: bool) -> None:
        async def unban(caller: Caller) -> str:
            lifted = await self._admin.unban(caller, f"discord:{user.id}", everywhere=everywhere)
            where = t("everywhere") if everywhere else t("in this server")
            return t("{who} is no longer banned {where}.", who=_who(user), where=where) if lifted else (
                t("{who} was not banned {where}.", who=_who(user), where=where))

        await self._run(interaction, unban)

    async def bans(self, interaction: discord.Interaction) -> None:
        async def bans(caller: Caller) -> str:
            return bans_text(await self._admin.bans(caller))

        await self._run(interaction, bans)

    async def limits(self, interaction: discord.Interaction) -> None:
        async def limits(caller: Caller) -> str:
            return limits_text(await self._admin.limits(caller))

        await self._run(interaction, limits)

    async def set_limit(self, interaction: discord.Interaction, key: str, value: str,
                        everywhere: bool) -> None:
        async def set_limit(caller: Caller) -> str:
            await self._admin.set_limit(caller, key, value, everywhere=everywhere)
            limits = limits_text(await self._admin.limits(caller))
            if everywhere:
                return t("`{key}` is now {value} everywhere.", key=key, value=value.strip()) + "\n" + limits
            return t("`{key}` is now {value} here.", key=key, value=value.strip()) + "\n" + limits

        await self._run(interaction, set_limit)

    async def pause(self, interaction: discord.Interaction, provider: str, paused: bool) -> None:
        async def pause(caller: Caller) -> str:
            if paused:
                await self._admin.pause(caller, provider)
                return t("Provider `{provider}` is paused: queued jobs wait, new ones are refused.",
                         provider=provider)
            await self._admin.resume(caller, provider)
            return t("Provider `{provider}` is back in service.", provider=provider)

        await self._run(interaction, pause)

    async def stats(self, interaction: discord.Interaction, period: str) -> None:
        async def stats(caller: Caller) -> str:
            result = await self._admin.stats(caller, parse_period(period))
            return block(result.lines(), t("Stats, last {period}", period=period.strip()))

        await self._run(interaction, stats)

    async def language(self, interaction: discord.Interaction, value: str) -> None:
        """/admin language: the server's language for everyone who chose none; answered in it."""
        async def language(caller: Caller) -> str:
            stored = await self._admin.set_language(caller, value)
            with i18n.use(await locale_of(interaction, self._languages, fresh=True)):
                if stored == AUTO:
                    return t("This server's language is now auto: each member's app's language.")
                return t("This server's language is now {language}.", language=i18n.NAMES[stored])

        await self._run(interaction, language)
