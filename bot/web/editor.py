"""Vary (Region): the editor page of an upscale (draw rectangles or a lasso over the image, optionally
edit the prompt) and its form, which turns the drawing into a black/white mask at the image's size and
presses Vary (Region) through the service, like a chat button. The new job is posted in the chat by
the job-message layer (replying to the upscale's message); the page then shows its progress."""

from __future__ import annotations

import base64
import binascii
import io
import secrets

from aiohttp import web
from PIL import Image

from bot import media
from bot.domain import Job, Placement
from bot.errors import BadImage, UserError
from bot.i18n import t
from bot.web.auth import session_caller
from bot.web.pages import job_view
from bot.web.site import Site
from providers.base import Action, ImageInput, offer_key

PATH = "/web/jobs/{job_id:[a-z0-9]+}/vary-region"


def editor_path(job_id: str) -> str:
    """Where the editor of `job_id` is (the chat's "Vary (Region)" link button points here)."""
    return f"/web/jobs/{job_id}/vary-region"


def offers_region(job: Job) -> bool:
    """Whether `job` (a finished upscale of a provider that can) offers Vary (Region)."""
    return offer_key(Action.VARY_REGION) in job.actions


def decode_data_uri(value: str) -> bytes:
    """The bytes of a `data:image/png;base64,...` field (BadImage when it is not one)."""
    head, _, data = value.partition(",")
    if not head.startswith("data:image/") or ";base64" not in head:
        raise BadImage(t("The region was not sent as an image."))
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadImage(t("The region was not sent as an image.")) from None


class Editor:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.parts = site.parts

    async def _target(self, request: web.Request) -> Job:
        session = await self.site.require(request)
        return await self.site.visible_job(request, session, request.match_info["job_id"])

    def _refused(self, request: web.Request, job: Job) -> web.HTTPException:
        return self.site.page_error(request, 400, t("Vary (Region) is not available"), t(
            "Job {job} ({provider}) does not offer Vary (Region): only upscales of a provider that can "
            "repaint a region do.", job=job.id, provider=job.provider))

    async def page(self, request: web.Request) -> web.Response:
        job = await self._target(request)
        if not offers_region(job):
            raise self._refused(request, job)
        return self.site.render(request, "editor.html", {
            "job": job_view(job), "nonce": secrets.token_urlsafe(12), "error": None})

    async def submit(self, request: web.Request) -> web.StreamResponse:
        session, form = await self.site.require_post(request)
        job = await self.site.visible_job(request, session, request.match_info["job_id"])
        if not offers_region(job):
            raise self._refused(request, job)
        try:
            drawn = decode_data_uri(form.get("mask", ""))
            size = await self._size(job)
            mask = media.region_mask(drawn, size)
            prompt = form.get("prompt", "").strip()
            original = job.request.prompt.full() if job.request.prompt else ""
            edited = prompt if prompt and prompt != original else None
            nonce = form.get("nonce", "")[:40] or secrets.token_urlsafe(12)
            child, created = await self.parts.service.act(
                session_caller(session), job.id, Action.VARY_REGION.value, placement=_beside(job),
                prompt=edited,
                mask=ImageInput(data=mask, mime="image/png", filename="mask.png"),
                origin=f"web-region:{job.id}:{nonce}")  # fmt: skip
            show = self.parts.shows.get(child.placement.platform) if child.placement else None
            if created and show is not None:
                await show(child)  # its message in the chat, replying to the upscale's
        except UserError as exc:
            return self.site.render(request, "editor.html", {
                "job": job_view(job), "nonce": secrets.token_urlsafe(12), "error": exc.message}, 400)
        raise web.HTTPSeeOther(f"/web/jobs/{child.id}")

    async def _size(self, job: Job) -> tuple[int, int]:
        """The upscale's size in pixels (the mask is made at it)."""
        files = await self.parts.media.files(job, tiles=False)
        picture = files.images[0] if files.images else files.grid
        if picture is None:
            raise BadImage(t("This job has no image to vary."))
        with Image.open(io.BytesIO(picture)) as image:
            return image.size


def _beside(job: Job) -> Placement | None:
    """Where the vary job is shown: the upscale's chat (and thread), replying to the upscale's message,
    as if its button had been pressed there. None for a job shown nowhere (made on the CLI)."""
    where = job.placement
    if where is None:
        return None
    return Placement(platform=where.platform, chat_id=where.chat_id, thread_id=where.thread_id,
                     reply_to=where.message_id)


def add_routes(app: web.Application, site: Site) -> None:
    e = Editor(site)
    app.router.add_get(PATH, e.page)
    app.router.add_post(PATH, e.submit)
