"""Command and button handlers: each turns one Telegram update into a service call and a reply.

Failures the user can act on (`UserError`, `ProviderError`) are answered with their message; anything
else reaches `on_error`, which logs the trace and tells the user something went wrong, never how.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Container

import telegram.error
from telegram import Bot, CallbackQuery, Chat, Message, Update, User
from telegram.ext import ApplicationHandlerStop

from bot import faults, presentation
from bot.config import TelegramConfig
from bot.domain import ActionRef, Job, Owner, Placement
from bot.errors import BadImage, UserError
from bot.service import JobService
from bot.telegram_frontend import render
from bot.telegram_frontend.admins import ChatAdmins
from bot.telegram_frontend.albums import Albums
from bot.telegram_frontend.common import (
    PLATFORM,
    Context,
    answer,
    arguments,
    owner_of,
    placed_thread,
    replied_to,
    thread_of,
)
from bot.telegram_frontend.outbox import Outbox
from bot.telegram_frontend.render import USAGE
from bot.telegram_frontend.updates import origin
from providers.base import BlendDimensions, ImageInput
from providers.errors import ProviderError

log = logging.getLogger(__name__)
Create = Callable[[Owner, Placement, bool], Awaitable[Job]]  # (owner, where, chat admin?) -> the job
Sender = User | Chat  # a person, or the chat a message was sent on behalf of (see `owner_of`)
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB to bots
_CAPTION_COMMAND = re.compile(r"^/(?P<name>[A-Za-z0-9_]+)(?:@(?P<target>\w+))?(?:\s|$)")
_DIMENSIONS: dict[str, BlendDimensions] = {
    "portrait": "portrait", "square": "square", "landscape": "landscape"
}  # fmt: skip


def caption_command(message: Message, bot_username: str) -> str | None:
    """The command a photo's caption starts with, if it is addressed to this bot (or to no bot)."""
    match = _CAPTION_COMMAND.match(message.caption or "")
    if match is None or (match["target"] and match["target"].lower() != bot_username.lower()):
        return None
    return match["name"].lower()


def image_file_id(message: Message | None) -> str | None:
    """The largest photo size, or an image sent as a file; None if the message has no image."""
    if message is None:
        return None
    if message.photo:
        return message.photo[-1].file_id
    document = message.document
    if document and (document.mime_type or "").startswith("image/"):
        size = document.file_size or 0
        if size > DOWNLOAD_LIMIT:
            raise BadImage(f"The file is {size / 1e6:.1f} MB; Telegram lets bots download "
                           "files up to 20 MB. Send it as a photo instead.")  # fmt: skip
        return document.file_id
    if document:
        raise BadImage("That file is not an image (PNG, JPEG, GIF or WEBP).")
    return None


async def download(bot: Bot, file_id: str, what: str = "The photo") -> bytes:
    try:
        file = await bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())
    except telegram.error.TelegramError as exc:
        raise BadImage(f"{what} could not be downloaded from Telegram ({exc.message}).") from exc


