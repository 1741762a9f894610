"""/settings: the user's default provider, aspect ratio and speed, and Remix, on an inline keyboard."""

from __future__ import annotations

import logging

import telegram.error
from telegram import Update

from bot.domain import Owner
from bot.errors import UserError
from bot.service import JobService
from bot.telegram_frontend import keyboards, render
from bot.telegram_frontend.common import Context, answer, owner_of
from bot.telegram_frontend.outbox import Outbox
from bot.telegram_frontend.render import View
from providers.base import Action

log = logging.getLogger(__name__)
SETTINGS_AS_CHAT = ("Settings are per person: send /settings as yourself, not anonymously or as a channel. "
                    "Jobs you start anonymously use the defaults.")  # fmt: skip


class SettingsHandlers:
    def __init__(self, service: JobService, outbox: Outbox, default_provider: str) -> None:
        self._service = service
        self._outbox = outbox
        self._default_provider = default_provider

    def _imagine_providers(self) -> list[str]:
        return [name for name in self._service.providers() if self._service.can(name, Action.IMAGINE)]

    async def _view(self, owner: Owner) -> View:
        current = await self._service.settings(owner)
        text = render.settings_text(owner, current, self._default_provider)
        rows = keyboards.settings_rows(owner.user_id, current, self._imagine_providers())
        return View(text, rows, photo=False)

    async def settings(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        if message.sender_chat is not None:  # the keyboard answers only its owner, and presses never
            # come from a chat: settings sent anonymously or as a channel could never be changed
            await self._outbox.reply_text(message, SETTINGS_AS_CHAT)
            return
        view = await self._view(owner_of(user))
        try:
            await self._outbox.send_view(view, message)
        except telegram.error.TelegramError as exc:
            log.warning("could not send settings to chat %s: %s", message.chat_id, exc)

    async def button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        ref = keyboards.SettingRef.unpack(query.data or "")
        if ref is None:
            await answer(query, "This button no longer works.")
            return
        if ref.user_id != str(query.from_user.id):
            await answer(query, "These are someone else's settings; send /settings for yours.", alert=True)
            return
        owner = owner_of(query.from_user)
        options = keyboards.choices(ref.key, self._imagine_providers())
        if ref.index >= len(options):
            await answer(query, "That option is no longer available; send /settings again.", alert=True)
            return
        try:
            await self._service.set_setting(owner, ref.key, options[ref.index])
        except UserError as exc:
            await answer(query, exc.message, alert=True)
            return
        await answer(query, f"{ref.key.replace('_', ' ').capitalize()}: {options[ref.index]}")
        if query.message is not None:
            self._outbox.show_text(query.message.chat.id, query.message.message_id, await self._view(owner))
