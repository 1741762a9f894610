"""What every handler module needs: who sent an update, what follows the command, how to answer."""

from __future__ import annotations

import logging

import telegram.error
from telegram import CallbackQuery, Message, User
from telegram.ext import ContextTypes

from bot.domain import Owner
from bot.telegram_frontend import render

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE
PLATFORM = "telegram"


def owner_of(user: User) -> Owner:
    return Owner(platform=PLATFORM, user_id=str(user.id), name=user.full_name)


def arguments(message: Message) -> str:
    """What follows the command word in the text or caption."""
    parts = (message.text or message.caption or "").split(None, 1)
    return parts[1].strip() if len(parts) > 1 else ""


def thread_of(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


async def answer(query: CallbackQuery, text: str, *, alert: bool = False) -> None:
    """Answer a button press with a toast (or an alert); a query too old to answer is only logged."""
    try:
        await query.answer(render.cut(text, 200), show_alert=alert or None)
    except telegram.error.TelegramError as exc:  # too old to answer: nothing the user would see
        log.info("callback query not answered: %s", exc)
