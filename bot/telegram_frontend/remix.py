"""Remix on Telegram: a press that asks for the prompt, the reply that answers it, and Cancel.

Telegram has no forms. With Remix on (the presser's /settings, or the job's --remix), V1–V4, Vary, 🔄
and the pans are answered with a message that quotes the parent's prompt (a code span: tap to copy)
and asks for the edited one as a reply (ForceReply, aimed at the presser by a mention); the reply makes
the job. What that message stands for is stored (JobService.ask_prompt), so it can be answered after
a restart, and it stays open after a reply that can't be used (empty, too long, a bad flag: the person
is told why) or that comes from someone else (only the presser may answer). A message takes one reply
markup, so the Cancel button is put on by an edit right after the ForceReply went out. The same button
pressed again by the same person (or the press handled again after a restart) points to the open
request instead of asking twice.

The press and reply handlers run in handler group -1, before the job buttons and the private-chat
imagine: a press or a reply that is not Remix's falls through to them (a photo reply is seen in group 0,
after the /describe and /blend captions: group -1 also holds the album memory, and one handler per group
takes an update).
"""

from __future__ import annotations

import dataclasses
import logging

import telegram.error
from telegram import CallbackQuery, Chat, ForceReply, Message, MessageEntity, Update, User
from telegram.ext import ApplicationHandlerStop

from bot.domain import ActionRef, Job, Placement, button_label
from bot.errors import UserError, shown
from bot.i18n import N_, t
from bot.service import JobService
from bot.store.prompts import PromptRequest
from bot.telegram_frontend import keyboards, render
from bot.telegram_frontend.admins import ChatAdmins
from bot.telegram_frontend.common import (
    PLATFORM,
    Context,
    answer,
    owner_of,
    placed_thread,
    replied_to,
    thread_of,
)
from bot.telegram_frontend.outbox import Outbox, reply_to
from bot.telegram_frontend.render import View, utf16_len
from bot.telegram_frontend.updates import origin
from providers.errors import ProviderError

log = logging.getLogger(__name__)

ASK = N_("Remix: edit the prompt and send it as a reply")
_PROMPT_SHOWN = 3500  # characters of the parent's prompt quoted (the message holds 4096)
STILL_OPEN = N_("The Remix request is still open: reply to it again.")
REUSE = 15 * 60.0  # seconds a request is pointed to instead of asking again (it may have been deleted)


def request_text(user: User, label: str, job_id: str, prompt: str) -> tuple[str, list[MessageEntity]]:
    """The request: who is asked (a mention, which aims the ForceReply at them), which button, and
    the parent's prompt as a code span."""
    name = user.full_name or t("you")
    head = f"{t(ASK)}, "
    asked = t("{name} ({label} of job {job_id}):", name=name, label=label, job_id=job_id)
    text = f"{head}{asked}\n\n"
    before = head + asked[: max(0, asked.find(name))]  # where the name is (a translation may move it)
    quoted = render.cut(prompt, _PROMPT_SHOWN) or t("(no prompt)")
    entities = [
        MessageEntity(MessageEntity.TEXT_MENTION, utf16_len(before), utf16_len(name), user=user),
        MessageEntity(MessageEntity.CODE, utf16_len(text), utf16_len(quoted)),
    ]
    return text + quoted, entities


