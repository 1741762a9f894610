"""AdminService: the admin commands of every frontend and the CLI (ban/unban, limits, pause/resume a
provider, stats). Each takes the `Caller` running it; who is an admin is the AccessPolicy's, and
where each may act is decided here:

- chat admins (the frontend's verdict: Discord Manage Server / configured roles, Telegram chat admins)
  act on the chat or server they ran the command in: bans and limits there, stats of it;
- operators (`admins.users`, the CLI) act everywhere and alone may pause and resume providers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from bot import languages
from bot.access import GLOBAL, AccessPolicy, Caller, parse_user
from bot.domain import CLI_PLATFORM, Owner, same_person
from bot.errors import NotAllowed, UserError
from bot.i18n import N_, t
from bot.pool import ProviderPool
from bot.quota import LIMIT_KEYS, Quotas
from bot.store.ops import Ban, OpsSettings, ProviderStats

_HOLD = "hold:"
_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_period(text: str) -> float:
    """`90m`, `24h`, `7d`, `2w` as seconds."""
    match = _PERIOD.match(text)
    if match is None:
        raise UserError(t("'{text}' is not a period; write e.g. 30m, 24h, 7d or 2w.", text=text))
    return float(match[1]) * _UNITS[match[2].lower()]


@dataclass(frozen=True)
class Stats:
    since: float
    scope: str | None  # None: everywhere
    providers: list[ProviderStats]

    def lines(self) -> list[str]:
        if not self.providers:
            if self.scope is None:
                return [t("No jobs everywhere in this period.")]
            return [t("No jobs in this chat in this period.")]
        labels = [t(column) for column in _COLUMNS]
        widths = [max(width, len(label) + 2) for width, label in zip(_WIDTHS, labels, strict=True)]
        rows: list[list[object]] = [list(labels)]
        rows += ([p.provider, p.jobs, p.succeeded, p.failed, p.active, p.refunded, f"{p.spend:g}"]
                 for p in self.providers)  # fmt: skip
        return [str(row[0]).ljust(widths[0]) + "".join(str(cell).rjust(width) for cell, width
                                                          in zip(row[1:], widths[1:], strict=True))
                for row in rows]  # fmt: skip


#: The stats table's columns (translated; a column widens to fit its word) and their least widths.
_COLUMNS = (N_("provider"), N_("jobs"), N_("ok"), N_("failed"), N_("active"), N_("refunds"), N_("spend"))
_WIDTHS = (14, 6, 6, 8, 8, 9, 9)


class AdminService:
    def __init__(self, pool: ProviderPool, access: AccessPolicy, quotas: Quotas, settings: OpsSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self._pool = pool
        self._access = access
        self._quotas = quotas
        self._settings = settings
        self._clock = clock

    # -- who may do what ---------------------------------------------------------------------------

    def is_admin(self, caller: Caller) -> bool:
        return self._access.is_admin(caller)

    def _operator(self, caller: Caller) -> bool:
        return self._access.is_operator(caller)

    def _scope(self, caller: Caller, everywhere: bool) -> str:
        """Where an admin command applies: the caller's chat, or everywhere (operators only)."""
        if not self.is_admin(caller):
            raise NotAllowed(t("Only admins can do that."))
        if self._operator(caller):
            return GLOBAL if everywhere or caller.scope_key is None else caller.scope_key
        if everywhere:
            raise NotAllowed(t("Only the bot's operators can do that everywhere; leave out 'everywhere'."))
        if caller.scope_key is None:
            raise NotAllowed(t("Run this in the server or group you administer."))
        return caller.scope_key

    def _require_operator(self, caller: Caller) -> None:
        if not self._operator(caller):
            raise NotAllowed(t("Only the bot's operators can do that."))

    # -- bans ---------------------------------------------------------------------------------------

    def _target(self, caller: Caller, user: str) -> tuple[str, str]:
        default = GLOBAL if caller.owner.platform == CLI_PLATFORM else caller.owner.platform
        return parse_user(user, default)

    async def ban(self, caller: Caller, user: str, reason: str = "", *, everywhere: bool = False) -> Ban:
        scope = self._scope(caller, everywhere)
        platform, user_id = self._target(caller, user)
        target = Owner(platform=platform, user_id=user_id)
        if self._access.is_operator(target):
            raise NotAllowed(t("{user} is an operator of this bot and cannot be banned.", user=user))
        if same_person(target, caller.owner):
            raise UserError(t("You cannot ban yourself."))
        now = self._clock()
        by = f"{caller.owner.platform}:{caller.owner.user_id}"
        await self._access.bans.ban(platform, user_id, scope, reason.strip(), by, now)
        return Ban(platform, user_id, scope, reason.strip(), by, now)

    async def unban(self, caller: Caller, user: str, *, everywhere: bool = False) -> bool:
        """False when there was no such ban here."""
        scope = self._scope(caller, everywhere)
        platform, user_id = self._target(caller, user)
        return await self._access.bans.unban(platform, user_id, scope)

    async def bans(self, caller: Caller) -> list[Ban]:
        scope = self._scope(caller, False)
        return await self._access.bans.list(None if scope == GLOBAL else scope)

    # -- limits -------------------------------------------------------------------------------------

    async def limits(self, caller: Caller) -> dict[str, float | int | None]:
        """The limits in force where the caller is (config + overrides), by name."""
        scope = self._scope(caller, False)
        limits = await self._quotas.limits(None if scope == GLOBAL else scope)
        values: dict[str, float | int | None] = {key: getattr(limits, key) for key in LIMIT_KEYS}
        values["default_cost"] = limits.default_cost
        values.update({f"cost.{kind}": cost for kind, cost in sorted(limits.costs.items())})
        return values

    async def set_limit(self, caller: Caller, key: str, value: str, *, everywhere: bool = False) -> None:
        """Set one of LIMIT_KEYS to a number, "none" (unlimited) or "default" (the config's value)."""
        await self._quotas.set_limit(self._scope(caller, everywhere), key, value)

    # -- the chat's language -----------------------------------------------------------------------

    async def set_language(self, caller: Caller, value: str) -> str:
        """The language of the caller's chat or server for everyone who chose none (`auto`: each
        person's app's again); returns it as stored."""
        scope = self._scope(caller, False)
        if scope == GLOBAL:
            raise NotAllowed(t("Run this in the server or group you administer."))
        stored = languages.checked(value)
        if stored == languages.AUTO:
            await self._settings.delete(scope, languages.KEY)
        else:
            await self._settings.put(scope, languages.KEY, stored)
        return stored

    # -- providers ----------------------------------------------------------------------------------

    async def pause(self, caller: Caller, provider: str) -> None:
        """Stop sending jobs to `provider` (queued ones wait; new ones are refused) until `resume`."""
        self._require_operator(caller)
        self._pool.hold(provider)
        await self._settings.put(GLOBAL, _HOLD + provider, "1")

    async def resume(self, caller: Caller, provider: str) -> None:
        self._require_operator(caller)
        self._pool.release(provider)
        await self._settings.delete(GLOBAL, _HOLD + provider)

    async def restore(self) -> list[str]:
        """Make the pool's pauses the stored ones (at start, and periodically so that `imagine-bot admin
        pause` from another process reaches a running bot). Returns the paused providers."""
        stored = {k.removeprefix(_HOLD) for k in await self._settings.all(GLOBAL) if k.startswith(_HOLD)}
        for name in self._pool.names:
            if name in stored:
                self._pool.hold(name)
            else:
                self._pool.release(name)
        return [name for name in self._pool.names if name in stored]

    async def watch(self, interval: float = 5.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
                    ) -> None:
        """Re-read the stored pauses every `interval` seconds until cancelled."""
        while True:
            await sleep(interval)
            await self.restore()

    # -- stats --------------------------------------------------------------------------------------

    async def stats(self, caller: Caller, period: float = 86400.0) -> Stats:
        """Jobs, outcomes and spend per provider over the last `period` seconds (the caller's chat for a
        chat admin, everything for an operator outside a chat)."""
        scope = self._scope(caller, False)
        where = None if scope == GLOBAL else scope
        since = self._clock() - period
        return Stats(since, where, await self._quotas.ledger.stats(since, where))


