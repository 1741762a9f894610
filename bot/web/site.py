"""The web site: its parts, the helpers every page uses (the session, CSRF, rendering, who may see a
job) and `mount`, which adds the pages to the webhooks server's application."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
import jinja2
from aiohttp import web

from bot import i18n
from bot.admin import AdminService
from bot.domain import Job, same_person
from bot.errors import UnknownJob
from bot.i18n import t
from bot.job_media import JobMedia
from bot.languages import Languages
from bot.metrics import Metrics
from bot.service import JobService
from bot.store.web import WebSession, WebStore
from bot.web.auth import COOKIE, WebAuth, session_caller, session_scope_key
from bot.web.thumbs import ThumbCache

HERE = Path(__file__).parent
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION_KEY = web.RequestKey("web_session", WebSession)
#: Every page: no framing, scripts and styles from this site only, no referrer to other sites (a
#: sign-in link's URL carries its token; "no-referrer" would also make Chromium send `Origin: null`
#: with the pages' own forms), no MIME sniffing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}  # fmt: skip


@dataclass
class WebParts:
    auth: WebAuth
    service: JobService
    admin: AdminService
    store: WebStore
    media: JobMedia
    thumbs: ThumbCache
    languages: Languages  # a signed-in person's own choice and their chat's, before the browser's
    clock: Callable[[], float] = time.time
    metrics: Metrics | None = None  # the operator console's error rates
    # platform -> its job-message layer's `show` (a chat frontend registers it when it starts): a job
    # made on a page (Vary (Region)) gets its first message in the chat, like a button's job
    shows: dict[str, Callable[[Job], Awaitable[None]]] = field(default_factory=dict)


class Site:
    """What the page handlers share."""

    def __init__(self, parts: WebParts) -> None:
        self.parts = parts
        self.auth = parts.auth

    async def session(self, request: web.Request) -> WebSession | None:
        """The request's session, if its cookie names a live one (looked up once per request)."""
        looked = request.get(_LOOKED_UP)
        if looked is None:
            looked = request[_LOOKED_UP] = _Lookup(await self.auth.session(request.cookies.get(COOKIE)))
        return looked.session

    async def locale(self, request: web.Request) -> str:
        """The language a page is written in: a signed-in person's own choice, then their chat's (the
        same as in the chat, `bot/languages.py`), then the browser's `Accept-Language`, then English."""
        browser = i18n.accepted(request.headers.get("Accept-Language"))
        session = await self.session(request)
        if session is None:
            return i18n.resolve(browser)
        owner = session_caller(session).owner
        return await self.parts.languages.of(owner, session_scope_key(session), browser)

    async def require(self, request: web.Request) -> WebSession:
        """The request's live session; else a page saying how to sign in (401)."""
        session = await self.session(request)
        if session is None:
            raise self.page_error(request, 401, t("You are not signed in"),
                                  t("Send /web to the bot (in Telegram or Discord) for a sign-in link."))
        request[SESSION_KEY] = session
        return session

    async def require_post(self, request: web.Request) -> tuple[WebSession, dict[str, str]]:
        """A form POST's session and fields; 403 without the session's CSRF token."""
        session = await self.require(request)
        form = {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}
        token = form.get("csrf") or request.headers.get("X-CSRF-Token")
        if not self.auth.csrf_ok(session, token):
            raise self.page_error(request, 403, t("This form has expired"),
                                  t("Reload the page and try again."))
        return session, form

    def render(self, request: web.Request, template: str, context: dict[str, Any],
               status: int = 200) -> web.Response:
        session = request.get(SESSION_KEY)
        base = {"session": session, "csrf": self.auth.csrf(session) if session else "",
                "scope_key": session_scope_key(session) if session else None,
                "lang": i18n.html_lang(i18n.current())}
        return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)

    def page_error(self, request: web.Request, status: int, title: str, text: str) -> web.HTTPException:
        return _Page(self.render(request, "error.html", {"title": title, "text": text}, status))

    def not_found(self, request: web.Request) -> web.HTTPException:
        return self.page_error(request, 404, t("Not found"), t("There is nothing here for you."))

    async def visible_job(self, request: web.Request, session: WebSession, job_id: str) -> Job:
        """The job, if this session may see it: its owner's, a job of the chat the session was opened
        from, or any for an operator. Anything else is "not found", the same as a job that does not
        exist, so ids can't be probed."""
        try:
            job = await self.parts.service.get(job_id)
        except UnknownJob:
            raise self.not_found(request) from None
        if await self.may_see(session, job):
            return job
        raise self.not_found(request)

    async def may_see(self, session: WebSession, job: Job) -> bool:
        caller = session_caller(session)
        if session.operator or same_person(caller.owner, job.owner):
            return True
        scope = session_scope_key(session)
        return scope is not None and await self.parts.store.job_scope(job.id) == scope


@dataclass(frozen=True)
class _Lookup:
    session: WebSession | None


_LOOKED_UP = web.RequestKey("web_session_lookup", _Lookup)


class _Page(web.HTTPException):
    """A rendered page raised from a helper (aiohttp sends an HTTPException as the response)."""

    def __init__(self, response: web.Response) -> None:
        self.status_code = response.status
        super().__init__(text=response.text, content_type="text/html")


def _cross_site(request: web.Request, public_url: str) -> bool:
    """A POST a browser sent from another site (its Origin is neither this host nor the public URL):
    refused before any handler runs, sign-in included (a forged sign-in would put a person in an
    attacker's session). Browsers send Origin with every POST; a request without one is no browser's."""
    origin = request.headers.get("Origin")
    if request.method != "POST" or origin is None:
        return False
    parts = urlsplit(origin)
    return parts.netloc != request.host and f"{parts.scheme}://{parts.netloc}" != public_url


def security_headers(public_url: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/web") and _cross_site(request, public_url):
            raise web.HTTPForbidden(text="cross-site request refused", headers=SECURITY_HEADERS)
        return await _with_headers(request, handler)

    return middleware


async def _with_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith("/web"):
            exc.headers.update(SECURITY_HEADERS)
        raise
    if request.path.startswith("/web"):
        response.headers.update(SECURITY_HEADERS)
    return response


def in_language(site: Site) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Every page request is handled in its reader's language (`Site.locale`): the templates' `t()` and
    every message the handler and the core write (errors included) use it."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/web") or request.path.startswith("/web/static/"):
            return await handler(request)
        with i18n.use(await site.locale(request)):
            return await handler(request)

    return middleware


def mount(app: web.Application, parts: WebParts) -> None:
    """Add the pages, their templates and static files to the webhooks server's application."""
    from bot.web import chat, console, editor, pages, telegram_app

    environment = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                                       autoescape=jinja2.select_autoescape(["html"], default=True))
    environment.globals.update(t=i18n.t, tn=i18n.tn)  # the templates' words: extracted like the code's
    app.middlewares.append(security_headers(parts.auth.public_url))
    site = Site(parts)
    app.middlewares.append(in_language(site))
    pages.add_routes(app, site)
    chat.add_routes(app, site)
    console.add_routes(app, site)
    telegram_app.add_routes(app, site)
    editor.add_routes(app, site)
    app.router.add_static("/web/static/", HERE / "static", name="web-static")
