"""Telegram updates through the inbox, so a command is never lost between Telegram and the store.

Updates arrive by long polling (`telegram.mode: polling`, one process: Telegram allows one consumer of
`getUpdates`) or by webhook (`webhook`: Telegram posts each update to `/updates/telegram` on the
webhook server, any worker may take it). Either way an update is committed to the store's inbox
(with its chat) before Telegram is told it arrived (the next `getUpdates` offset; the webhook's 200),
and only then processed; after a restart, what was committed but not processed is processed first.
Processing is idempotent by update id: a job records the update that created it (`telegram:<id>`),
so a command processed twice is one job.

With several workers, an update is processed by the worker that shows its chat (bot/workers.py): one
that arrives at another worker stays in the inbox and that worker tells the others ("inbox" event);
the chat's worker takes it from there, or whoever takes the chat over if that worker died.
Used instead of PTB's `Updater`, which confirms updates before the bot has stored them.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence

import telegram.error
from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot import faults
from bot.config import TelegramConfig
from bot.events import SharedEvents
from bot.store import InboxEntry, JobStore
from bot.telegram_frontend.common import token_refused, until_answered
from bot.telegram_frontend.outbox import retry_seconds
from bot.webhooks import WebhookReceiver
from bot.workers import Worker

log = logging.getLogger(__name__)

SOURCE = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]
POLL_LEASE = "telegram:getUpdates"  # the one worker that long-polls
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_PARALLEL = 256  # updates processed at once (PTB's own default for concurrent updates)
_KEEP_DONE = 86400.0  # processed updates are kept a day (the newest always: it holds the offset)


def origin(update: Update) -> str:
    """The key a job created by `update` is stored under: the same update never makes two jobs."""
    return f"{SOURCE}:{update.update_id}"


def webhook_secret(token: str) -> str:
    """setWebhook's `secret_token`, derived from the bot token: every worker knows it, no extra setting
    (Telegram allows 1-256 of A-Z a-z 0-9 _ -)."""
    return hashlib.sha256(b"imagine-bot telegram webhook\0" + token.encode()).hexdigest()


class UpdateInbox:
    def __init__(self, application: Application, store: JobStore, config: TelegramConfig,  # type: ignore[type-arg]
                 worker: Worker, events: SharedEvents, clock: Callable[[], float] = time.time) -> None:
        self._application = application
        self._store = store
        self._config = config
        self._worker = worker
        self._events = events
        self._timeout = dtm.timedelta(seconds=config.poll_timeout)
        self._clock = clock
        self._slots = asyncio.Semaphore(_PARALLEL)
        self._handling: set[str] = set()  # update ids being processed here
        self._group: asyncio.TaskGroup | None = None
        self.receiving = False  # for /healthz: the last getUpdates answered, or the webhook is set

    async def run(self, hooks: WebhookReceiver | None) -> None:
        """Process what is pending for this worker's chats, then receive updates until cancelled."""
        await self._store.inbox_prune(self._clock() - _KEEP_DONE)
        self._events.subscribe("inbox", self._heard)
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                left = await self.drain()
                if left:
                    log.info("telegram: processing %d update(s) received before the restart", left)
                if self._config.mode == "webhook":
                    assert hooks is not None, "webhook mode needs the webhook server (checked in the config)"
                    await self._serve_webhook(hooks)
                else:
                    await self._poll()
            finally:
                self._group = None

    async def drain(self) -> int:
        """Start processing every committed update of a chat this worker shows; how many it started."""
        if self._group is None:
            return 0
        started = 0
        for entry in await self._store.inbox_pending(SOURCE):
            if entry.key in self._handling:
                continue
            if entry.chat is not None and not await self._worker.owns_chat(SOURCE, entry.chat):
                continue
            update = Update.de_json(json.loads(entry.payload), self._application.bot)
            await self._start(entry.key, update)
            started += 1
        return started

    async def _heard(self, source: str) -> None:
        if source == SOURCE:
            await self.drain()

    # -- receiving --------------------------------------------------------------------------------

    async def _poll(self) -> None:
        await self._wait_for_the_poll_lease()
        last = await self._store.inbox_last(SOURCE)
        offset = last + 1 if last is not None else None
        failures = 0
        while True:
            try:
                updates = await self._application.bot.get_updates(
                    offset=offset, timeout=self._timeout, allowed_updates=ALLOWED_UPDATES)
            except telegram.error.InvalidToken:  # revoked while running
                raise token_refused() from None
            except telegram.error.RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))
                continue
            except telegram.error.TelegramError as exc:  # network, Conflict, server errors: wait, retry
                self.receiving = False
                failures += 1
                wait = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.warning("telegram: getUpdates failed (%s); retrying in %.0f s", exc.message, wait)
                await asyncio.sleep(wait)
                continue
            self.receiving, failures = True, 0
            if not updates:
                continue
            await self._received(updates)
            offset = updates[-1].update_id + 1  # the next call confirms this batch: it is stored

    async def _wait_for_the_poll_lease(self) -> None:
        """Telegram allows one `getUpdates` consumer: of several workers, only the lease holder polls."""
        warned = False
        while not await self._worker.take(POLL_LEASE):
            if not warned:
                holder = await self._store.workers.holder(POLL_LEASE, self._clock())
                log.error("telegram: worker %s already long-polls getUpdates and Telegram allows only one; "
                          "this worker does not poll (it still shows its chats). Use telegram.mode: webhook "
                          "to share updates among workers.", holder)  # fmt: skip
                warned = True
            self.receiving = True  # nothing to receive here: healthy as a worker that shows chats
            await asyncio.sleep(self._worker.heartbeat)
        if warned:
            log.warning("telegram: the polling worker is gone; worker %s polls from now on", self._worker.id)

    async def _serve_webhook(self, hooks: WebhookReceiver) -> None:
        url = hooks.mount(SOURCE, self._webhook)
        try:
            await self._set_webhook(url)
            await asyncio.Event().wait()
        finally:
            hooks.unmount(SOURCE)

    async def _set_webhook(self, url: str) -> None:
        secret = webhook_secret(self._config.token.get_secret_value())
        await until_answered(lambda: self._application.bot.set_webhook(
            url, secret_token=secret, allowed_updates=ALLOWED_UPDATES), "setWebhook failed")
        self.receiving = True
        log.info("telegram: updates by webhook at %s", url)

    async def _webhook(self, request: web.Request) -> web.Response:
        """One update from Telegram: 403 without the secret token; 200 once it is committed."""
        secret = webhook_secret(self._config.token.get_secret_value())
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), secret.encode()):
            log.warning("telegram: refused an update without the right secret token (from %s)",
                        request.remote)
            return web.Response(status=403, text="wrong secret token")
        try:
            update = Update.de_json(await request.json(), self._application.bot)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400, text="not a Telegram update")
        if update is None or self._group is None:
            return web.Response(status=400 if update is None else 503)
        await self._received([update])
        return web.Response(status=200)

    # -- committing and processing ----------------------------------------------------------------

    async def _received(self, updates: Sequence[Update]) -> None:
        """Commit `updates`, then process those of this worker's chats (the database tells the worker
        showing each other chat, as it commits: see SharedEvents)."""
        entries = [InboxEntry(str(u.update_id), u.update_id, json.dumps(u.to_dict()), _chat(u))
                   for u in updates]
        await self._store.inbox_add(SOURCE, entries, self._clock())
        await faults.point("inbox_committed")
        for update, entry in zip(updates, entries, strict=True):
            if entry.chat is None or await self._worker.owns_chat(SOURCE, entry.chat):
                await self._start(entry.key, update)

    async def _start(self, key: str, update: Update) -> None:
        """Process the update in a task of its own, unless it is being processed here already (a drain
        and the path that received it may both find it)."""
        assert self._group is not None, "updates are processed while run() runs"
        if key in self._handling:
            return
        self._handling.add(key)
        self._group.create_task(self._process(key, update), name=f"update:{key}")

    async def _process(self, key: str, update: Update) -> None:
        try:
            await self._application.process_update(update)  # handler errors go to its error handler
            await self._store.inbox_done(SOURCE, key, self._clock())
        finally:
            self._slots.release()
            self._handling.discard(key)


def _chat(update: Update) -> str | None:
    chat = update.effective_chat
    return str(chat.id) if chat is not None else None
