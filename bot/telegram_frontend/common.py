"""What every handler module needs: who sent an update, what follows the command, how to answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import telegram.error
from telegram import CallbackQuery, Chat, Message, User
from telegram.ext import ContextTypes

from bot.domain import Job, Owner
from bot.errors import ExitCode, StartupError
from bot.telegram_frontend import render

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE
PLATFORM = "telegram"
T = TypeVar("T")


async def until_answered(call: Callable[[], Awaitable[T]], failing: str) -> T:
    """`call()` until Telegram answers it: each failure is one log line (`failing`, e.g. "can't reach
    the Bot API") and a growing wait (up to a minute). A rejected token is not waited out: it is a
    StartupError (its message never holds the token; python-telegram-bot's own does)."""
    failures = 0
    while True:
        try:
            return await call()
        except telegram.error.InvalidToken:
            raise token_refused() from None
        except telegram.error.TelegramError as exc:
            failures += 1
            wait = min(60.0, 2.0**failures)
            log.error("telegram: %s (%s); retrying in %.0f s", failing, exc.message, wait)
            await asyncio.sleep(wait)


def token_refused() -> StartupError:
    message = "Telegram refused the bot token (telegram.token): copy the current one from @BotFather."
    return StartupError(message, ExitCode.TOKEN_REFUSED)


def owner_of(sender: User | Chat) -> Owner:
    """Who a command (and the job it starts) belongs to: the person, or the chat a message was sent on
    behalf of (`update.effective_sender`). Such a message's `from` is a placeholder account shared by
    every anonymous admin of every group (GroupAnonymousBot) or every channel (Channel_Bot); owning
    jobs as that account would give them all one quota, one ban and each other's buttons."""
    name = sender.full_name if isinstance(sender, User) else sender.effective_name
    return Owner(platform=PLATFORM, user_id=str(sender.id), name=name)


def is_anonymous_admin(message: Message) -> bool:
    """Sent as the group itself: only the group's administrators can post like that."""
    return message.sender_chat is not None and message.sender_chat.id == message.chat.id


def replied_to(message: Message) -> Message | None:
    """The message this one replies to. In a forum topic Telegram makes every message that replies to
    nothing else a reply to the topic's "topic created" service message: that one doesn't count."""
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return None
    return replied


def arguments(message: Message) -> str:
    """What follows the command word in the text or caption."""
    parts = (message.text or message.caption or "").split(None, 1)
    return parts[1].strip() if len(parts) > 1 else ""


def thread_of(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


def placed_thread(job: Job | None) -> int | None:
    """The forum topic a job's message is in, from the store's record of it."""
    placement = job.placement if job else None
    return int(placement.thread_id) if placement and placement.thread_id else None


async def answer(query: CallbackQuery, text: str, *, alert: bool = False) -> None:
    """Answer a button press with a toast (or an alert); a query too old to answer is only logged."""
    try:
        await query.answer(render.cut(text, 200), show_alert=alert or None)
    except telegram.error.TelegramError as exc:  # too old to answer: nothing the user would see
        log.info("callback query not answered: %s", exc)
