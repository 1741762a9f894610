"""The composition root: builds every part from the config, in one place, and owns their lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from bot.config import AppConfig
from bot.events import Listeners
from bot.media import Downloader, MediaCache
from bot.poller import Poller
from bot.pool import ProviderPool
from bot.service import JobService
from bot.store import JobStore
from bot.webhooks import WebhookReceiver

log = logging.getLogger(__name__)


@dataclass
class App:
    config: AppConfig
    http: httpx.AsyncClient
    store: JobStore
    pool: ProviderPool
    listeners: Listeners
    poller: Poller
    service: JobService
    webhooks: WebhookReceiver | None = None  # set when the config has a `webhooks` section


@contextlib.asynccontextmanager
async def build_app(config: AppConfig, *, clock: Callable[[], float] = time.time) -> AsyncIterator[App]:
    """Everything but the background tasks: open on enter, close on exit (in reverse order)."""
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as http:
        store = await JobStore.open(config.database)
        pool = ProviderPool.from_config(config, http)
        try:
            await pool.start()
            listeners = Listeners()
            hooks = None
            if config.webhooks is not None:
                hooks = WebhookReceiver(config.webhooks, store, pool, listeners, clock=clock)
            poller = Poller(store, pool, listeners, config.polling, clock=clock, callbacks=hooks)
            cache = MediaCache(Downloader(http, config.media), config.media_cache_dir)
            service = JobService(config, store, pool, cache, listeners, poller.wake, clock)
            yield App(config, http, store, pool, listeners, poller, service, hooks)
        finally:
            await pool.aclose()
            await store.close()


@contextlib.asynccontextmanager
async def running(app: App) -> AsyncIterator[None]:
    """Run the poller (and the webhook server, when configured) in a TaskGroup for the block."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(app.poller.run(), name="poller")]
        if app.webhooks is not None:
            tasks.append(group.create_task(app.webhooks.run(), name="webhooks"))
            await app.webhooks.serving.wait()  # callback URLs handed out from here on are reachable
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
