"""/web: a one-time sign-in link to the bot's web pages, answered ephemerally (only the person who
asked sees it); `/web action:logout` signs them out of every browser."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.config import AdminsConfig
from bot.discord_frontend.handlers import caller_of, owner_of
from bot.discord_frontend.replies import answering, tell
from bot.i18n import t
from bot.languages import Languages
from bot.web.auth import Grant, WebAuth


def link_text(link: str, in_server: bool, minutes: int) -> str:
    if in_server:
        first = t("Your sign-in link to the web pages (with this server's pages): <{link}>", link=link)
    else:
        first = t("Your sign-in link to the web pages: <{link}>", link=link)
    return first + "\n" + t("It works once, within {minutes} min. Don't share it: it signs in as you. "
                            "`/web action:logout` signs you out of every browser.", minutes=minutes)


def install_web(tree: app_commands.CommandTree[Any], auth: WebAuth | None, admins: AdminsConfig,
                link_expiry: float, languages: Languages | None = None) -> None:
    """Add /web to `tree` (before the tree is synced), when the web pages are on (`auth`)."""
    if auth is None:
        return
    minutes = max(1, round(link_expiry / 60))

    @tree.command(name="web", description="A sign-in link to your gallery on the web (only you see it)")
    @app_commands.describe(action="link (default): a sign-in link; logout: sign out of every browser")
    @app_commands.choices(action=[app_commands.Choice(name=n, value=n) for n in ("link", "logout")])
    async def web(interaction: discord.Interaction, action: str = "link") -> None:
        async with answering(interaction, languages):
            if action == "logout":
                ended = await auth.revoke_user(owner_of(interaction))
                await tell(interaction, t("Signed out of {ended} browser session(s).", ended=ended))
            else:
                caller = caller_of(interaction, admins)
                link = auth.link(Grant.of(caller))
                await tell(interaction, link_text(link, caller.scope is not None, minutes))
