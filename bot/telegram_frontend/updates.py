"""Telegram updates through the inbox, so a command is never lost between Telegram and the store.

`getUpdates` confirms every update below its `offset`. Each batch is committed to the store's inbox
before the next call (whose offset confirms it) and only then processed; after a restart, what was
committed but not processed is processed first. Processing is idempotent by update id: a job records
the update that created it (`telegram:<update_id>`), so a command processed twice is one job.
Used instead of PTB's `Updater`, which confirms updates before the bot has stored them.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import logging
import time
from collections.abc import Callable

import telegram.error
from telegram import Update
from telegram.ext import Application

from bot import faults
from bot.store import JobStore
from bot.telegram_frontend.outbox import retry_seconds

log = logging.getLogger(__name__)

SOURCE = "telegram"
ALLOWED_UPDATES = ["message", "callback_query"]
_PARALLEL = 256  # updates processed at once (PTB's own default for concurrent updates)
_KEEP_DONE = 86400.0  # processed updates are kept a day (the newest always: it holds the offset)


def origin(update: Update) -> str:
    """The key a job created by `update` is stored under: the same update never makes two jobs."""
    return f"{SOURCE}:{update.update_id}"


class UpdateInbox:
    def __init__(self, application: Application, store: JobStore, poll_timeout: float,  # type: ignore[type-arg]
                 clock: Callable[[], float] = time.time) -> None:
        self._application = application
        self._store = store
        self._timeout = dtm.timedelta(seconds=poll_timeout)
        self._clock = clock
        self._slots = asyncio.Semaphore(_PARALLEL)
        self.polling = False  # for /healthz: the last getUpdates answered

    async def run(self) -> None:
        """Process what the last run left in the inbox, then poll Telegram until cancelled."""
        await self._store.inbox_prune(self._clock() - _KEEP_DONE)
        async with asyncio.TaskGroup() as group:
            left = await self._store.inbox_pending(SOURCE)
            if left:
                log.info("telegram: processing %d update(s) received before the restart", len(left))
            for key, _, payload in left:
                update = Update.de_json(json.loads(payload), self._application.bot)
                await self._slots.acquire()
                group.create_task(self._process(key, update), name=f"update:{key}")
            await self._poll(group)

    async def _poll(self, group: asyncio.TaskGroup) -> None:
        last = await self._store.inbox_last(SOURCE)
        offset = last + 1 if last is not None else None
        failures = 0
        while True:
            try:
                updates = await self._application.bot.get_updates(
                    offset=offset, timeout=self._timeout, allowed_updates=ALLOWED_UPDATES)
            except telegram.error.InvalidToken:
                raise
            except telegram.error.RetryAfter as exc:
                await asyncio.sleep(retry_seconds(exc))
                continue
            except telegram.error.TelegramError as exc:  # network, Conflict, server errors: wait, retry
                self.polling = False
                failures += 1
                wait = min(30.0, 0.5 * 2 ** min(failures, 6))
                log.warning("telegram: getUpdates failed (%s); retrying in %.0f s", exc.message, wait)
                await asyncio.sleep(wait)
                continue
            self.polling, failures = True, 0
            if not updates:
                continue
            await self._commit(updates)
            offset = updates[-1].update_id + 1  # the next call confirms this batch: it is stored
            for update in updates:
                await self._slots.acquire()
                key = str(update.update_id)
                group.create_task(self._process(key, update), name=f"update:{key}")

    async def _commit(self, updates: tuple[Update, ...]) -> None:
        entries = [(str(u.update_id), u.update_id, json.dumps(u.to_dict())) for u in updates]
        await self._store.inbox_add(SOURCE, entries, self._clock())
        await faults.point("inbox_committed")

    async def _process(self, key: str, update: Update) -> None:
        try:
            await self._application.process_update(update)  # handler errors go to its error handler
        finally:
            self._slots.release()
        await self._store.inbox_done(SOURCE, key, self._clock())
