"""Command and button handlers: each turns one Telegram update into a service call and a reply.

Failures the user can act on (`UserError`, `ProviderError`) are answered with their message; anything
else reaches `on_error`, which logs the trace and tells the user something went wrong, never how.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

import telegram.error
from telegram import Bot, CallbackQuery, Chat, Message, Update, User
from telegram.ext import ApplicationHandlerStop

from bot import presentation
from bot.access import Caller
from bot.config import TelegramConfig
from bot.domain import ActionRef, Job, Placement
from bot.errors import BadImage, UserError, shown
from bot.i18n import t, tn
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
Create = Callable[[Caller, Placement], Awaitable[Job]]  # (who asks, where it is shown) -> the job
CreateSet = Callable[[Caller, Placement], Awaitable[tuple[list[Job], bool]]]  # -> the jobs, whether new
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
            raise BadImage(t("The file is {size} MB; Telegram lets bots download "
                             "files up to 20 MB. Send it as a photo instead.", size=f"{size / 1e6:.1f}"))
        return document.file_id
    if document:
        raise BadImage(t("That file is not an image (PNG, JPEG, GIF or WEBP)."))
    return None


async def download(bot: Bot, file_id: str, number: int | None = None) -> bytes:
    """The file's bytes; `number` is the photo's place in an album (for the message if it fails)."""
    try:
        file = await bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())
    except telegram.error.TelegramError as exc:
        if number is None:
            text = t("The photo could not be downloaded from Telegram ({reason}).", reason=exc.message)
        else:
            text = t("Photo {number} could not be downloaded from Telegram ({reason}).", number=number,
                     reason=exc.message)  # fmt: skip
        raise BadImage(text) from exc


class Handlers:
    def __init__(self, service: JobService, outbox: Outbox, albums: Albums, config: TelegramConfig,
                 admins: ChatAdmins) -> None:
        self._service = service
        self._admins = admins
        self._outbox = outbox
        self._albums = albums
        self._config = config
        self.errors = 0  # unexpected handler failures (logged with their trace)

    # -- starting jobs ----------------------------------------------------------------------------

    async def _start(self, message: Message, user: Sender, create: Create) -> None:
        """Create a job (showing the user's mistake if it can't be), reply at once, record the reply.
        The service is told who asks, in which group, and whether they administer it (the Caller). The
        same update processed again after a restart finds its job: replied to at most once."""

        async def one(caller: Caller, placement: Placement) -> tuple[list[Job], bool]:
            return [await create(caller, placement)], False

        await self._start_set(message, user, one)

    async def _start_set(self, message: Message, user: Sender, create: CreateSet) -> None:
        """`_start` for a command that may make several jobs (an imagine's permutations, --repeat): a
        new set is first answered with what it is, then each job gets its own message as usual. The
        same update processed again finds its set and shows what was not shown (the summary is sent
        only with a new set: at most once)."""
        thread = thread_of(message)
        placement = Placement(platform=PLATFORM, chat_id=str(message.chat_id),
                              thread_id=str(thread) if thread else None, reply_to=str(message.message_id))
        try:
            caller = await self._admins.caller(owner_of(user), message.chat, message)
            jobs, created = await create(caller, placement)
        except (UserError, ProviderError) as exc:
            await self._outbox.reply_text(message, render.error_text(shown(exc)))
            return
        if created and len(jobs) > 1:
            await self._outbox.reply_text(message, presentation.batch_summary(jobs))
        for job in jobs:
            await self._outbox.messages.show(job)  # the reply goes out in the chat's next free slot

    async def _fail(self, message: Message, exc: UserError | ProviderError) -> None:
        await self._outbox.reply_text(message, render.error_text(shown(exc)))

    # -- commands ---------------------------------------------------------------------------------

    async def imagine(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        prompt = arguments(message)
        if not prompt:
            await self._outbox.reply_text(message, t(USAGE["imagine"]))
            return
        await self._imagine(update, message, user, prompt)

    async def private_text(self, update: Update, context: Context) -> None:
        """In a private chat a plain message is an imagine."""
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None or not (message.text or "").strip():
            return
        await self._imagine(update, message, user, message.text or "")

    async def _imagine(self, update: Update, message: Message, user: Sender, prompt: str) -> None:
        await self._start_set(message, user, lambda c, p: self._service.imagine_many(
            c, prompt, placement=p, origin=origin(update)))  # fmt: skip

    async def shorten(self, update: Update, context: Context) -> None:
        """/shorten <prompt>: its words weighed and up to five shorter prompts, each a button."""
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        prompt = arguments(message)
        if not prompt:
            await self._outbox.reply_text(message, t(USAGE["shorten"]))
            return
        await self._start(message, user, lambda c, p: self._service.shorten(
            c, prompt, placement=p, origin=origin(update)))  # fmt: skip

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
                await self._outbox.reply_text(message, t(USAGE["describe"]))
                return
            image = ImageInput(data=await download(context.bot, file_id), filename="photo.jpg")
        except UserError as exc:
            await self._fail(message, exc)
            return
        await self._start(message, user, lambda c, p: self._service.describe(
            c, image, placement=p, origin=origin(update)))  # fmt: skip

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
            images = [ImageInput(data=await download(context.bot, file_id, n), filename=f"{n}.jpg")
                      for n, file_id in enumerate(file_ids, start=1)]  # fmt: skip
        except UserError as exc:
            await self._fail(message, exc)
            return
        await self._start(message, user, lambda c, p: self._service.blend(
            c, images, dimensions=dimensions, placement=p, origin=origin(update)))  # fmt: skip

    @staticmethod
    def _dimensions(text: str) -> BlendDimensions | None:
        word = text.strip().lower().lstrip("-")
        if word.startswith("dimensions"):
            word = word.removeprefix("dimensions").strip(" =")
        if not word:
            return None
        if word not in _DIMENSIONS:
            raise UserError(t("Blend shapes are portrait, square and landscape; not '{text}'.",
                              text=text.strip()))
        return _DIMENSIONS[word]

    async def _album_of(self, message: Message) -> list[str]:
        source = message if message.photo else replied_to(message)
        if source is None or not source.photo:
            raise UserError(t(USAGE["blend"]))
        if not source.media_group_id:
            raise UserError(t("Blend needs 2–5 photos sent together as one album; that is a single photo."))
        await self._albums.add(source)
        if source is message:
            file_ids = await self._albums.settled(message.chat_id, source.media_group_id)
        else:
            file_ids = await self._albums.photos(message.chat_id, source.media_group_id)
        if len(file_ids) < 2:
            seen = tn("I can see only {n} photo of that album; blend needs 2–5.",
                      "I can see only {n} photos of that album; blend needs 2–5.", len(file_ids))
            if message.chat.type != "private":
                seen += " " + t("In groups I only see an album's photos when they are addressed to me: send "
                                "the album as a reply to one of my messages, or ask an admin to turn off "
                                "privacy mode.")  # fmt: skip
            raise UserError(seen)
        if len(file_ids) > 5:
            raise UserError(t("Blend takes 2 to 5 photos; that album has {count}.", count=len(file_ids)))
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
        try:
            job = await self._target(message)
            if job is None:
                await self._outbox.reply_text(message, t(USAGE["cancel"]))
                return
            caller = await self._admins.caller(owner_of(user), message.chat, message)
            cancelled = await self._service.cancel(caller, job.id)  # who may: the access policy
        except (UserError, ProviderError) as exc:
            await self._fail(message, exc)
            return
        await self._outbox.reply_text(message, t("Cancelled job {job_id}.", job_id=cancelled.id))

    async def _target(self, message: Message) -> Job | None:
        """The job named in the arguments, or the one shown in the message replied to."""
        if arguments(message):
            return await self._service.get(arguments(message).split()[0])
        replied = replied_to(message)
        if replied is None:
            return None
        job = await self._service.by_message(PLATFORM, str(message.chat_id), str(replied.message_id))
        if job is None:
            raise UserError(t("That message isn't one of my jobs. Reply /cancel to a job's message."))
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
            await answer(query, t("This button no longer works."))
            return
        try:
            parent = await self._service.get(ref.job_id)
        except UserError as exc:
            await answer(query, shown(exc), alert=True)
            return
        chat_id, message_id, thread = _origin(query, parent)
        placement = Placement(platform=PLATFORM, chat_id=str(chat_id),
                              thread_id=str(thread) if thread else None,
                              reply_to=str(message_id) if message_id else None)  # fmt: skip
        try:  # whose buttons these are (owner-only, an anonymous admin's group job) is the policy's
            chat = query.message.chat if query.message else None
            caller = await self._admins.caller(owner_of(query.from_user), chat)
            job, created = await self._service.act(caller, ref.job_id, ref.action, ref.index,
                                                   placement=placement)  # fmt: skip
        except (UserError, ProviderError) as exc:  # told to the presser alone, not to the whole chat
            await answer(query, shown(exc), alert=True)
            return
        toast = presentation.toast(ref.action, ref.index)  # said once the service took the press
        again = t("{toast} already requested: job {job_id}.", toast=toast, job_id=job.id)
        await answer(query, toast if created else again)
        if created:
            await self._outbox.messages.show(job)

    async def unknown_button(self, update: Update, context: Context) -> None:
        if update.callback_query is not None:
            await answer(update.callback_query, t("This button no longer works."))

    # -- gate and errors --------------------------------------------------------------------------

    async def gate(self, update: Update, context: Context) -> None:
        """Handler group -2: updates from chats the access policy does not serve (`access.allow_chats`,
        `access.block_chats`) go no further, nor do a linked channel's posts that Telegram copies into
        its discussion group: one that starts with /imagine was written for the channel's readers."""
        if (message := update.effective_message) is not None and message.is_automatic_forward:
            raise ApplicationHandlerStop
        chat, sender = update.effective_chat, update.effective_sender
        if chat is None or sender is None:
            return
        scope = None if chat.type == Chat.PRIVATE else str(chat.id)
        refusal = self._service.access.chat_refusal(Caller(owner_of(sender), scope=scope), str(chat.id))
        if refusal is None:
            return
        if update.callback_query is not None:
            await answer(update.callback_query, refusal, alert=True)
        elif (message := update.effective_message) is not None and (message.text or "").startswith("/"):
            await self._outbox.reply_text(message, t("{refusal} (This chat is {chat}.)", refusal=refusal,
                                                             chat=":".join((PLATFORM, str(chat.id)))))
        raise ApplicationHandlerStop

    async def on_error(self, update: object, context: Context) -> None:
        """An unexpected failure: the trace goes to the log, a plain apology to the chat."""
        self.errors += 1
        log.error("telegram handler failed", exc_info=context.error)
        if not isinstance(update, Update):
            return
        if update.callback_query is not None:
            await answer(update.callback_query, t("Something went wrong on my side; please try again."))
        elif update.effective_message is not None:
            await self._outbox.reply_text(update.effective_message,
                                          t("⚠️ Something went wrong on my side; it has been logged. "
                                            "Please try again."))  # fmt: skip


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
