"""/settings: the user's default provider, aspect ratio and speed, and Remix, on an inline keyboard."""

from __future__ import annotations

import logging

import telegram.error
from telegram import CallbackQuery, Chat, Update

from bot import i18n
from bot import languages as stored_languages
from bot.access import scope_key
from bot.domain import Owner
from bot.errors import UserError, shown
from bot.i18n import N_, t
from bot.languages import Languages
from bot.service import JobService
from bot.telegram_frontend import keyboards, render
from bot.telegram_frontend.common import PLATFORM, Context, answer, owner_of
from bot.telegram_frontend.outbox import Outbox
from bot.telegram_frontend.render import View
from providers.base import Action

log = logging.getLogger(__name__)
SETTINGS_AS_CHAT = N_("Settings are per person: send /settings as yourself, not anonymously or as a channel. "
                    "Jobs you start anonymously use the defaults.")  # fmt: skip


class SettingsHandlers:
    def __init__(self, service: JobService, outbox: Outbox, default_provider: str,
                 languages: Languages | None = None) -> None:
        self._service = service
        self._languages = languages
        self._outbox = outbox
        self._default_provider = default_provider

    def _imagine_providers(self) -> list[str]:
        return [name for name in self._service.providers() if self._service.can(name, Action.IMAGINE)]

    async def _view(self, owner: Owner) -> View:
        current = await self._service.settings(owner)
        language = keyboards.language_name(current.get(stored_languages.KEY))
        text = render.settings_text(owner, current, self._default_provider, language)
        rows = keyboards.settings_rows(owner.user_id, current, self._imagine_providers())
        return View(text, rows, photo=False)

    async def settings(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_sender
        if message is None or user is None:
            return
        if message.sender_chat is not None:  # the keyboard answers only its owner, and presses never
            # come from a chat: settings sent anonymously or as a channel could never be changed
            await self._outbox.reply_text(message, t(SETTINGS_AS_CHAT))
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
            await answer(query, t("This button no longer works."))
            return
        if ref.user_id != str(query.from_user.id):
            await answer(query, t("These are someone else's settings; send /settings for yours."), alert=True)
            return
        owner = owner_of(query.from_user)
        options = keyboards.choices(ref.key, self._imagine_providers())
        if ref.index >= len(options):
            await answer(query, t("That option is no longer available; send /settings again."), alert=True)
            return
        if ref.key == keyboards.LANGUAGE_MENU:  # the list of languages, in place of the settings
            await answer(query, t("Choose the language I answer you in."))
            current = (await self._service.settings(owner)).get(stored_languages.KEY)
            rows = keyboards.language_rows(owner.user_id, current)
            self._show(query, View(t("Choose the language I answer you in."), rows, photo=False))
            return
        try:
            await self._service.set_setting(owner, ref.key, options[ref.index])
        except UserError as exc:
            await answer(query, shown(exc), alert=True)
            return
        if ref.key == stored_languages.KEY:  # answered, from now on, in the new language
            with i18n.use(await self._locale(query, owner)):
                name = keyboards.language_name(options[ref.index])
                await answer(query, t("Language: {language}", language=name))
                self._show(query, await self._view(owner))
            return
        await answer(query, _chosen(ref.key, options[ref.index]))
        self._show(query, await self._view(owner))

    async def _locale(self, query: CallbackQuery, owner: Owner) -> str:
        """The presser's language now that they chose one (or chose Auto again)."""
        if self._languages is None:
            return i18n.current()
        chat = query.message.chat if query.message else None
        group = chat is not None and chat.type != Chat.PRIVATE
        scope = scope_key(PLATFORM, str(chat.id)) if group and chat is not None else None
        return await self._languages.of(owner, scope, query.from_user.language_code)

    def _show(self, query: CallbackQuery, view: View) -> None:
        if query.message is not None:
            self._outbox.show_text(query.message.chat.id, query.message.message_id, view)


def _chosen(key: str, option: str) -> str:
    """The toast of a settings press: which setting is now what."""
    if key == "provider":
        return t("Provider: {option}", option=option)
    if key == "aspect_ratio":
        return t("Aspect ratio: {option}", option=option)
    if key == "speed":
        return t("Speed: {option}", option=option)
    return t("Remix: {option}", option=option)