class RemixHandlers:
    def __init__(self, service: JobService, outbox: Outbox, admins: ChatAdmins) -> None:
        self._service = service
        self._outbox = outbox
        self._admins = admins

    # -- the press --------------------------------------------------------------------------------

    async def press(self, update: Update, context: Context) -> None:
        """A job button: with Remix on for this press, ask for the prompt instead of making the job."""
        query = update.callback_query
        ref = ActionRef.unpack(query.data or "") if query is not None else None
        if query is None or ref is None:
            return
        try:
            chat = query.message.chat if query.message else None
            caller = await self._admins.caller(owner_of(query.from_user), chat)
            parent = await self._service.remix_target(caller, ref.job_id, ref.action, ref.index)
        except (UserError, ProviderError) as exc:  # the button handler would refuse it the same way
            await answer(query, shown(exc), alert=True)
            raise ApplicationHandlerStop from None
        if parent is None:
            return  # a plain press: the job buttons' handler makes the job
        await self._ask(query, parent, ref)
        raise ApplicationHandlerStop

    async def _ask(self, query: CallbackQuery, parent: Job, ref: ActionRef) -> None:
        pressed = query.message if isinstance(query.message, Message) else None
        where = parent.placement
        assert query.message is not None or where is not None, "a pressed job was shown somewhere"
        chat_id = query.message.chat.id if query.message else int(where.chat_id)  # type: ignore[union-attr]
        thread = thread_of(pressed) if pressed else placed_thread(parent)
        label = button_label(ref.action, ref.index)
        asking = PromptRequest(PLATFORM, str(chat_id), "", parent.id, ref.action, ref.index,
                               str(query.from_user.id))
        if await self._service.open_prompt(asking, REUSE) is not None:  # pressed twice, or handled again
            await answer(query, t("Remix {label}: reply to the request above with the edited prompt.",
                                  label=label))
            return
        prompt = self._service.remix_prompt(parent, ref.action)
        text, entities = request_text(query.from_user, label, parent.id, prompt)
        force = ForceReply(selective=True, input_field_placeholder=t("The edited prompt"))
        bot = self._outbox.bot
        try:
            sent = await self._outbox.paced(chat_id, lambda: bot.send_message(
                chat_id, text, entities=entities, reply_markup=force, message_thread_id=thread,
                reply_parameters=reply_to(pressed.message_id) if pressed else None))  # fmt: skip
        except telegram.error.TelegramError as exc:
            log.warning("could not ask for a Remix prompt in chat %s: %s", chat_id, exc)
            await answer(query, t("I could not ask for the prompt here; please try again."), alert=True)
            return
        await self._service.ask_prompt(dataclasses.replace(asking, message_id=str(sent.message_id)))
        await answer(query, t("Remix {label}: reply with the edited prompt.", label=label))
        cancel = keyboards.markup(keyboards.remix_cancel_rows())
        try:
            await self._outbox.paced(chat_id, lambda: bot.edit_message_reply_markup(
                chat_id, sent.message_id, reply_markup=cancel))  # fmt: skip
        except telegram.error.TelegramError as exc:  # the request works without its button
            log.info("could not add Cancel to the Remix request in chat %s: %s", chat_id, exc)

    # -- the answer -------------------------------------------------------------------------------

    async def reply(self, update: Update, context: Context) -> None:
        """A reply to one of the bot's messages: if it answers an open Remix request, make the job."""
        message, sender = update.effective_message, update.effective_sender
        replied = replied_to(message) if message is not None else None
        if message is None or sender is None or replied is None or replied.from_user is None:
            return
        if replied.from_user.id != context.bot.id:
            return
        request = await self._service.prompt_request(PLATFORM, str(message.chat_id), str(replied.message_id))
        if request is None:
            return  # not a Remix request (or no longer open): whatever else a reply means
        await self._answered(update, message, sender, request)
        raise ApplicationHandlerStop

    async def _answered(self, update: Update, message: Message, sender: User | Chat,
                        request: PromptRequest) -> None:
        if not isinstance(sender, User) or str(sender.id) != request.user_id:  # a chat is nobody's press
            await self._outbox.reply_text(message, t("Only the person who pressed the button can answer this "
                                                     "Remix request."))  # fmt: skip
            return
        prompt = message.text or ""
        if not prompt.strip():
            await self._outbox.reply_text(message, render.error_text(
                t("That answer has no prompt: send the edited prompt as text.") + " " + t(STILL_OPEN)))
            return
        thread = thread_of(message)
        placement = Placement(platform=PLATFORM, chat_id=str(message.chat_id),
                              reply_to=str(message.message_id), thread_id=str(thread) if thread else None)
        try:
            caller = await self._admins.caller(owner_of(sender), message.chat, message)
            job, _ = await self._service.act(caller, request.job_id, request.action, request.index,
                                             placement=placement, prompt=prompt, origin=origin(update))
        except (UserError, ProviderError) as exc:
            await self._outbox.reply_text(message, render.error_text(f"{shown(exc)}\n{t(STILL_OPEN)}"))
            return
        await self._service.close_prompt(request)
        await self._outbox.messages.show(job)
        label = button_label(request.action, request.index)
        self._closed(request, t("Remix {label} of job {parent_id}: job {job_id}.", label=label,
                                 parent_id=request.job_id, job_id=job.id))

    # -- Cancel -----------------------------------------------------------------------------------

    async def cancel(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        message = query.message
        request = None
        if message is not None:
            where = (str(message.chat.id), str(message.message_id))
            request = await self._service.prompt_request(PLATFORM, *where)
        if request is None:
            await answer(query, t("This Remix request is already closed."))
            return
        if str(query.from_user.id) != request.user_id:
            await answer(query, t("Only the person who pressed the button can cancel this Remix request."),
                         alert=True)  # fmt: skip
            return
        await self._service.close_prompt(request)
        await answer(query, t("Remix cancelled."))
        self._closed(request, t("Remix {label} of job {parent_id}: cancelled.",
                                label=button_label(request.action, request.index), parent_id=request.job_id))

    def _closed(self, request: PromptRequest, text: str) -> None:
        """The request message says how it ended, without its Cancel button."""
        self._outbox.show_text(int(request.chat_id), int(request.message_id), View(text, (), photo=False))
