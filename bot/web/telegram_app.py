"""Sign-in inside Telegram: /web's Web App button opens /web/telegram-app, whose script posts the
`initData` Telegram gave the page; the server checks its signature (bot/web/auth.py) and opens a member
session for that Telegram user (no chat scope: group admin rights are not implied), then the page goes
to the gallery."""

from __future__ import annotations

from aiohttp import web

from bot.web.auth import COOKIE, Grant, InitDataRefused
from bot.web.site import Site

PATH = "/web/telegram-app"


class TelegramApp:
    def __init__(self, site: Site) -> None:
        self.site = site

    async def page(self, request: web.Request) -> web.Response:
        return self.site.render(request, "telegram_app.html", {})

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        try:
            owner = self.site.auth.telegram_user(str(form.get("init_data", "")))
        except InitDataRefused as exc:
            return web.json_response({"ok": False, "error": exc.message}, status=403)
        _, cookie = await self.site.auth.open_session(Grant(owner))
        response = web.json_response({"ok": True, "next": "/web/"})
        response.set_cookie(COOKIE, cookie, max_age=int(self.site.auth.session_lifetime), path="/web",
                            httponly=True, samesite="Lax", secure=self.site.auth.secure_cookie)
        return response


def add_routes(app: web.Application, site: Site) -> None:
    t = TelegramApp(site)
    app.router.add_get(PATH, t.page)
    app.router.add_post(PATH, t.sign_in)
