"""Everything the bot sends to Telegram goes through the Outbox, paced to Telegram's flood limits.

The Outbox is Telegram's `Surface` for the shared job-message layer (`bot/job_messages.py`: what is
shown when, congestion, bookkeeping): it renders a job as a photo (placeholder, preview, the result
fitted to Telegram's photo limits, a full-size document when the photo would lose detail) or a text
message, and sends and edits it. Answers to people (replies to commands, errors, documents) use
`paced`, so they share the chat's flood windows and go before queued progress.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import functools
import io
import logging
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import telegram.error
from PIL import Image, ImageDraw
from telegram import Bot, InputMediaPhoto, Message, ReplyParameters

from bot import i18n, media
from bot.config import RateLimit, TelegramConfig
from bot.delivery import Rate
from bot.domain import Job, Placement
from bot.errors import UserError
from bot.job_messages import Gone, JobMessages
from bot.queue_board import QueueBoard
from bot.service import JobService
from bot.telegram_frontend import render
from bot.telegram_frontend.common import PLATFORM, placed_thread, thread_of
from bot.telegram_frontend.keyboards import markup
from bot.telegram_frontend.render import PLACEHOLDER, RESULT, View

log = logging.getLogger(__name__)
R = TypeVar("R")

#: Bad Request descriptions meaning the message is gone or can't be edited any more: stop trying.
_GONE = ("message to edit not found", "message can't be edited", "chat not found", "message_id_invalid")


@dataclass(frozen=True)
class Prepared:
    """A finished job's media, ready to upload: the photo (fitted to Telegram's limits), a full-size
    document (data, filename, caption) when the photo would lose detail, and any videos."""

    photo: bytes | None
    full: tuple[bytes, str, str] | None
    videos: tuple[bytes, ...]


def reply_to(message_id: int) -> ReplyParameters:
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


def _rate(limit: RateLimit) -> Rate:
    return Rate(limit.count, limit.period)


def retry_seconds(exc: telegram.error.RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that the int form is deprecated; both are handled
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


@functools.cache
def _placeholder() -> bytes:
    """A plain dark square shown until the first preview or the result arrives."""
    image = Image.new("RGB", (512, 512), (32, 34, 40))
    ImageDraw.Draw(image).rounded_rectangle((176, 176, 336, 336), radius=24, outline=(90, 94, 104), width=6)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


class Outbox:
    """Telegram's surface for the job-message layer, and the paced sends of answers to people."""

    platform = PLATFORM

    def __init__(self, bot: Bot, service: JobService, board: QueueBoard, config: TelegramConfig, *,
                 retry_after_scale: float = 1.0, owns: Callable[[str], Awaitable[bool]] | None = None
                 ) -> None:
        self.bot = bot
        self._service = service
        self._config = config
        self._retry_scale = retry_after_scale  # tests against a time-scaled fake shrink waits alike
        self.messages: JobMessages[View] = JobMessages(self, service, board, _rate(config.global_rate),
                                                       owns=owns, max_live=config.congestion_jobs)
        self.delivery = self.messages.delivery
        self._images: dict[str, str] = {}  # job id -> image its message shows (placeholder or a preview)
        self._placeholder_id: str | None = None  # file_id of the uploaded placeholder, reused
        self._prepared: dict[str, asyncio.Task[Prepared | None]] = {}  # job id -> its result media

    @property
    def gone(self) -> int:
        return self.messages.gone

    # -- answers to people ------------------------------------------------------------------------

    async def paced(self, chat_id: int, call: Callable[[], Awaitable[R]]) -> R:
        """`call()` (one send) in the chat's next free slot; a 429 is waited out and retried."""
        return await self.messages.paced(str(chat_id), call)

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

    async def send_view(self, view: View, message: Message) -> Message:
        """A text message with buttons (e.g. /settings) replying to `message`, in its topic."""
        return await self.paced(message.chat_id, lambda: self.bot.send_message(
            message.chat_id, view.text, reply_parameters=reply_to(message.message_id),
            reply_markup=markup(view.buttons), message_thread_id=thread_of(message)))  # fmt: skip

    def show_text(self, chat_id: int, message_id: int, view: View) -> None:
        """Edit a text message the bot sent (e.g. /settings) through the paced, coalescing path."""
        where = Placement(platform=PLATFORM, chat_id=str(chat_id), message_id=str(message_id))
        self.messages.show_view(where, view)

    # -- the Surface: how a job's message looks and is sent ---------------------------------------

    def render(self, job: Job, position: int) -> View:
        return render.job_view(job, position)

    def first_view(self, job: Job, position: int, *, uncertain: bool) -> View:
        if uncertain:
            return render.first_view(job, position)
        view = render.job_view(job, position)
        return view if view.image == RESULT else replace(view, image=None)

    def lane(self, placement: Placement) -> str:
        return placement.chat_id

    def rates(self, lane: str) -> tuple[Rate, ...]:
        if int(lane) < 0:  # groups and channels: ~1/s in the chat and 20/min in the group
            return _rate(self._config.chat_rate), _rate(self._config.group_rate)
        return (_rate(self._config.chat_rate),)

    def rate_limited(self, exc: BaseException) -> float | None:
        if isinstance(exc, telegram.error.RetryAfter):
            return retry_seconds(exc) * self._retry_scale
        return None

    def prefetch(self, job: Job) -> None:
        """Start downloading and re-encoding a finished job's media now, so the upload can start as
        soon as the chat's flood window has room (instead of after it)."""
        if job.id not in self._prepared and render.job_view(job).image == RESULT:
            task = self.messages.spawn(self._prepare(job), f"prepare:{job.id}")
            if task is not None:
                self._prepared[job.id] = task

    async def post(self, job: Job, view: View) -> Placement:
        """The job's first message, replying to the command: its result when it has one already, else a
        placeholder photo (or text)."""
        where = job.placement
        assert where is not None
        chat_id, thread = int(where.chat_id), placed_thread(job)
        params = reply_to(int(where.reply_to)) if where.reply_to else None
        try:
            if not view.photo:
                sent = await self.bot.send_message(chat_id, view.text, reply_parameters=params,
                                                   reply_markup=markup(view.buttons),
                                                   message_thread_id=thread)
            elif view.image == RESULT and (prepared := await self._take_prepared(job)) is not None:
                sent = await self._post_result(job, view, prepared, chat_id, params, thread)
            else:
                sent = await self._send_placeholder(view, chat_id, params, thread)
                self._images[job.id] = PLACEHOLDER
        except (telegram.error.BadRequest, telegram.error.Forbidden) as exc:  # the chat is gone for us
            raise Gone(exc.message) from exc
        return where.model_copy(update={"message_id": str(sent.message_id)})

    async def edit(self, job: Job | None, view: View, placement: Placement) -> None:
        try:
            await self._apply(job, view, int(placement.chat_id), int(placement.message_id or 0))
        except telegram.error.BadRequest as exc:
            text = exc.message.lower()
            # "not modified": it already shows this (e.g. the same final state again after a restart)
            if "not modified" not in text:
                if not any(gone in text for gone in _GONE):
                    raise
                self._forget(job)
                raise Gone(exc.message) from exc
        except telegram.error.Forbidden as exc:  # the bot was removed from the chat or blocked
            self._forget(job)
            raise Gone(exc.message) from exc

    async def status(self, chat_id: str, message_id: str | None, text: str) -> str:
        if message_id is None:
            sent = await self.bot.send_message(int(chat_id), text)
            return str(sent.message_id)
        try:
            await self.bot.edit_message_text(text, int(chat_id), int(message_id))
        except telegram.error.BadRequest as exc:
            if "not modified" not in exc.message.lower():
                raise
        return message_id

    # -- sending and editing ----------------------------------------------------------------------

    async def _send_placeholder(self, view: View, chat_id: int, params: ReplyParameters | None,
                                thread_id: int | None) -> Message:
        async def send() -> Message:
            photo: str | bytes
            if self._placeholder_id is not None:
                photo = self._placeholder_id
            else:
                photo = await asyncio.to_thread(_placeholder)
            return await self.bot.send_photo(chat_id, photo, caption=view.text, reply_parameters=params,
                                             reply_markup=markup(view.buttons), message_thread_id=thread_id)

        try:
            sent = await send()
        except telegram.error.BadRequest:
            if self._placeholder_id is None:
                raise
            self._placeholder_id = None  # a stale file_id (another bot token?): upload it again
            sent = await send()
        if sent.photo:
            self._placeholder_id = sent.photo[-1].file_id
        return sent

    def _forget(self, job: Job | None) -> None:
        if job is None:
            return
        self._images.pop(job.id, None)
        if (task := self._prepared.pop(job.id, None)) is not None:
            task.cancel()

    async def _apply(self, job: Job | None, view: View, chat_id: int, message_id: int) -> None:
        keyboard = markup(view.buttons)
        if not view.photo or job is None:
            await self.bot.edit_message_text(view.text, chat_id, message_id, reply_markup=keyboard)
            return
        if view.image == RESULT and (prepared := await self._take_prepared(job)) is not None:
            item = InputMediaPhoto(prepared.photo or b"", caption=view.text, filename=f"{job.id}.jpg")
            await self.bot.edit_message_media(item, chat_id, message_id, reply_markup=keyboard)
            self._prepared.pop(job.id, None)  # kept until here: a 429 retries with the same bytes
            self._images.pop(job.id, None)
            await self._extras(job, prepared, chat_id, message_id)
            return
        image = view.image
        if image is not None and image not in (PLACEHOLDER, RESULT) and image != self._images.get(job.id):
            preview = await self._preview(job)
            if preview is not None:
                media_item = InputMediaPhoto(preview, caption=view.text, filename="preview.jpg")
                await self.bot.edit_message_media(media_item, chat_id, message_id, reply_markup=keyboard)
                self._images[job.id] = image
                return
        await self.bot.edit_message_caption(chat_id, message_id, caption=view.text, reply_markup=keyboard)
        if view.final:
            self._images.pop(job.id, None)

    async def _post_result(self, job: Job, view: View, prepared: Prepared, chat_id: int,
                           params: ReplyParameters | None, thread: int | None) -> Message:
        sent = await self.bot.send_photo(chat_id, prepared.photo or b"", caption=view.text,
                                         reply_parameters=params, reply_markup=markup(view.buttons),
                                         message_thread_id=thread, filename=f"{job.id}.jpg")
        self._prepared.pop(job.id, None)
        # the files go out in the background: the window in which a kill leaves this post an orphan
        # (from Telegram's answer to the store's write of its id, README "Crash safety") stays one
        # request long, not one per file
        extras = self._extras(job, prepared, chat_id, sent.message_id)
        if self.messages.spawn(extras, f"extras:{job.id}") is None:
            await self._extras(job, prepared, chat_id, sent.message_id)
        return sent

    async def _extras(self, job: Job, prepared: Prepared, chat_id: int, message_id: int) -> None:
        if prepared.full is not None:
            await self._document(job, chat_id, message_id, *prepared.full)
        for number, video in enumerate(prepared.videos, start=1):
            caption = i18n.translate(job.locale, "Video {number} · job {job}", number=number, job=job.id)
            await self._document(job, chat_id, message_id, video, f"{job.id}-{number}.mp4", caption)

    async def _preview(self, job: Job) -> bytes | None:
        try:
            data = await self._service.media.preview(job)
        except UserError as exc:
            log.info("preview of job %s not shown: %s", job.id, exc.message)
            return None
        return await media.fit(data, render.PHOTO_MAX_BYTES, render.PHOTO_MAX_SIDE) if data else None

    async def _take_prepared(self, job: Job) -> Prepared | None:
        """The result's media (prefetched, or fetched now); None when there is no picture to show."""
        task = self._prepared.get(job.id)
        prepared = await task if task is not None else await self._prepare(job)
        if prepared is None or prepared.photo is None:
            self._prepared.pop(job.id, None)
            return None
        return prepared

    async def _prepare(self, job: Job) -> Prepared | None:
        try:
            chosen = await self._service.media.result(job, render.PHOTO_MAX_BYTES, render.PHOTO_MAX_SIDE)
            full = await self._full_size(job, chosen.single) if chosen.single else None
        except UserError as exc:
            log.warning("result of job %s could not be fetched: %s", job.id, exc.message)
            return None
        except Exception:  # a background task: log the trace, the edit falls back to the caption
            log.exception("preparing the result of job %s failed", job.id)
            return None
        return Prepared(chosen.main, full, tuple(chosen.videos))

    async def _full_size(self, job: Job, data: bytes) -> tuple[bytes, str, str] | None:
        """A single image larger than Telegram keeps in a photo also goes out as a document."""
        width, height = await media.image_size(data)
        if max(width, height) <= render.PHOTO_KEPT_SIDE and len(data) <= render.PHOTO_MAX_BYTES:
            return None
        if len(data) > render.DOCUMENT_MAX_BYTES:
            data = await media.fit(data, render.DOCUMENT_MAX_BYTES)
        caption = i18n.translate(job.locale, "Full resolution · {width}×{height}", width=width, height=height)
        return data, f"{job.id}-full.{media.extension(data, 'jpg')}", caption

    async def _document(self, job: Job, chat_id: int, message_id: int, data: bytes, filename: str,
                        caption: str) -> None:
        # the topic too, not only the reply: were the job message deleted meanwhile, the reply would
        # be dropped (allow_sending_without_reply) and the file would land in the forum's General topic
        thread = placed_thread(job)
        try:
            await self.paced(chat_id, lambda: self.bot.send_document(
                chat_id, data, filename=filename, caption=caption,
                reply_parameters=reply_to(message_id), message_thread_id=thread))  # fmt: skip
        except telegram.error.TelegramError as exc:
            log.warning("could not send %s to chat %s: %s", filename, chat_id, exc)