class Handlers:
    def __init__(self, service: JobService, outbox: Outbox, albums: Albums, config: TelegramConfig,
                 admins: ChatAdmins) -> None:
        self._service = service
        self._admins = admins
        self._outbox = outbox
        self._albums = albums
        self._config = config
        self.errors = 0  # unexpected handler failures (logged with their trace)
        self._showing: set[str] = set()  # ids of jobs whose first reply is being sent here

    # -- starting jobs ----------------------------------------------------------------------------

    async def _start(self, message: Message, user: Sender, create: Create) -> None:
        """Create a job (showing the user's mistake if it can't be), reply at once, record the reply.
        The service is told the chat (for its limits and access lists) and whether the user administers
        it. The same update processed again after a restart finds its job: replied to at most once."""
        thread = thread_of(message)
        placement = Placement(platform=PLATFORM, chat_id=str(message.chat_id),
                              thread_id=str(thread) if thread else None, reply_to=str(message.message_id))
        owner = owner_of(user)
        try:
            admin = await self._admins.verdict(owner, message.chat, message)
            job = await create(owner, placement, admin)
        except (UserError, ProviderError) as exc:
            await self._outbox.reply_text(message, render.error_text(exc.message))
            return
        if job.placement is not None and job.placement.message_id is None:
            await self._show(job)

    async def send_unreplied(self, chats: Container[str]) -> None:
        """The first replies, in `chats`, of jobs whose reply was never sent (a restart, a dead worker)."""
        jobs = [job for job in await self._service.unreplied(PLATFORM)
                if job.placement is not None and job.placement.chat_id in chats]  # fmt: skip
        if jobs:
            log.info("telegram: sending the first reply of %d job(s) from before the restart", len(jobs))
        for job in jobs:
            await self._show(job)

    async def _show(self, job: Job) -> None:
        """The job's first message, replying to what asked for it; then where it is, in the store. Once:
        a job being shown here (by its handler, or after a takeover) is not shown again meanwhile."""
        if job.id in self._showing:
            return
        self._showing.add(job.id)
        try:
            with contextlib.suppress(UserError):  # a job pruned meanwhile has nothing to show
                current = await self._service.get(job.id)  # shown since it was read (by a takeover)?
                if current.placement is not None and current.placement.message_id is None:
                    await self._first_reply(current)
        finally:
            self._showing.discard(job.id)

    async def _first_reply(self, job: Job) -> None:
        assert job.placement is not None, "a job shown in a chat has a placement"
        where = job.placement
        chat_id, thread = int(where.chat_id), int(where.thread_id) if where.thread_id else None
        view = render.first_view(job, await self._service.queue_position(job))
        try:
            reply_to = int(where.reply_to) if where.reply_to else None
            sent = await self._outbox.send_job_message(view, chat_id, reply_to, thread)
        except (telegram.error.BadRequest, telegram.error.Forbidden) as exc:  # the chat is gone for us
            log.warning("job %s: its message can't be sent to chat %s: %s", job.id, chat_id, exc)
            await self._service.unplace(job)
            return
        except telegram.error.TelegramError as exc:  # the job carries on; the next start tries again
            log.warning("job %s: its message could not be sent to chat %s: %s", job.id, chat_id, exc)
            return
        await faults.point("reply_sent")
        await self._service.place(job, where.model_copy(update={"message_id": str(sent.message_id)}))

    async def _fail(self, message: Message, exc: UserError | ProviderError) -> None:
        await self._outbox.reply_text(message, render.error_text(exc.message))

    # -- commands ---------------------------------------------------------------------------------

    async def imagine(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        prompt = arguments(message)
        if not prompt:
            await self._outbox.reply_text(message, USAGE["imagine"])
            return
        await self._imagine(update, message, user, prompt)

    async def private_text(self, update: Update, context: Context) -> None:
        """In a private chat a plain message is an imagine."""
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None or not (message.text or "").strip():
            return
        await self._imagine(update, message, user, message.text or "")

    async def _imagine(self, update: Update, message: Message, user: Sender, prompt: str) -> None:
        await self._start(message, user, lambda o, p, a: self._service.imagine(
            o, prompt, placement=p, scope=p.chat_id, admin=a, origin=origin(update)))  # fmt: skip

    async def describe(self, update: Update, context: Context) -> None:
        """/describe replying to a photo, or a photo (or image file) with /describe as its caption."""
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        if message.caption is not None and caption_command(message, context.bot.username) != "describe":
            return
        try:
            file_id = image_file_id(message) or image_file_id(replied_to(message))
            if file_id is None:
                await self._outbox.reply_text(message, USAGE["describe"])
                return
            image = ImageInput(data=await download(context.bot, file_id), filename="photo.jpg")
        except UserError as exc:
            await self._fail(message, exc)
            return
        await self._start(message, user, lambda o, p, a: self._service.describe(
            o, image, placement=p, scope=p.chat_id, admin=a, origin=origin(update)))  # fmt: skip

    async def blend(self, update: Update, context: Context) -> None:
        """/blend replying to an album, or an album with /blend as its caption."""
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        if message.caption is not None and caption_command(message, context.bot.username) != "blend":
            return
        try:
            dimensions = self._dimensions(arguments(message))
            file_ids = await self._album_of(message)
            images = [ImageInput(data=await download(context.bot, file_id, f"Photo {n}"), filename=f"{n}.jpg")
                      for n, file_id in enumerate(file_ids, start=1)]  # fmt: skip
        except UserError as exc:
            await self._fail(message, exc)
            return
        await self._start(message, user, lambda o, p, a: self._service.blend(
            o, images, dimensions=dimensions, placement=p, scope=p.chat_id, admin=a,
            origin=origin(update)))  # fmt: skip

    @staticmethod
    def _dimensions(text: str) -> BlendDimensions | None:
        word = text.strip().lower().lstrip("-")
        if word.startswith("dimensions"):
            word = word.removeprefix("dimensions").strip(" =")
        if not word:
            return None
        if word not in _DIMENSIONS:
            raise UserError(f"Blend shapes are portrait, square and landscape; not '{text.strip()}'.")
        return _DIMENSIONS[word]

    async def _album_of(self, message: Message) -> list[str]:
        source = message if message.photo else replied_to(message)
        if source is None or not source.photo:
            raise UserError(USAGE["blend"])
        if not source.media_group_id:
            raise UserError("Blend needs 2–5 photos sent together as one album; that is a single photo.")
        await self._albums.add(source)
        if source is message:
            file_ids = await self._albums.settled(message.chat_id, source.media_group_id)
        else:
            file_ids = await self._albums.photos(message.chat_id, source.media_group_id)
        if len(file_ids) < 2:
            hint = (" In groups I only see an album's photos when they are addressed to me: send the album "
                    "as a reply to one of my messages, or ask an admin to turn off privacy mode."
                    if message.chat.type != "private" else "")  # fmt: skip
            raise UserError(f"I can see only {len(file_ids)} photo of that album; blend needs 2–5.{hint}")
        if len(file_ids) > 5:
            raise UserError(f"Blend takes 2 to 5 photos; that album has {len(file_ids)}.")
        return file_ids

    async def remember_photo(self, update: Update, context: Context) -> None:
        """Every album photo that reaches the bot is remembered for /blend (handler group -1)."""
        if update.effective_message is not None:
            await self._albums.add(update.effective_message)

    async def jobs(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        recent = await self._service.recent(owner_of(user), 10)
        await self._outbox.reply_text(message, render.jobs_text(recent))

    async def cancel(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        owner = owner_of(user)
        try:
            job = await self._target(message)
            if job is None:
                await self._outbox.reply_text(message, USAGE["cancel"])
                return
            admin = await self._admins.verdict(owner, message.chat, message)
            if self._config.owner_only_buttons and not (admin or _owns(owner, job)):
                raise UserError(f"Only {job.owner.name or 'the person who asked'} can cancel job {job.id}.")
            cancelled = await self._service.cancel(owner, job.id, anyone=not self._config.owner_only_buttons,
                                                   admin=admin)  # fmt: skip
        except (UserError, ProviderError) as exc:
            await self._fail(message, exc)
            return
        await self._outbox.reply_text(message, f"Cancelled job {cancelled.id}.")

    async def _target(self, message: Message) -> Job | None:
        """The job named in the arguments, or the one shown in the message replied to."""
        if arguments(message):
            return await self._service.get(arguments(message).split()[0])
        replied = replied_to(message)
        if replied is None:
            return None
        job = await self._service.by_message(PLATFORM, str(message.chat_id), str(replied.message_id))
        if job is None:
            raise UserError("That message isn't one of my jobs. Reply /cancel to a job's message.")
        return job

    async def help(self, update: Update, context: Context) -> None:
        if update.effective_message is not None:
            await self._outbox.reply_text(update.effective_message, render.help_text(context.bot.username))

    # -- job buttons ------------------------------------------------------------------------------

    async def button(self, update: Update, context: Context) -> None:
        """U1–U4, V1–V4, 🔄, the follow-ups and describe's 1–4: a child job in a new reply."""
        query = update.callback_query
        if query is None:
            return
        ref = ActionRef.unpack(query.data or "")
        if ref is None:
            await answer(query, "This button no longer works.")
            return
        owner = owner_of(query.from_user)
        try:
            parent = await self._service.get(ref.job_id)
        except UserError as exc:
            await answer(query, exc.message, alert=True)
            return
        chat = query.message.chat if query.message else None
        allowed = not self._config.owner_only_buttons or await self._may_press(owner, parent, chat)
        if not allowed:
            await answer(query, render.not_yours(parent.owner), alert=True)
            return
        chat_id, message_id, thread = _origin(query, parent)
        placement = Placement(platform=PLATFORM, chat_id=str(chat_id),
                              thread_id=str(thread) if thread else None,
                              reply_to=str(message_id) if message_id else None)  # fmt: skip
        try:
            admin = await self._admins.verdict(owner, chat)
            job, created = await self._service.act(
                owner, ref.job_id, ref.action, ref.index, placement=placement, anyone=allowed,
                scope=str(chat_id), admin=admin)  # fmt: skip
        except (UserError, ProviderError) as exc:  # told to the presser alone, not to the whole chat
            await answer(query, exc.message, alert=True)
            return
        toast = presentation.toast(ref.action, ref.index)  # said once the service took the press
        await answer(query, toast if created else f"{toast} already requested: job {job.id}.")
        if created:
            await self._show(job)

    async def _may_press(self, owner: Owner, parent: Job, chat: Chat | None) -> bool:
        """With owner-only buttons: the person who asked, or, for a job an anonymous admin asked for
        (it belongs to the group itself), any administrator of the group. A press always comes from
        the presser's own account, so without this nobody could use an anonymous admin's buttons."""
        if _owns(owner, parent):
            return True
        asked_by_group = chat is not None and parent.owner.user_id == str(chat.id)
        return asked_by_group and await self._admins.verdict(owner, chat)

    async def unknown_button(self, update: Update, context: Context) -> None:
        if update.callback_query is not None:
            await answer(update.callback_query, "This button no longer works.")

    # -- gate and errors --------------------------------------------------------------------------

    async def gate(self, update: Update, context: Context) -> None:
        """Handler group -2: updates from chats outside `allowed_chat_ids` go no further, nor do a
        linked channel's posts that Telegram copies into its discussion group: one that starts with
        /imagine was written for the channel's readers, not to the bot."""
        if (message := update.effective_message) is not None and message.is_automatic_forward:
            raise ApplicationHandlerStop
        allowed = self._config.allowed_chat_ids
        chat = update.effective_chat
        if not allowed or chat is None or chat.id in allowed:
            return
        if update.callback_query is not None:
            await answer(update.callback_query, "This bot isn't enabled in this chat.", alert=True)
        elif (message := update.effective_message) is not None and (message.text or "").startswith("/"):
            await self._outbox.reply_text(message, f"This bot isn't enabled in this chat. An admin can add "
                                                   f"its id ({chat.id}) to telegram.allowed_chat_ids.")
        raise ApplicationHandlerStop

    async def on_error(self, update: object, context: Context) -> None:
        """An unexpected failure: the trace goes to the log, a plain apology to the chat."""
        self.errors += 1
        log.error("telegram handler failed", exc_info=context.error)
        if not isinstance(update, Update):
            return
        if update.callback_query is not None:
            await answer(update.callback_query, "Something went wrong on my side; please try again.")
        elif update.effective_message is not None:
            await self._outbox.reply_text(update.effective_message,
                                          "⚠️ Something went wrong on my side; it has been logged. "
                                          "Please try again.")  # fmt: skip


def _owns(owner: Owner, job: Job) -> bool:
    return (job.owner.platform, job.owner.user_id) == (owner.platform, owner.user_id)


def _origin(query: CallbackQuery, parent: Job) -> tuple[int, int | None, int | None]:
    """Chat, message and topic thread of the pressed button (from the parent's record if needed)."""
    message = query.message
    if isinstance(message, Message):
        return message.chat.id, message.message_id, thread_of(message)
    # the parent's record knows the topic: without it the reply would land in the forum's General topic
    thread = placed_thread(parent)
    if message is not None:  # an inaccessible (very old) message: chat and id are still known
        return message.chat.id, message.message_id, thread
    assert parent.placement is not None, "a pressed button's job was shown somewhere"
    return int(parent.placement.chat_id), None, thread
