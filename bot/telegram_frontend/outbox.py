"""Everything the bot sends goes through the Outbox, paced to Telegram's flood limits.

Job messages are edited through the shared `Delivery` (newest state per message wins, identical
states are never re-sent, a 429 is waited out and the final state always arrives). New messages
(replies to commands, error texts, full-size documents) use `Delivery.paced`, so they share the same
per-chat and global windows as the edits.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import functools
import io
import logging
import warnings
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import telegram.error
from PIL import Image, ImageDraw
from telegram import Bot, InputMediaPhoto, Message, ReplyParameters

from bot import faults, media
from bot.config import RateLimit, TelegramConfig
from bot.delivery import Delivery, Rate, RetryAfter
from bot.domain import Job, JobState
from bot.errors import UserError
from bot.service import JobService
from bot.telegram_frontend import render
from bot.telegram_frontend.common import placed_thread, thread_of
from bot.telegram_frontend.keyboards import markup
from bot.telegram_frontend.render import PLACEHOLDER, RESULT, View

log = logging.getLogger(__name__)
R = TypeVar("R")

#: Bad Request descriptions meaning the message is gone or can't be edited any more: stop trying.
_GONE = ("message to edit not found", "message can't be edited", "chat not found", "message_id_invalid")
_RANK = {state: rank for rank, state in enumerate(JobState)}
_MEMORY = 50_000  # messages whose last pushed state is remembered


@dataclass(frozen=True)
class Edit:
    """The newest view of one message (and the job it shows, when it shows one)."""

    chat_id: int
    message_id: int
    view: View
    job: Job | None = None


@dataclass(frozen=True)
class Prepared:
    """A finished job's media, ready to upload: the photo (fitted to Telegram's limits), a full-size
    document (data, filename, caption) when the photo would lose detail, and any videos."""

    photo: bytes | None
    full: tuple[bytes, str, str] | None
    videos: tuple[bytes, ...]


def message_key(chat_id: int | str, message_id: int | str) -> str:
    return f"{chat_id}:{message_id}"


def reply_to(message_id: int) -> ReplyParameters:
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


def _rate(limit: RateLimit) -> Rate:
    return Rate(limit.count, limit.period)


def retry_seconds(exc: telegram.error.RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int form is deprecated; both are handled
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def _placeholder_image() -> bytes:
    return _placeholder()


@functools.cache
def _placeholder() -> bytes:
    """A plain dark square shown until the first preview or the result arrives."""
    image = Image.new("RGB", (512, 512), (32, 34, 40))
    ImageDraw.Draw(image).rounded_rectangle((176, 176, 336, 336), radius=24, outline=(90, 94, 104), width=6)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


class Outbox:
    def __init__(self, bot: Bot, service: JobService, config: TelegramConfig, *,
                 retry_after_scale: float = 1.0, owns: Callable[[str], Awaitable[bool]] | None = None
                 ) -> None:
        self.bot = bot
        self._owns = owns  # whether this worker shows a chat (bot/workers.py); None: every chat
        self._service = service
        self._config = config
        self._retry_scale = retry_after_scale  # tests against a time-scaled fake shrink waits alike
        self.delivery: Delivery[Edit] = Delivery(self._edit, self._chat_rates, _rate(config.global_rate))
        self._images: dict[str, str] = {}  # message key -> image shown (placeholder or a preview URL)
        self._latest: dict[str, tuple[int, int]] = {}  # message key -> (state rank, progress) pushed
        self._placeholder_id: str | None = None  # file_id of the uploaded placeholder, reused
        self._prepared: dict[str, asyncio.Task[Prepared | None]] = {}  # message key -> result media
        self._group: asyncio.TaskGroup | None = None  # set while run() runs: owns the prefetch tasks
        self._waiting: dict[str, dict[str, Job]] = {}  # provider -> its queued jobs shown here, by id
        self._left: dict[str, None] = {}  # ids of jobs (any platform) seen out of the queue
        self.gone = 0  # edits given up because the message was deleted

    def _chat_rates(self, chat_key: str) -> tuple[Rate, ...]:
        if int(chat_key) < 0:  # groups and channels: ~1/s in the chat and 20/min in the group
            return _rate(self._config.chat_rate), _rate(self._config.group_rate)
        return (_rate(self._config.chat_rate),)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                await self.delivery.run()
            finally:
                self._group = None

    # -- new messages -----------------------------------------------------------------------------

    async def paced(self, chat_id: int, call: Callable[[], Awaitable[R]]) -> R:
        """`call()` (one send) made inside the chat's flood windows; a 429 is waited out and retried."""

        async def converted() -> R:
            try:
                return await call()
            except telegram.error.RetryAfter as exc:
                raise RetryAfter(retry_seconds(exc) * self._retry_scale) from exc

        return await self.delivery.paced(str(chat_id), converted)

    async def reply_text(self, message: Message, text: str) -> Message | None:
        """A text reply to `message`; a refusal by Telegram is logged, never raised at the user."""
        thread = thread_of(message)
        try:
            return await self.paced(message.chat_id, lambda: self.bot.send_message(
                message.chat_id, render.cut(text, render.TEXT_LIMIT),
                reply_parameters=reply_to(message.message_id), message_thread_id=thread))  # fmt: skip
        except telegram.error.TelegramError as exc:
            log.warning("could not reply in chat %s: %s", message.chat_id, exc)
            return None

    async def send_job_message(self, view: View, chat_id: int, reply_to_id: int | None,
                               thread_id: int | None) -> Message:
        """The first message of a job: a placeholder photo (or text) replying to the command."""
        params = reply_to(reply_to_id) if reply_to_id else None
        keyboard = markup(view.buttons)
        if view.photo:
            sent = await self._send_placeholder(view, chat_id, params, thread_id)
            self._images[message_key(chat_id, sent.message_id)] = PLACEHOLDER
        else:
            sent = await self.paced(chat_id, lambda: self.bot.send_message(
                chat_id, view.text, reply_parameters=params, reply_markup=keyboard,
                message_thread_id=thread_id))  # fmt: skip
        self.delivery.shown(message_key(chat_id, sent.message_id), view)
        return sent

    async def _send_placeholder(self, view: View, chat_id: int, params: ReplyParameters | None,
                                thread_id: int | None) -> Message:
        async def send() -> Message:
            photo: str | bytes
            if self._placeholder_id is not None:
                photo = self._placeholder_id
            else:
                photo = await asyncio.to_thread(_placeholder_image)
            return await self.bot.send_photo(chat_id, photo, caption=view.text, reply_parameters=params,
                                             reply_markup=markup(view.buttons), message_thread_id=thread_id)

        try:
            sent = await self.paced(chat_id, send)
        except telegram.error.BadRequest:
            if self._placeholder_id is None:
                raise
            self._placeholder_id = None  # a stale file_id (another bot token?): upload it again
            sent = await self.paced(chat_id, send)
        if sent.photo:
            self._placeholder_id = sent.photo[-1].file_id
        return sent

    # -- job changes -> edits ---------------------------------------------------------------------

    async def job_changed(self, job: Job) -> None:
        """The listener: queue the job's newest view for its message (never blocks on Telegram)."""
        if job.state is not JobState.QUEUED and job.id not in self._left:
            await self._left_queue(job)
        placement = job.placement
        if placement is None or placement.platform != "telegram" or placement.message_id is None:
            return
        if self._owns is not None and not await self._owns(placement.chat_id):
            return  # another worker shows this chat
        self._track(job)
        position = await self._service.queue_position(job) if job.state is JobState.QUEUED else 0
        # no await from here on: the check and the push must see the same newest state
        key = message_key(placement.chat_id, placement.message_id)
        rank = (_RANK[job.state], job.progress)
        if rank < self._latest.get(key, (-1, -1)):
            return  # an older report that arrived late (e.g. around place()): never move backwards
        self._latest.pop(key, None)
        self._latest[key] = rank
        if len(self._latest) > _MEMORY:
            del self._latest[next(iter(self._latest))]
        view = render.job_view(job, position)
        edit = Edit(int(placement.chat_id), int(placement.message_id), view, job)
        self.delivery.push(placement.chat_id, key, edit, view, final=view.final)
        if view.image == RESULT:
            self._prefetch(key, job)

    async def resume(self, jobs: Iterable[Job]) -> None:
        """At start: show these jobs' current state again (finals a restart cut off, queue positions)."""
        for job in jobs:
            await self.job_changed(job)

    def _track(self, job: Job) -> None:
        """Remember the queued jobs shown here, per provider, so their position can be refreshed."""
        for waiting in self._waiting.values():
            waiting.pop(job.id, None)  # it left the queue, or moved to another provider's
        if job.state is JobState.QUEUED:
            self._waiting.setdefault(job.provider, {})[job.id] = job

    async def _left_queue(self, job: Job) -> None:
        """A job (from any frontend) is out of its provider's queue: everyone behind it moved up.
        Their renders are pushed again; Delivery sends only those whose text changed, coalesced."""
        self._left[job.id] = None
        if len(self._left) > _MEMORY:
            del self._left[next(iter(self._left))]
        waiting = self._waiting.get(job.provider, {})
        waiting.pop(job.id, None)
        for other in list(waiting.values()):
            await self.job_changed(other)

    def show_text(self, chat_id: int, message_id: int, view: View) -> None:
        """Edit a text message the bot sent (e.g. /settings) through the paced, coalescing path."""
        key = message_key(chat_id, message_id)
        self.delivery.push(str(chat_id), key, Edit(chat_id, message_id, view), view)

    async def _edit(self, key: str, edit: Edit) -> None:
        """The Delivery sender: apply one view to its message."""
        try:
            await self._apply(key, edit)
        except telegram.error.RetryAfter as exc:
            raise RetryAfter(retry_seconds(exc) * self._retry_scale) from exc
        except telegram.error.BadRequest as exc:
            text = exc.message.lower()
            # "not modified": it already shows this (e.g. the same final state again after a restart)
            if "not modified" not in text:
                if not any(gone in text for gone in _GONE):
                    raise
                self._gave_up(key, exc)
        except telegram.error.Forbidden as exc:  # the bot was removed from the chat or blocked
            self._gave_up(key, exc)
        if edit.view.final and edit.job is not None:  # shown (or unshowable): a restart need not resend
            await faults.point("final_edited")
            await self._service.delivered(edit.job)

    def _gave_up(self, key: str, exc: telegram.error.TelegramError) -> None:
        self.gone += 1
        self._images.pop(key, None)
        if (task := self._prepared.pop(key, None)) is not None:
            task.cancel()
        log.info("message %s can't be edited any more (%s); its job carries on", key, exc.message)

    async def _apply(self, key: str, edit: Edit) -> None:
        view, chat_id, message_id = edit.view, edit.chat_id, edit.message_id
        keyboard = markup(view.buttons)
        if not view.photo:
            await self.bot.edit_message_text(view.text, chat_id, message_id, reply_markup=keyboard)
            return
        if view.image == RESULT and edit.job is not None and await self._result(key, edit):
            return
        image = view.image
        if image is not None and image not in (PLACEHOLDER, RESULT) and image != self._images.get(key):
            preview = await self._preview(edit.job)
            if preview is not None:
                media_item = InputMediaPhoto(preview, caption=view.text, filename="preview.jpg")
                await self.bot.edit_message_media(media_item, chat_id, message_id, reply_markup=keyboard)
                self._images[key] = image
                return
        await self.bot.edit_message_caption(chat_id, message_id, caption=view.text, reply_markup=keyboard)
        if view.final:
            self._images.pop(key, None)

    async def _preview(self, job: Job | None) -> bytes | None:
        if job is None:
            return None
        try:
            data = await self._service.media.preview(job)
        except UserError as exc:
            log.info("preview of job %s not shown: %s", job.id, exc.message)
            return None
        return await media.fit(data, render.PHOTO_MAX_BYTES, render.PHOTO_MAX_SIDE) if data else None

    def _prefetch(self, key: str, job: Job) -> None:
        """Start downloading and re-encoding a finished job's media now, so the upload can start as
        soon as the chat's flood window has room (instead of after it)."""
        if self._group is not None and key not in self._prepared:
            self._prepared[key] = self._group.create_task(self._prepare(job), name=f"prepare:{job.id}")

    async def _prepare(self, job: Job) -> Prepared | None:
        try:
            files = await self._service.media.files(job)
            main = files.grid or (files.images[0] if files.images else None)
            photo = await media.fit(main, render.PHOTO_MAX_BYTES, render.PHOTO_MAX_SIDE) if main else None
            single = files.images[0] if files.grid is None and files.images else None
            full = await self._full_size(job, single) if single else None
        except UserError as exc:
            log.warning("result of job %s could not be fetched: %s", job.id, exc.message)
            return None
        except Exception:  # a background task: log the trace, the edit falls back to the caption
            log.exception("preparing the result of job %s failed", job.id)
            return None
        return Prepared(photo, full, tuple(files.videos))

    async def _result(self, key: str, edit: Edit) -> bool:
        """The final grid (or image) with its buttons; False when there is no picture to show."""
        job = edit.job
        assert job is not None
        task = self._prepared.get(key)
        prepared = await task if task is not None else await self._prepare(job)
        if prepared is None or prepared.photo is None:
            self._prepared.pop(key, None)
            return False
        item = InputMediaPhoto(prepared.photo, caption=edit.view.text, filename=f"{job.id}.jpg")
        await self.bot.edit_message_media(item, edit.chat_id, edit.message_id,
                                          reply_markup=markup(edit.view.buttons))  # fmt: skip
        self._prepared.pop(key, None)  # kept until here: a 429 retries with the same bytes
        self._images.pop(key, None)
        if prepared.full is not None:
            await self._document(edit, *prepared.full)
        for number, video in enumerate(prepared.videos, start=1):
            await self._document(edit, video, f"{job.id}-{number}.mp4", f"Video {number} · job {job.id}")
        return True

    async def _full_size(self, job: Job, data: bytes) -> tuple[bytes, str, str] | None:
        """A single image larger than Telegram keeps in a photo also goes out as a document."""
        width, height = await media.image_size(data)
        if max(width, height) <= render.PHOTO_KEPT_SIDE and len(data) <= render.PHOTO_MAX_BYTES:
            return None
        if len(data) > render.DOCUMENT_MAX_BYTES:
            data = await media.fit(data, render.DOCUMENT_MAX_BYTES)
        ext = {"image/png": "png", "image/webp": "webp"}.get(media.sniff(data) or "") or "jpg"
        return data, f"{job.id}-full.{ext}", f"Full resolution · {width}×{height}"

    async def _document(self, edit: Edit, data: bytes, filename: str, caption: str) -> None:
        # the topic too, not only the reply: were the job message deleted meanwhile, the reply would
        # be dropped (allow_sending_without_reply) and the file would land in the forum's General topic
        thread = placed_thread(edit.job)
        try:
            await self.paced(edit.chat_id, lambda: self.bot.send_document(
                edit.chat_id, data, filename=filename, caption=caption,
                reply_parameters=reply_to(edit.message_id), message_thread_id=thread))  # fmt: skip
        except telegram.error.TelegramError as exc:
            log.warning("could not send %s to chat %s: %s", filename, edit.chat_id, exc)
