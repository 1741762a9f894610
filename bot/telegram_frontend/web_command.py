"""/web: a one-time sign-in link to the bot's web pages, always in the person's private chat with
the bot (a link in a group could be used by anyone who reads it first); `/web logout` signs them out
of every browser."""

from __future__ import annotations

import logging

import telegram.error
from telegram import (
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
    WebAppInfo,
)

from bot.i18n import N_, t
from bot.telegram_frontend.admins import ChatAdmins
from bot.telegram_frontend.common import Context, arguments, owner_of
from bot.telegram_frontend.outbox import Outbox
from bot.web.auth import Grant, WebAuth
from bot.web.telegram_app import PATH as APP_PATH

log = logging.getLogger(__name__)

OFF = N_("The web pages are not turned on for this bot.")
AS_YOURSELF = N_("Send /web as yourself (not anonymously or as a channel): the link signs in a person.")
# TRANSLATORS: a button label (keep it short)
OPEN_APP = N_("Open the web pages")
SENT = N_("I sent you a sign-in link in our private chat.")
START_FIRST = N_("I can't write to you privately yet: open a private chat with me (@{bot}), press Start, "
               "then send /web here again.")


def link_text(link: str, where: str | None, minutes: int) -> str:
    """`where`: None in a private chat, else the group's name (its pages come with the link)."""
    if where is None:
        head = t("Your sign-in link to the web pages:")
    else:
        head = t("Your sign-in link to the web pages (with the pages of {group}):", group=where)
    tail = t("It works once, within {minutes} min. Don't share it: it signs in as you. "
             "/web logout signs you out of every browser.", minutes=minutes)
    return f"{head}\n{link}\n\n{tail}"


class WebCommand:
    def __init__(self, auth: WebAuth | None, outbox: Outbox, admins: ChatAdmins, link_expiry: float) -> None:
        self._auth = auth
        self._outbox = outbox
        self._admins = admins
        self._minutes = max(1, round(link_expiry / 60))

    async def web(self, update: Update, context: Context) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None or user is None:
            return
        if self._auth is None:
            await self._outbox.reply_text(message, t(OFF))
            return
        if message.sender_chat is not None:
            await self._outbox.reply_text(message, t(AS_YOURSELF))
            return
        owner = owner_of(user)
        if arguments(message).lower() in ("logout", "log out", "signout", "sign out"):
            ended = await self._auth.revoke_user(owner)
            said = t("Signed out of {count} browser session(s).", count=ended)
            await self._outbox.reply_text(message, said)
            return
        caller = await self._admins.caller(owner, message.chat, message)
        link = self._auth.link(Grant.of(caller))
        private = message.chat.type == Chat.PRIVATE
        where = None if private else message.chat.title or t("this group")
        text = link_text(link, where, self._minutes)
        if private:
            await self._send(message, message.chat_id, text, ReplyParameters(message.message_id))
            return
        if await self._send(message, user.id, text):
            await self._outbox.reply_text(message, t(SENT))
        else:
            await self._outbox.reply_text(message, t(START_FIRST, bot=message.get_bot().username))

    def _app_button(self) -> InlineKeyboardMarkup | None:
        """A Web App button opening the pages inside Telegram (signed in by its initData). Telegram
        takes Web App URLs over HTTPS only, and the button in private chats only (where links go)."""
        if self._auth is None or not self._auth.telegram_app or not self._auth.secure_cookie:
            return None
        url = self._auth.public_url + APP_PATH
        return InlineKeyboardMarkup([[InlineKeyboardButton(t(OPEN_APP), web_app=WebAppInfo(url))]])

    async def _send(self, message: Message, chat_id: int, text: str,
                    reply: ReplyParameters | None = None) -> bool:
        """Send the link to `chat_id` (a private chat), without a link preview; False when Telegram
        refuses (the person never started the bot, or blocked it)."""
        markup = self._app_button()
        try:
            await self._outbox.paced(chat_id, lambda: message.get_bot().send_message(
                chat_id, text, link_preview_options=LinkPreviewOptions(is_disabled=True),
                reply_parameters=reply, reply_markup=markup))  # fmt: skip
        except telegram.error.TelegramError as exc:
            log.info("web: no sign-in link for chat %s: %s", chat_id, exc)
            return False
        return True
