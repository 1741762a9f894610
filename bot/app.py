"""The composition root: builds every part from the config, in one place, and owns their lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from bot.admin import AdminService
from bot.config import AppConfig
from bot.domain import CLI_PLATFORM
from bot.events import Listeners, SharedEvents
from bot.media import Downloader, MediaCache
from bot.metrics import Health, Metrics, MetricsServer, add_routes
from bot.poller import Poller
from bot.pool import ProviderPool
from bot.service import JobService
from bot.store import JobStore
from bot.webhooks import WebhookReceiver
from bot.workers import Worker

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
    admin: AdminService
    metrics: Metrics  # frontends: metrics.watch_delivery(platform, delivery); health.frontends.append(self)
    health: Health
    worker: Worker  # this process among the workers sharing the database (who shows which chat)
    events: SharedEvents  # job changes to and from the other workers
    webhooks: WebhookReceiver | None = None  # set when the config has a `webhooks` section
    metrics_server: MetricsServer | None = None  # `metrics.listen` without webhooks


@contextlib.asynccontextmanager
async def build_app(
    config: AppConfig,
    *,
    clock: Callable[[], float] = time.time,
    serve_http: bool = True,
    create_database: bool = True,
) -> AsyncIterator[App]:
    """Everything but the background tasks: open on enter, close on exit (in reverse order).
    `serve_http=False` (one-shot CLI commands) leaves out the webhook and metrics server: the port
    belongs to `run`, and jobs of a process without it are polled, not called back. Such a process
    also works only on CLI jobs: a chat job changes in the process that edits its message.
    `create_database=False` (read-only commands): a SQLite database not there yet is a DatabaseError."""
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as http:
        store = await JobStore.open(config.database, create=create_database)
        pool = ProviderPool.from_config(config, http)
        try:
            await pool.start()
            listeners = Listeners()
            worker = Worker(store, config.workers, clock=clock)
            events = SharedEvents(store, listeners, clock)
            hooks = None
            if config.webhooks is not None and serve_http:
                hooks = WebhookReceiver(config.webhooks, store, pool, listeners, clock=clock)
            poller = Poller(store, pool, listeners, config.polling, clock=clock, callbacks=hooks,
                            only_platform=None if serve_http else CLI_PLATFORM)
            cache = MediaCache(Downloader(http, config.media), config.media_cache_dir)
            service = JobService(config, store, pool, cache, listeners, poller.wake, clock)
            admin, metrics, health = await _operations(store, pool, listeners, service, clock)
            metrics.worker = health.worker = worker.describe
            if hooks is not None:
                metrics.webhook_counts = lambda: hooks.deliveries
            served = None
            if hooks is None and config.metrics.listen and serve_http:
                served = MetricsServer(config.metrics.listen, metrics, health, store, pool.last_success)
            yield App(config, http, store, pool, listeners, poller, service, admin, metrics, health, worker,
                      events, hooks, served)
        finally:
            await pool.aclose()
            await store.close()


async def _operations(
    store: JobStore, pool: ProviderPool, listeners: Listeners, service: JobService, clock: Callable[[], float]
) -> tuple[AdminService, Metrics, Health]:
    """Refunds, admin pauses, metrics and health: wired once, state restored from the store."""
    listeners.add(service.quotas)  # failed and timed-out jobs are refunded however they end
    await service.quotas.ledger.reconcile(clock())  # ... including any that ended during a crash
    admin = AdminService(pool, service.access, service.quotas, store.ops, clock)
    held = await admin.restore()
    if held:
        log.info("providers paused by an admin: %s", ", ".join(held))
    metrics = Metrics()
    metrics.instrument(pool.get(name) for name in pool.names)
    metrics.pauses = pool.pauses
    return admin, metrics, Health(store, pool.last_success, pool.names, clock)


@contextlib.asynccontextmanager
async def running(app: App) -> AsyncIterator[None]:
    """Run the poller (and the webhook server, when configured) in a TaskGroup for the block."""
    async with asyncio.TaskGroup() as group:
        await app.worker.join()
        tasks = [group.create_task(app.poller.run(), name="poller"),
                 group.create_task(app.worker.run(), name="worker"),
                 group.create_task(app.events.run(), name="events")]
        if app.webhooks is not None:
            web_app = app.webhooks.build_application()
            add_routes(web_app, app.metrics, app.health, app.store, app.pool.last_success)
            tasks.append(group.create_task(app.webhooks.run(web_app), name="webhooks"))
            await app.webhooks.serving.wait()  # callback URLs handed out from here on are reachable
        elif app.metrics_server is not None:
            tasks.append(group.create_task(app.metrics_server.run(), name="metrics"))
            await app.metrics_server.serving.wait()
        tasks.append(group.create_task(app.admin.watch(), name="admin-pauses"))
        if app.config.retention.keep_days is not None:
            tasks.append(group.create_task(_prune(app), name="retention"))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()


async def _prune(app: App) -> None:
    """Forget finished jobs (and what only they used) past `retention.keep_days`, now and then."""
    keep_days = app.config.retention.keep_days
    assert keep_days is not None
    while True:
        try:
            pruned = await app.store.prune(time.time() - keep_days * 86400)
            if pruned.jobs or pruned.inputs:
                log.info("retention: %s older than %g days", pruned.line(), keep_days)
        except Exception:  # the bot carries on; the next round tries again
            log.exception("retention: pruning failed")
        await asyncio.sleep(app.config.retention.every_hours * 3600)
