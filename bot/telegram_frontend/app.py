"""TelegramFrontend: the PTB Application, wired to the service, served in the bot's event loop.

PTB is started by hand (`initialize`, `start`, `updater.start_polling`), never with `run_polling`,
so it shares the loop and the TaskGroup with the poller and any other frontend.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import logging

import telegram.error
from telegram import BotCommand, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.app import App
from bot.config import TelegramConfig
from bot.domain import ActionRef
from bot.telegram_frontend.albums import Albums
from bot.telegram_frontend.handlers import Handlers
from bot.telegram_frontend.keyboards import SETTING_PATTERN
from bot.telegram_frontend.outbox import Outbox

log = logging.getLogger(__name__)

COMMANDS = (
    ("imagine", "Generate four images from a prompt"),
    ("describe", "Reply to a photo: four prompts that could have made it"),
    ("blend", "Reply to an album of 2-5 photos: blend them"),
    ("jobs", "Your recent jobs"),
    ("cancel", "Reply to a job's message: cancel it"),
    ("settings", "Your default provider, aspect ratio and speed"),
    ("help", "How to use this bot"),
)
_SHUTDOWN_FLUSH = 5.0  # seconds to finish pending edits on the way out (jobs themselves survive anyway)
_UPDATES = ["message", "callback_query"]


def build_application(config: TelegramConfig) -> Application:  # type: ignore[type-arg]
    builder = ApplicationBuilder().token(config.token.get_secret_value()).concurrent_updates(True)
    if config.base_url:
        builder = builder.base_url(config.base_url)
    if config.base_file_url:
        builder = builder.base_file_url(config.base_file_url)
    return builder.build()


def _caption(command: str) -> filters.BaseFilter:
    return filters.CaptionRegex(rf"(?i)^/{command}(@\w+)?(\s|$)")


class TelegramFrontend:
    name = "telegram"

    def __init__(self, app: App, *, retry_after_scale: float = 1.0) -> None:
        config = app.config.telegram
        assert config is not None and config.token.get_secret_value(), "telegram.token is configured"
        self._app = app
        self._config = config
        self.application = build_application(config)
        self.outbox = Outbox(self.application.bot, app.service, config, retry_after_scale=retry_after_scale)
        self.handlers = Handlers(app.service, self.outbox, Albums(config.album_wait), config,
                                 app.config.default_provider)  # fmt: skip
        self._register()

    def _register(self) -> None:
        h, add = self.handlers, self.application.add_handler
        add(TypeHandler(Update, h.gate), group=-2)
        add(MessageHandler(filters.PHOTO, h.remember_photo), group=-1)
        add(CommandHandler("imagine", h.imagine))
        add(CommandHandler("describe", h.describe))
        add(MessageHandler((filters.PHOTO | filters.Document.ALL) & _caption("describe"), h.describe))
        add(CommandHandler("blend", h.blend))
        add(MessageHandler(filters.PHOTO & _caption("blend"), h.blend))
        add(CommandHandler("jobs", h.jobs))
        add(CommandHandler("cancel", h.cancel))
        add(CommandHandler("settings", h.settings))
        add(CommandHandler(["help", "start"], h.help))
        add(MessageHandler(filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, h.private_text))
        add(CallbackQueryHandler(h.settings_button, pattern=SETTING_PATTERN))
        add(CallbackQueryHandler(h.button, pattern=f"^{ActionRef.PATTERN}$"))
        add(CallbackQueryHandler(h.unknown_button))
        self.application.add_error_handler(h.on_error)

    async def serve(self) -> None:
        """Poll Telegram and deliver job changes until cancelled; then stop PTB cleanly."""
        try:
            await self._initialize()
            async with asyncio.TaskGroup() as group:
                group.create_task(self.outbox.run(), name="telegram-delivery")
                self._app.listeners.add(self.outbox)  # before the first update can start a job
                try:
                    await self._start_polling()
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    self._app.listeners.remove(self.outbox)
                    with contextlib.suppress(TimeoutError):  # what is queued goes out, if it goes quickly
                        await asyncio.wait_for(self.outbox.delivery.flush(), _SHUTDOWN_FLUSH)
                    raise
                except BaseException:
                    self._app.listeners.remove(self.outbox)
                    raise
        finally:
            await self._stop()

    async def _initialize(self) -> None:
        try:
            await self.application.initialize()
        except telegram.error.InvalidToken:
            log.error("Telegram refused the bot token: check telegram.token (from @BotFather)")
            raise

    async def _start_polling(self) -> None:
        await self.application.start()
        updater = self.application.updater
        assert updater is not None
        timeout = dtm.timedelta(seconds=self._config.poll_timeout)
        await updater.start_polling(poll_interval=0.0, timeout=timeout, allowed_updates=_UPDATES)
        try:
            await self.application.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
        except telegram.error.TelegramError as exc:  # the menu is a convenience: serve without it
            log.warning("could not publish the command list: %s", exc)
        log.info("telegram: serving as @%s", self.application.bot.username)

    async def _stop(self) -> None:
        updater = self.application.updater
        if updater is not None and updater.running:
            await updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