# -- the CLI: `imagine-bot admin ...` (the CLI is an operator) -----------------------------------------


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = sub.add_parser("admin", help="ban/unban users, limits, pause/resume providers, stats")
    ops = admin.add_subparsers(dest="admin_command", required=True, metavar="ADMIN_COMMAND")
    scope_help = "a chat or server as PLATFORM:ID (e.g. discord:1234); default: everywhere"
    ban_help = "ban a user (PLATFORM:ID, or an id on every platform)"
    for name, text in (("ban", ban_help), ("unban", "lift a ban")):
        p = ops.add_parser(name, help=text)
        p.add_argument("user", help="PLATFORM:ID (e.g. telegram:202), or an id on every platform")
        p.add_argument("--scope", help=scope_help)
        if name == "ban":
            p.add_argument("--reason", default="", help="why, kept with the ban")
    p = ops.add_parser("bans", help="list bans")
    p.add_argument("--scope", help=scope_help)
    p = ops.add_parser("limits", help="show the limits in force")
    p.add_argument("--scope", help=scope_help)
    p = ops.add_parser("set-limit", help=f"set a limit ({', '.join(LIMIT_KEYS)}) to N, none or default")
    p.add_argument("key", choices=LIMIT_KEYS, help="which limit")
    p.add_argument("value", help="a number, none (unlimited) or default (the config's)")
    p.add_argument("--scope", help=scope_help)
    for name in ("pause", "resume"):
        p = ops.add_parser(name, help=f"{name} sending jobs to a provider")
        p.add_argument("provider", help="the provider's name in the config")
    p = ops.add_parser("stats", help="jobs, failures and spend per provider")
    p.add_argument("--since", default="24h", help="period: 30m, 24h, 7d ... (default 24h)")
    p.add_argument("--scope", help=scope_help)


