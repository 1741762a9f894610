"""Access: who may use the bot where (allow/block lists from the config, bans stored by admins), and
who counts as an admin.

The chat frontends decide whether a member is an admin of the chat or server a command came from
(Discord: Manage Server or one of `admins.discord_role_ids`; Telegram: a chat administrator) and say
so with `Actor.chat_admin`. Operators (`admins.users`, and the CLI) are admins everywhere.
Ids compare as strings: an entry "123" matches that id on any platform, "discord:123" only there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.config import AccessConfig, AdminsConfig
from bot.domain import CLI_PLATFORM, Owner
from bot.errors import NotAllowed, UserError
from bot.store.ops import BanList

GLOBAL = "*"  # the scope of a ban or setting that applies everywhere

def scope_key(platform: str, scope: str | None) -> str | None:
    """A chat/server id as stored: "discord:<guild id>", "telegram:<chat id>" (None: no chat, e.g. CLI)."""
    return f"{platform}:{scope}" if scope else None


def matches(entries: Iterable[str], platform: str, ident: str | None) -> bool:
    if not ident:
        return False
    return any(entry in (ident, f"{platform}:{ident}") for entry in entries)


def parse_user(text: str, default_platform: str = GLOBAL) -> tuple[str, str]:
    """`discord:123` -> ("discord", "123"); a bare `123` -> (default_platform, "123")."""
    platform, sep, user_id = text.strip().rpartition(":")
    if not sep:
        return default_platform, text.strip()
    if not platform or not user_id:
        raise UserError(f"'{text}' is not a user; write PLATFORM:ID (e.g. telegram:12345) or an id.")
    return platform, user_id


@dataclass(frozen=True)
class Actor:
    """Who runs a command and where: the frontends build one per command.

    `scope` is the raw Discord guild id / Telegram chat id (None in DMs and the CLI);
    `chat_admin` is the frontend's judgement of the member in that chat; `operator` is set by the CLI.
    """

    owner: Owner
    scope: str | None = None
    chat_admin: bool = False
    operator: bool = False
    scope_platform: str | None = None  # the scope's platform when not the owner's (the CLI's --scope)

    @property
    def scope_key(self) -> str | None:
        return scope_key(self.scope_platform or self.owner.platform, self.scope)


class AccessPolicy:
    """Decides whether a user may use the bot in a chat, and whether they are an operator."""

    def __init__(self, access: AccessConfig, admins: AdminsConfig, bans: BanList,
                 clock: Callable[[], float] = time.time) -> None:
        self._access = access
        self._admins = admins
        self.bans = bans
        self._clock = clock

    def is_operator(self, owner: Owner) -> bool:
        return owner.platform == CLI_PLATFORM or matches(self._admins.users, owner.platform, owner.user_id)

    def is_admin(self, actor: Actor) -> bool:
        return actor.operator or actor.chat_admin or self.is_operator(actor.owner)

    async def check(self, owner: Owner, scope: str | None, chat_id: str | None = None) -> None:
        """Raise NotAllowed when the user or the chat/server is not let in, or the user is banned.

        Operators always pass (so a misconfigured list cannot lock them out)."""
        if self.is_operator(owner):
            return
        platform, cfg = owner.platform, self._access
        chats = [c for c in (scope, chat_id) if c]
        if matches(cfg.block_users, platform, owner.user_id) or (
            cfg.allow_users and not matches(cfg.allow_users, platform, owner.user_id)
        ):
            raise NotAllowed("You are not allowed to use this bot. Ask an admin if you think this is wrong.")
        if any(matches(cfg.block_chats, platform, c) for c in chats) or (
            cfg.allow_chats and not any(matches(cfg.allow_chats, platform, c) for c in chats)
        ):
            raise NotAllowed("This bot is not enabled in this chat. Ask an admin to allow it.")
        ban = await self.bans.banned(platform, owner.user_id, scope_key(platform, scope) or GLOBAL)
        if ban is not None:
            where = "here" if ban[0] != GLOBAL else "from this bot"
            reason = f" ({ban[1]})" if ban[1] else ""
            raise NotAllowed(f"You are banned {where}{reason}. Ask an admin if you think this is wrong.")
