"""A member's pages: sign-in and sign-out, their gallery, a job (its images, upscales, prompt and
parameters), their jobs with live state, their usage; and the images, served from the media cache."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.domain import Job, JobState, button_label
from bot.errors import JobNotFinished, UserError
from bot.i18n import t
from bot.presentation import state_name, title
from bot.web.auth import COOKIE, LOGIN_PATH, LinkRefused, session_caller
from bot.web.site import Site
from providers.base import Action, offer_key

GALLERY_SIZE = 120  # newest jobs a gallery shows
_IMAGE_TYPES = {b"\xff\xd8": "image/jpeg", b"\x89P": "image/png", b"RI": "image/webp", b"GI": "image/gif"}


def job_view(job: Job) -> dict[str, Any]:
    """What a template shows of a job (templates get plain values, never a domain object to call)."""
    prompt = job.request.prompt
    params = prompt.model_dump(exclude_defaults=True, exclude={"text"}) if prompt else {}
    return {
        "id": job.id, "kind": job.kind.value, "state": job.state.value, "progress": job.progress,
        "state_text": state_name(job.state),
        "title": title(job), "prompt": prompt.full() if prompt else "", "text": prompt.text if prompt else "",
        "params": {k: v for k, v in params.items() if v not in ((), None)},
        "provider": job.provider, "error": job.error, "created_at": job.created_at,
        "label": button_label(job.kind.value, job.index) if job.parent_id else "",
        "images": len(job.result.image_urls) if job.result else 0,
        "has_image": bool(job.result and (job.result.grid_url or job.result.image_urls)),
        "terminal": job.terminal, "parent_id": job.parent_id,
        "vary_region": offer_key(Action.VARY_REGION) in job.actions,
        "owner": job.owner.name or f"{job.owner.platform}:{job.owner.user_id}",
    }  # fmt: skip


def content_type(data: bytes) -> str:
    return next((kind for magic, kind in _IMAGE_TYPES.items() if data.startswith(magic)),
                "application/octet-stream")


class Pages:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.parts = site.parts

    # -- signing in and out --------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        """The link opens a page with a button: link previews (Telegram and Discord fetch URLs posted
        in chats) load pages, they don't press buttons, so a preview can't use the link up."""
        token = request.query.get("t", "")
        return self.site.render(request, "login.html", {"token": token})

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        try:
            _, cookie = await self.site.auth.redeem(str(form.get("t", "")))
        except LinkRefused as exc:
            return self.site.render(request, "error.html",
                                    {"title": t("Sign-in refused"), "text": exc.message}, 403)
        response = web.HTTPSeeOther("/web/")
        response.set_cookie(COOKIE, cookie, max_age=int(self.site.auth.session_lifetime), path="/web",
                            httponly=True, samesite="Lax", secure=self.site.auth.secure_cookie)
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        session, _ = await self.site.require_post(request)
        await self.site.auth.revoke(session)
        response = web.HTTPSeeOther("/web/signed-out")
        response.del_cookie(COOKIE, path="/web")
        raise response

    async def signed_out(self, request: web.Request) -> web.Response:
        return self.site.render(request, "error.html", {
            "title": t("Signed out"), "text": t("Send /web to the bot for a new sign-in link.")})

    # -- pages ---------------------------------------------------------------------------------------

    async def gallery(self, request: web.Request) -> web.Response:
        session = await self.site.require(request)
        jobs = await self.parts.service.recent(session_caller(session).owner, GALLERY_SIZE)
        shown = [job_view(j) for j in jobs if j.state is JobState.SUCCEEDED and job_view(j)["has_image"]]
        return self.site.render(request, "gallery.html", {"jobs": shown, "heading": t("Your gallery")})

    async def jobs(self, request: web.Request) -> web.Response:
        session = await self.site.require(request)
        jobs = await self.parts.service.recent(session_caller(session).owner, GALLERY_SIZE)
        return self.site.render(request, "jobs.html", {"jobs": [job_view(j) for j in jobs]})

    async def jobs_state(self, request: web.Request) -> web.Response:
        """The live state of the jobs a page lists (`?ids=a,b`), for its short polling; jobs the
        session may not see are left out."""
        session = await self.site.require(request)
        states = {}
        for job_id in request.query.get("ids", "").split(",")[:100]:
            try:
                job = await self.parts.service.get(job_id)
            except UserError:
                continue
            if await self.site.may_see(session, job):
                states[job.id] = {"state": job.state.value, "state_text": state_name(job.state),
                                  "progress": job.progress,
                                  "terminal": job.terminal, "error": job.error}
        return web.json_response(states, headers={"Cache-Control": "no-store"})

    async def job(self, request: web.Request) -> web.Response:
        session = await self.site.require(request)
        job = await self.site.visible_job(request, session, request.match_info["job_id"])
        children = [job_view(c) for c in await self.parts.store.children(job.id)]
        return self.site.render(request, "job.html", {
            "job": job_view(job), "children": [c for c in children if c["has_image"]]})

    async def usage(self, request: web.Request) -> web.Response:
        session = await self.site.require(request)
        usage = await self.parts.service.usage(session_caller(session))
        return self.site.render(request, "usage.html", {"usage": usage, "lines": usage.lines()})

    # -- images --------------------------------------------------------------------------------------

    async def image(self, request: web.Request) -> web.Response:
        """Image `n` of a job (0: the grid or main picture, 1-4 its single images), from the media
        cache: never a redirect to the provider's (expiring) URL."""
        session = await self.site.require(request)
        job = await self.site.visible_job(request, session, request.match_info["job_id"])
        data = await self._image(request, job, int(request.match_info["n"]))
        headers = {"Cache-Control": "private, max-age=86400"}
        if request.query.get("download"):
            kind = content_type(data).split("/")[-1].replace("jpeg", "jpg")
            name = f"{job.id}-{request.match_info['n']}.{kind}"
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return web.Response(body=data, content_type=content_type(data), headers=headers)

    async def _image(self, request: web.Request, job: Job, n: int) -> bytes:
        try:
            files = await self.parts.media.files(job, tiles=n > 0)
        except (JobNotFinished, UserError):
            raise self.site.not_found(request) from None
        pictures = [files.grid or (files.images[0] if files.images else None), *files.images]
        if not 0 <= n < len(pictures) or pictures[n] is None:
            raise self.site.not_found(request)
        picture = pictures[n]
        assert picture is not None
        return picture

    async def thumb(self, request: web.Request) -> web.Response:
        session = await self.site.require(request)
        job = await self.site.visible_job(request, session, request.match_info["job_id"])
        data = await self.parts.thumbs.get(job.id)
        if data is None:
            data = await self.parts.thumbs.get(job.id, await self._image(request, job, 0))
        assert data is not None
        return web.Response(body=data, content_type="image/jpeg",
                            headers={"Cache-Control": "private, max-age=86400"})

    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/web/")


def add_routes(app: web.Application, site: Site) -> None:
    p = Pages(site)
    app.router.add_get("/", p.home)
    app.router.add_get("/web", p.home)
    app.router.add_get(LOGIN_PATH, p.login_form)
    app.router.add_post(LOGIN_PATH, p.login)
    app.router.add_post("/web/logout", p.logout)
    app.router.add_get("/web/signed-out", p.signed_out)
    app.router.add_get("/web/", p.gallery)
    app.router.add_get("/web/jobs", p.jobs)
    app.router.add_get("/web/jobs/state", p.jobs_state)
    app.router.add_get("/web/jobs/{job_id:[a-z0-9]+}", p.job)
    app.router.add_get("/web/jobs/{job_id:[a-z0-9]+}/image/{n:[0-9]}", p.image)
    app.router.add_get("/web/jobs/{job_id:[a-z0-9]+}/thumb", p.thumb)
    app.router.add_get("/web/usage", p.usage)