def cli_caller(owner: Owner, scope: str | None) -> Caller:
    if scope is None:
        return Caller(owner, operator=True)
    platform, _, ident = scope.rpartition(":")
    if not platform or not ident:
        raise UserError(f"--scope must be PLATFORM:ID, e.g. discord:1234; not '{scope}'.")
    return Caller(owner, scope=ident, scope_platform=platform, operator=True)


async def run_cli(admin: AdminService, args: argparse.Namespace, owner: Owner) -> int:
    """One admin command; what it did on stdout, as text or (--json) one JSON object per line."""
    caller = cli_caller(owner, getattr(args, "scope", None))
    say = _Say(getattr(args, "json", False))
    command = args.admin_command
    if command == "ban":
        ban = await admin.ban(caller, args.user, args.reason)
        where = "everywhere" if ban.scope == GLOBAL else ban.scope
        say(f"banned {ban.platform}:{ban.user_id} ({where})", _ban_record(ban))
    elif command == "unban":
        lifted = await admin.unban(caller, args.user)
        say(f"unbanned {args.user}" if lifted else f"{args.user} was not banned there",
            {"user": args.user, "unbanned": lifted})
    elif command == "bans":
        for ban in await admin.bans(caller):
            text = f"{ban.platform}:{ban.user_id}\t{ban.scope}\t{ban.reason}\tby {ban.banned_by}"
            say(text, _ban_record(ban))
    elif command == "limits":
        limits = await admin.limits(caller)
        say("\n".join(f"{k}: {'none' if v is None else f'{v:g}'}" for k, v in limits.items()), limits)
    elif command == "set-limit":
        await admin.set_limit(caller, args.key, args.value)
        say(f"{args.key} set to {args.value}", {"key": args.key, "value": args.value})
    elif command in ("pause", "resume"):
        await (admin.pause if command == "pause" else admin.resume)(caller, args.provider)
        say(f"{args.provider} {command}d", {"provider": args.provider, "paused": command == "pause"})
    else:
        stats = await admin.stats(caller, parse_period(args.since))
        if say.json:
            for row in stats.providers:
                say("", {"since": _iso(stats.since), "scope": stats.scope, **asdict(row)})
        else:
            say("\n".join(stats.lines()), {})
    return 0


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ban_record(ban: Ban) -> dict[str, Any]:
    return {**asdict(ban), "banned_at": _iso(ban.banned_at)}


@dataclass(frozen=True)
class _Say:
    """Prints an admin command's outcome: its text, or its JSON object with --json."""

    json: bool

    def __call__(self, text: str, record: dict[str, Any]) -> None:
        print(json.dumps(record, ensure_ascii=False) if self.json else text)
