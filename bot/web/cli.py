"""`imagine-bot web-link` (a sign-in link for the terminal) and `imagine-bot web-sessions` (the signed-in
browsers: list them, revoke one or a person's)."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from bot.access import parse_user
from bot.config import AppConfig
from bot.domain import Owner
from bot.errors import UserError
from bot.store import JobStore
from bot.web.auth import Grant, WebAuth

_ID_SHOWN = 12  # characters of a session's id that `web-sessions` shows and `--revoke` takes


def add_cli(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("web-link", help="print a one-time sign-in link to the web pages")
    p.add_argument("--operator", action="store_true", help="an operator's link: every chat's pages")
    p.add_argument("--user", metavar="PLATFORM:ID", help="for this person (default: you, the terminal)")
    p.add_argument("--name", default="", help="the person's display name on the pages")
    p.add_argument("--scope", metavar="PLATFORM:ID", help="the chat or server the link opens (its pages)")
    p.add_argument("--admin", action="store_true", help="as an admin of --scope")
    p = sub.add_parser("web-sessions", help="the signed-in browsers: list, or revoke")
    p.add_argument("--revoke", metavar="ID", help="end the session whose id starts with ID (as listed)")
    p.add_argument("--revoke-user", metavar="PLATFORM:ID", help="end every session of this person")


def _grant(args: argparse.Namespace, you: Owner) -> Grant:
    owner = you
    if args.user:
        platform, user_id = parse_user(args.user, "")
        if not platform:
            raise UserError("--user must be PLATFORM:ID, e.g. telegram:12345.")
        owner = Owner(platform=platform, user_id=user_id, name=args.name)
    scope = scope_platform = None
    if args.scope:
        scope_platform, _, scope = args.scope.rpartition(":")
        if not scope_platform or not scope:
            raise UserError(f"--scope must be PLATFORM:ID, e.g. telegram:-100123; not '{args.scope}'.")
    elif args.admin:
        raise UserError("--admin needs --scope: the chat the person administers.")
    return Grant(owner, scope, scope_platform, chat_admin=args.admin, operator=args.operator)


async def run_cli(args: argparse.Namespace, config: AppConfig, store: JobStore, you: Owner) -> int:
    if config.webhooks is None or not config.web.enabled:
        raise UserError("The web pages are off: set web.enabled: true and a webhooks section in the config.")
    auth = WebAuth(config.web, config.webhooks.public_url, store.web)
    await auth.load_secret()
    as_json = getattr(args, "json", False)
    if args.command == "web-link":
        link = auth.link(_grant(args, you))
        print(json.dumps({"url": link, "expires_in": config.web.link_expiry}) if as_json else link)
        return 0
    now = time.time()
    if args.revoke or args.revoke_user:
        if args.revoke:
            if len(args.revoke) < 8:
                raise UserError("--revoke takes at least 8 characters of a session's id.")
            count = await store.web.revoke_prefix(args.revoke, now)
        else:
            platform, user_id = parse_user(args.revoke_user, "")
            count = await store.web.revoke_user(platform, user_id, now)
        print(json.dumps({"revoked": count}) if as_json else f"revoked {count} session(s)")
        return 0
    for s in await store.web.sessions(now):
        where = f"{s.scope_platform or s.platform}:{s.scope}" if s.scope else "-"
        rights = "operator" if s.operator else "admin" if s.chat_admin else "member"
        record = {"id": s.id[:_ID_SHOWN], "user": f"{s.platform}:{s.user_id}", "name": s.name, "chat": where,
                  "rights": rights, "created": _iso(s.created_at), "expires": _iso(s.expires_at)}
        print(json.dumps(record) if as_json else "\t".join(str(v) for v in record.values()))
    return 0


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
