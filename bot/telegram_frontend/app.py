"""TelegramFrontend: the PTB Application, wired to the service, served in the bot's event loop.

PTB is started by hand (`initialize`, `start`, `updater.start_polling`), never with `run_polling`,
so it shares the loop and the TaskGroup with the poller and any other frontend.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import telegram.error
from telegram import BotCommand, BotCommandScopeAllChatAdministrators, Chat, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import i18n
from bot.access import scope_key
from bot.app import FrontendParts
from bot.config import TelegramConfig
from bot.domain import ActionRef
from bot.i18n import N_
from bot.telegram_frontend.admin_commands import AdminHandlers
from bot.telegram_frontend.admins import ChatAdmins
from bot.telegram_frontend.albums import Albums
from bot.telegram_frontend.common import PLATFORM, Context, owner_of, until_answered
from bot.telegram_frontend.handlers import Handlers
from bot.telegram_frontend.keyboards import REMIX_CANCEL_PATTERN, SETTING_PATTERN
from bot.telegram_frontend.outbox import Outbox
from bot.telegram_frontend.remix import RemixHandlers
from bot.telegram_frontend.settings import SettingsHandlers
from bot.telegram_frontend.updates import UpdateInbox
from bot.telegram_frontend.web_command import WebCommand

log = logging.getLogger(__name__)

COMMANDS = (
    ("imagine", N_("Generate four images from a prompt")),
    ("shorten", N_("Weigh a prompt's words and suggest shorter prompts")),
    ("describe", N_("Reply to a photo: four prompts that could have made it")),
    ("blend", N_("Reply to an album of 2-5 photos: blend them")),
    ("jobs", N_("Your recent jobs")),
    ("cancel", N_("Reply to a job's message: cancel it")),
    ("settings", N_("Your default provider, aspect ratio, speed and Remix")),
    ("info", N_("Providers, queues, and your usage and what is left")),
    ("web", N_("A sign-in link to your gallery on the web (/web logout signs out)")),
    ("help", N_("How to use this bot")),
)
#: Shown in the menu of chat administrators only (everyone else is refused /admin anyway).
ADMIN_COMMANDS = (*COMMANDS, ("admin", N_("Admin: ban, unban, bans, limits, setlimit, pause, resume, stats")))
SHUTDOWN_FLUSH = 5.0  # seconds to finish pending edits on the way out (what is left goes out on restart)


def build_application(config: TelegramConfig) -> Application:  # type: ignore[type-arg]
    """PTB without its Updater: updates come through our inbox (bot.telegram_frontend.updates)."""
    builder = ApplicationBuilder().token(config.token.get_secret_value()).updater(None)
    builder = builder.concurrent_updates(True)
    if config.base_url:
        builder = builder.base_url(config.base_url)
    if config.base_file_url:
        builder = builder.base_file_url(config.base_file_url)
    return builder.build()


Callback = Callable[[Any, Context], Coroutine[Any, Any, None]]


def _caption(command: str) -> filters.BaseFilter:
    return filters.CaptionRegex(rf"(?i)^/{command}(@\w+)?(\s|$)")


class TelegramFrontend:
    name = "telegram"

    def __init__(self, app: FrontendParts, *, retry_after_scale: float = 1.0,
                 shutdown_flush: float = SHUTDOWN_FLUSH) -> None:
        config = app.config.telegram
        assert config is not None and config.token.get_secret_value(), "telegram.token is configured"
        self._app = app
        self._config = config
        self._shutdown_flush = shutdown_flush
        self.application = build_application(config)
        bot = self.application.bot
        self.outbox = Outbox(bot, app.service, app.board, config, retry_after_scale=retry_after_scale,
                             owns=lambda chat_id: app.worker.owns_chat(PLATFORM, chat_id))
        admins = ChatAdmins(bot, app.config.admins)
        albums = Albums(app.store.albums, config.album_wait)
        self.handlers = Handlers(app.service, self.outbox, albums, config, admins)
        self.settings = SettingsHandlers(app.service, self.outbox, app.config.default_provider, app.languages)
        self.admin = AdminHandlers(app.service, app.admin, self.outbox, admins)
        self.web = WebCommand(app.web.auth if app.web else None, self.outbox, admins,
                              app.config.web.link_expiry)
        self.remix = RemixHandlers(app.service, self.outbox, admins)
        self.inbox = UpdateInbox(self.application, app.store, config, app.worker, app.events)
        self._register()
        app.metrics.watch_delivery(PLATFORM, self.outbox.delivery)
        app.health.frontends.append(self)

    @property
    def connected(self) -> bool:
        """For /healthz: PTB is running and Telegram answers our getUpdates (or the webhook is set)."""
        return self.application.running and self.inbox.receiving

    async def locale_of(self, update: object) -> str:
        """The language to answer `update` in: the person's choice, their group's, their app's; English
        when the update has no person (or is not an update at all)."""
        if not isinstance(update, Update):
            return i18n.DEFAULT
        user, sender, chat = update.effective_user, update.effective_sender, update.effective_chat
        if user is None or sender is None:
            return i18n.DEFAULT
        group = chat is not None and chat.type != Chat.PRIVATE
        scope = scope_key(PLATFORM, str(chat.id)) if group and chat is not None else None
        return await self._app.languages.of(owner_of(sender), scope, user.language_code)

    def _localized(self, callback: Callable[[Any, Context], Awaitable[None]]) -> Callback:
        """`callback` run in the language of the update it handles."""

        @functools.wraps(callback)
        async def run(update: Any, context: Context) -> None:
            # PTB builds one context per update and hands it to each handler the update reaches (the
            # gate, the photo memory, the command): the language is looked up once, by the first
            memo = context.__dict__
            if "locale" not in memo:
                memo["locale"] = await self.locale_of(update)
            with i18n.use(memo["locale"]):
                await callback(update, context)

        return run

    def _register(self) -> None:
        h, localized = self.handlers, self._localized

        def add(handler: Any, group: int = 0) -> None:
            handler.callback = localized(handler.callback)
            self.application.add_handler(handler, group=group)

        add(TypeHandler(Update, h.gate), group=-2)
        add(MessageHandler(filters.PHOTO, h.remember_photo), group=-1)
        # Remix: its presses and the replies that answer it go first (group -2 is the gate); others
        # fall through to the job buttons and commands below. Photos stay with the album memory here:
        # a photo answering a Remix request is seen in group 0, after /describe and /blend captions.
        add(CallbackQueryHandler(self.remix.press, pattern=f"^{ActionRef.PATTERN}$"), group=-1)
        add(MessageHandler(filters.REPLY & ~filters.COMMAND & ~filters.PHOTO, self.remix.reply), group=-1)
        add(CommandHandler("imagine", h.imagine))
        add(CommandHandler("shorten", h.shorten))
        add(CommandHandler("describe", h.describe))
        add(MessageHandler((filters.PHOTO | filters.Document.ALL) & _caption("describe"), h.describe))
        add(CommandHandler("blend", h.blend))
        add(MessageHandler(filters.PHOTO & _caption("blend"), h.blend))
        add(MessageHandler(filters.REPLY & filters.PHOTO, self.remix.reply))
        add(CommandHandler("jobs", h.jobs))
        add(CommandHandler("cancel", h.cancel))
        add(CommandHandler("settings", self.settings.settings))
        add(CommandHandler("info", self.admin.info))
        add(CommandHandler("admin", self.admin.admin))
        add(CommandHandler("web", self.web.web))
        add(CommandHandler(["help", "start"], h.help))
        add(MessageHandler(filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, h.private_text))
        add(CallbackQueryHandler(self.settings.button, pattern=SETTING_PATTERN))
        add(CallbackQueryHandler(h.button, pattern=f"^{ActionRef.PATTERN}$"))
        add(CallbackQueryHandler(self.remix.cancel, pattern=REMIX_CANCEL_PATTERN))
        add(CallbackQueryHandler(h.unknown_button))
        self.application.add_error_handler(localized(h.on_error))

    async def serve(self) -> None:
        """Poll Telegram and deliver job changes until cancelled; then stop PTB cleanly."""
        try:
            await self._initialize()
            async with asyncio.TaskGroup() as group:
                group.create_task(self.outbox.messages.run(), name="telegram-delivery")
                self._app.listeners.add(self.outbox.messages)  # before the first update can start a job
                if self._app.web is not None:  # jobs made on the web pages (Vary (Region)) shown here too
                    self._app.web.shows[PLATFORM] = self.outbox.messages.show
                try:
                    await self._app.worker.adopt(PLATFORM, self._adopt)
                    await self._start()
                    await self.inbox.run(self._app.webhooks)
                except asyncio.CancelledError:
                    self._app.listeners.remove(self.outbox.messages)
                    with contextlib.suppress(TimeoutError):  # what is queued goes out, if it goes quickly
                        await asyncio.wait_for(self.outbox.delivery.flush(), self._shutdown_flush)
                    raise
                except BaseException:
                    self._app.listeners.remove(self.outbox.messages)
                    raise
        finally:
            await self._stop()

    async def _adopt(self, chats: list[str]) -> None:
        """Show what is pending in `chats` (this worker's from now on): at start, what the last run left
        behind; later, the chats of a worker that died. Finals never delivered, queued jobs whose
        position may have moved, first replies never sent, and updates never processed."""
        if count := await self.outbox.messages.adopt(chats):
            log.info("telegram: showing %d job(s) left from the last run", count)
        await self.inbox.drain()

    async def _initialize(self) -> None:
        """Log in (getMe); while Telegram can't be reached, say so in one line and try again."""
        await until_answered(self.application.initialize, "can't reach the Bot API")

    async def _start(self) -> None:
        await self.application.start()
        bot = self.application.bot
        try:
            for locale in i18n.LOCALES:  # English is the default list; each other language its own
                language = None if locale == i18n.DEFAULT else locale.split("_")[0].lower()
                await bot.set_my_commands(self._commands(COMMANDS, locale), language_code=language)
                await bot.set_my_commands(self._commands(ADMIN_COMMANDS, locale), language_code=language,
                                          scope=BotCommandScopeAllChatAdministrators())  # fmt: skip
        except telegram.error.TelegramError as exc:  # the menu is a convenience: serve without it
            log.warning("could not publish the command list: %s", exc)
        log.info("telegram: serving as @%s", self.application.bot.username)

    def _commands(self, commands: tuple[tuple[str, str], ...], locale: str) -> list[BotCommand]:
        return [BotCommand(name, i18n.translate(locale, text)) for name, text in self._menu(commands)]

    def _menu(self, commands: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
        """The commands to list: /web only when the web pages are on (typed anyway, it says they're off)."""
        return [(name, text) for name, text in commands if name != "web" or self._app.web is not None]

    async def _stop(self) -> None:
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
