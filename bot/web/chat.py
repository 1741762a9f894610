"""A chat's pages (a Telegram group, a Discord server): its gallery and jobs for its members; for its
admins also usage by member, bans and limits (the same AdminService calls as the /admin commands, with
the same Caller) and the providers' status.

A session sees the chat it was opened from (the link asked for with /web there), and no other: an id
changed in the URL is "not found". An operator's session sees any chat.
"""

from __future__ import annotations

import time

from aiohttp import web

from bot.access import Caller
from bot.admin import AdminService
from bot.errors import NotAllowed, UserError
from bot.i18n import t
from bot.presentation import provider_state
from bot.quota import HOUR, LIMIT_KEYS
from bot.store.web import WebSession
from bot.web.auth import session_caller, session_scope_key
from bot.web.pages import GALLERY_SIZE, job_view
from bot.web.site import Site

DAY = 24 * HOUR


def scope_caller(session: WebSession, scope_key: str) -> Caller:
    """The caller acting on `scope_key`: the session's own (a chat admin there), or an operator's
    placed in that chat (as `imagine-bot admin --scope` is)."""
    caller = session_caller(session)
    if session_scope_key(session) == scope_key:
        return caller
    platform, _, ident = scope_key.partition(":")
    return Caller(caller.owner, scope=ident, scope_platform=platform, operator=True)


class ChatPages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.parts = site.parts
        self.admin: AdminService = site.parts.admin

    async def _chat(self, request: web.Request) -> tuple[WebSession, str, Caller]:
        session = await self.site.require(request)
        scope = request.match_info["scope"]
        if scope != session_scope_key(session) and not session.operator:
            raise self.site.not_found(request)
        return session, scope, scope_caller(session, scope)

    async def page(self, request: web.Request) -> web.Response:
        _, scope, caller = await self._chat(request)
        jobs = [job_view(j) for j in await self.parts.store.scope_jobs(scope, GALLERY_SIZE)]
        context: dict[str, object] = {
            "scope": scope, "jobs": jobs, "gallery": [j for j in jobs if j["has_image"] and j["terminal"]],
            "is_admin": self.admin.is_admin(caller), "message": request.query.get("done", ""),
        }  # fmt: skip
        if context["is_admin"]:
            context.update(await self._admin_context(caller, scope))
        return self.site.render(request, "chat.html", context)

    async def _admin_context(self, caller: Caller, scope: str) -> dict[str, object]:
        now = self.parts.clock()
        statuses = await self.parts.service.provider_status()
        return {
            "members": await self.parts.store.members(scope, now - DAY),
            "limits": await self.admin.limits(caller), "limit_keys": LIMIT_KEYS,
            "bans": await self.admin.bans(caller),
            "providers": [{"name": s.name, "type": s.type, "queued": s.queued, "active": s.active,
                           "state": provider_state(s.held, s.rate_limited_until, time.time())}
                          for s in statuses],
        }  # fmt: skip

    async def _act(self, request: web.Request, what: str) -> web.StreamResponse:
        _, form = await self.site.require_post(request)
        _, scope, caller = await self._chat(request)
        try:
            if what == "limit":
                await self.admin.set_limit(caller, form.get("key", ""), form.get("value", ""))
                done = f"{form.get('key')} set to {form.get('value')}"
            elif what == "ban":
                ban = await self.admin.ban(caller, form.get("user", ""), form.get("reason", ""))
                done = f"banned {ban.platform}:{ban.user_id}"
            else:
                lifted = await self.admin.unban(caller, form.get("user", ""))
                done = f"unbanned {form.get('user')}" if lifted else f"{form.get('user')} was not banned here"
        except NotAllowed as exc:
            raise self.site.page_error(request, 403, t("Not allowed"), exc.message) from None
        except UserError as exc:
            raise self.site.page_error(request, 400, t("That did not work"), exc.message) from None
        raise web.HTTPSeeOther(request.app.router["web-chat"].url_for(scope=scope).with_query(done=done))

    async def set_limit(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, "limit")

    async def ban(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, "ban")

    async def unban(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, "unban")


def add_routes(app: web.Application, site: Site) -> None:
    c = ChatPages(site)
    scope = "/web/chats/{scope:[a-z]+:-?[0-9A-Za-z_]+}"
    app.router.add_get(scope, c.page, name="web-chat")
    app.router.add_post(scope + "/limits", c.set_limit)
    app.router.add_post(scope + "/bans", c.ban)
    app.router.add_post(scope + "/unban", c.unban)
