"""Access: who is asking, where, with which rights (`Caller`), and the one policy deciding what they may
do (`AccessPolicy`): use the bot in a chat at all, press a job's buttons, cancel a job, run admin commands.

The split between frontends and the policy: a frontend *judges* what only its platform can tell (is
this member an admin of this Discord server / Telegram group, including a Telegram admin posting
anonymously as the group) and puts that verdict in the `Caller` it builds for each command or press.
Every *decision* made from it is here, the same for every platform, so that a rule cannot hold on one
platform and not on the other. Operators (`admins.users`, and the CLI) are admins everywhere.

Ids compare as strings: an entry "123" matches that id on any platform, "discord:123" only there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.config import AccessConfig, AdminsConfig
from bot.domain import CLI_PLATFORM, Job, Owner, same_person
from bot.errors import NotAllowed, UserError
from bot.i18n import N_, t
from bot.store.ops import BanList

GLOBAL = "*"  # the scope of a ban or setting that applies everywhere
CHAT_REFUSAL = N_("This bot is not enabled in this chat. Ask an admin to allow it.")
SERVER_REFUSAL = N_("This bot is not enabled in this server.")


def scope_key(platform: str, scope: str | None) -> str | None:
    """A chat/server id as stored: "discord:<guild id>", "telegram:<chat id>" (None: no chat, e.g. CLI)."""
    return f"{platform}:{scope}" if scope else None


def matches(entries: Iterable[str], platform: str, ident: str | None) -> bool:
    if not ident:
        return False
    return any(entry in (ident, f"{platform}:{ident}") for entry in entries)


def for_platform(entries: Iterable[str], platform: str) -> list[str]:
    """The entries that can match on `platform`: bare ids, and those written "<platform>:<id>"."""
    return [entry for entry in entries if ":" not in entry or entry.startswith(f"{platform}:")]


def parse_user(text: str, default_platform: str = GLOBAL) -> tuple[str, str]:
    """`discord:123` -> ("discord", "123"); a bare `123` -> (default_platform, "123")."""
    platform, sep, user_id = text.strip().rpartition(":")
    if not sep:
        return default_platform, text.strip()
    if not platform or not user_id:
        raise UserError(t("'{text}' is not a user; write PLATFORM:ID (e.g. telegram:12345) or an id.",
                          text=text))
    return platform, user_id


@dataclass(frozen=True)
class Caller:
    """Who runs a command or presses a button, where, with which rights: the frontends (and the CLI)
    build one per command and pass it first to every JobService and AdminService command.

    `scope` is the raw Discord guild id / Telegram group id (None in DMs, private chats and the CLI;
    job commands then count under the chat they are shown in); `chat_admin` is the frontend's judgement
    of the member in that chat; `operator` is set by the CLI (`admins.users` are recognised by the
    policy itself).
    """

    owner: Owner
    scope: str | None = None
    chat_admin: bool = False
    operator: bool = False
    scope_platform: str | None = None  # the scope's platform when not the owner's (the CLI's --scope)
    locale: str = "en"  # the language they are answered in (`Languages.of`); their jobs keep it

    @property
    def platform(self) -> str:
        return self.scope_platform or self.owner.platform

    @property
    def scope_key(self) -> str | None:
        return scope_key(self.platform, self.scope)


class AccessPolicy:
    """Every access decision, for every platform:

    - `check`: may the caller use the bot here (served servers, user and chat allow/block lists, bans);
    - `may_press`: a job's buttons (with `access.owner_only_buttons`: its owner only, and for a job an
      anonymous Telegram admin asked for, which belongs to the group, that group's admins);
    - `may_cancel`: its owner, an admin of the chat, an operator; anyone without owner-only buttons;
    - `is_admin` / `is_operator`: who runs admin commands (AdminService decides where).

    `discord.guild_ids` reaches here through the config (see `AccessConfig.served`): with ids, Discord
    is served in those servers only (not in DMs), for operators too, since commands exist only there.
    """

    def __init__(self, access: AccessConfig, admins: AdminsConfig, bans: BanList,
                 clock: Callable[[], float] = time.time) -> None:
        self._access = access
        self._admins = admins
        self.bans = bans
        self._clock = clock

    @property
    def owner_only_buttons(self) -> bool:
        return self._access.owner_only_buttons

    # -- who is who -------------------------------------------------------------------------------

    def is_operator(self, who: Caller | Owner) -> bool:
        """An admin everywhere: the CLI, or one of `admins.users`. Given an Owner (the target of a ban),
        only the config decides."""
        if isinstance(who, Caller):
            return who.operator or self.is_operator(who.owner)
        return who.platform == CLI_PLATFORM or matches(self._admins.users, who.platform, who.user_id)

    def is_admin(self, caller: Caller) -> bool:
        """An admin where the caller is: of this chat or server (the frontend's verdict), or an operator."""
        return caller.chat_admin or self.is_operator(caller)

    # -- jobs -------------------------------------------------------------------------------------

    def may_press(self, caller: Caller, job: Job) -> bool:
        """Whether `caller` may press `job`'s buttons. Chat admins and operators are not owners: with
        owner-only buttons they start their own jobs like everyone, except on a job an anonymous admin
        asked for: it belongs to the group itself, and a press always comes from the presser's own
        account, so without this nobody could use its buttons."""
        if not self.owner_only_buttons or same_person(caller.owner, job.owner):
            return True
        asked_by_group = job.owner.platform == caller.platform and job.owner.user_id == caller.scope
        return asked_by_group and self.is_admin(caller)

    def check_press(self, caller: Caller, job: Job) -> None:
        if not self.may_press(caller, job):
            if job.owner.name:
                raise NotAllowed(t("These buttons belong to {name}. Start your own with /imagine.",
                                   name=job.owner.name))
            raise NotAllowed(t("These buttons belong to the person who asked. Start your own with /imagine."))

    def may_cancel(self, caller: Caller, job: Job) -> bool:
        """Its owner, an admin of the chat (the frontend's verdict), an operator; anyone when buttons
        are not owner-only (a cancel is no more than a press of somebody else's button)."""
        return not self.owner_only_buttons or same_person(caller.owner, job.owner) or self.is_admin(caller)

    def check_cancel(self, caller: Caller, job: Job) -> None:
        if not self.may_cancel(caller, job):
            if job.owner.name:
                raise NotAllowed(t("Job {id} belongs to {name}.", id=job.id, name=job.owner.name))
            raise NotAllowed(t("Job {id} belongs to someone else.", id=job.id))

    # -- using the bot at all ---------------------------------------------------------------------

    def chat_refusal(self, caller: Caller, chat: str | None = None) -> str | None:
        """Why the bot does not serve the caller's server or chat (None: it does), from the config
        alone (no store read: frontends may ask for every update). `chat` is where the command was
        sent (a Discord channel, a Telegram chat) when it is not the scope itself.

        `access.allow_chats` restricts a platform when it names chats of that platform or bare ids:
        "telegram:-100123" alone leaves Discord unrestricted (so `telegram.allowed_chat_ids` folds into
        it). Operators pass the chat lists (a misconfigured list cannot lock them out), but not the
        served servers: outside them the bot has no commands at all."""
        platform, scope = caller.platform, caller.scope
        served = self._access.served.get(platform)
        if served is not None and scope not in served:
            return t(SERVER_REFUSAL)
        if self.is_operator(caller):
            return None
        chats = [c for c in (scope or chat, chat) if c]
        allowed = for_platform(self._access.allow_chats, platform)
        if any(matches(self._access.block_chats, platform, c) for c in chats) or (
            allowed and not any(matches(allowed, platform, c) for c in chats)
        ):
            return t(CHAT_REFUSAL)
        return None

    async def check(self, caller: Caller, chat: str | None = None) -> None:
        """Raise NotAllowed when the caller's server or chat is not served (`chat_refusal`), the user
        is not let in by the user lists, or is banned here or everywhere. Operators always pass the
        lists and bans."""
        refusal = self.chat_refusal(caller, chat)
        if refusal is not None:
            raise NotAllowed(refusal)
        if self.is_operator(caller):
            return
        owner, cfg = caller.owner, self._access
        if matches(cfg.block_users, owner.platform, owner.user_id) or (
            cfg.allow_users and not matches(cfg.allow_users, owner.platform, owner.user_id)
        ):
            raise NotAllowed(t("You are not allowed to use this bot. "
                               "Ask an admin if you think this is wrong."))
        where = scope_key(owner.platform, caller.scope or chat) or GLOBAL
        ban = await self.bans.banned(owner.platform, owner.user_id, where)
        if ban is not None:
            everywhere = ban[0] == GLOBAL
            if ban[1] and everywhere:
                said = t("You are banned from this bot ({reason}). Ask an admin if you think this is wrong.",
                         reason=ban[1])
            elif ban[1]:
                said = t("You are banned here ({reason}). Ask an admin if you think this is wrong.",
                         reason=ban[1])
            elif everywhere:
                said = t("You are banned from this bot. Ask an admin if you think this is wrong.")
            else:
                said = t("You are banned here. Ask an admin if you think this is wrong.")
            raise NotAllowed(said)
