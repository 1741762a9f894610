"""The composition root: builds every part from the config, in one place, and owns their lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from bot import presentation
from bot.access import AccessPolicy
from bot.admin import AdminService
from bot.config import AppConfig
from bot.domain import CLI_PLATFORM
from bot.events import Listeners, SharedEvents
from bot.job_media import JobMedia
from bot.languages import Languages
from bot.media import Downloader, MediaCache
from bot.metrics import Health, Metrics, MetricsServer, add_routes
from bot.moderation import Moderator
from bot.poller import Poller
from bot.pool import ProviderFactory, ProviderPool, build_provider
from bot.queue_board import QueueBoard
from bot.quota import Quotas
from bot.runner import JobRunner
from bot.service import JobService
from bot.store import JobStore
from bot.web.auth import WebAuth
from bot.web.site import WebParts
from bot.web.site import mount as mount_web
from bot.web.thumbs import ThumbCache
from bot.webhooks import WebhookReceiver
from bot.workers import Worker

log = logging.getLogger(__name__)


@dataclass
class App:
    """Every part `build_app` built and wired.

    What the chat frontends use: `config` (their section, `admins`, `default_provider`), `service`
    (commands and queries, with `service.access` for chat admins and `service.media` for a job's
    files), `admin`, `store` (their inbox, albums, Discord's identify gate, queued jobs to resume),
    `worker` (which chats this process shows), `events` (other workers' inbox events), `webhooks`
    (Telegram's webhook mode mounts its route there), `listeners` (their outbox subscribes),
    `metrics.watch_delivery` and `health.frontends`. The rest (`http`, `pool`, `runner`, `poller`,
    `metrics_server`) is for the core, the CLI, tests and benchmarks."""

    config: AppConfig
    http: httpx.AsyncClient
    store: JobStore
    pool: ProviderPool
    listeners: Listeners
    runner: JobRunner  # calls the providers for jobs: submit/act, reconcile, status polls, deadline cancels
    poller: Poller  # when: claims queued jobs and due polls and hands them to the runner
    service: JobService
    admin: AdminService
    metrics: Metrics  # frontends: metrics.watch_delivery(platform, delivery); health.frontends.append(self)
    health: Health
    worker: Worker  # this process among the workers sharing the database (who shows which chat)
    events: SharedEvents  # job changes to and from the other workers
    board: QueueBoard  # every provider's queue, for the positions job messages show
    webhooks: WebhookReceiver | None = None  # set when the config has a `webhooks` section
    metrics_server: MetricsServer | None = None  # `metrics.listen` without webhooks
    web: WebParts | None = None  # `web.enabled`: the pages served on the webhooks server (bot/web/)


@dataclass(frozen=True)
class FrontendParts:
    """What a chat frontend is given: the service and the admin service it answers with, the queue
    board its messages show positions from, the listeners its job-message layer joins, the worker
    (which chats it shows), the shared events and webhook server (Telegram's inbox), the store (the
    platform inboxes, albums, Discord's identify gate), metrics and health. Not the providers, the
    runner, the poller or the HTTP client: those are the core's."""

    config: AppConfig
    service: JobService
    admin: AdminService
    board: QueueBoard
    listeners: Listeners
    worker: Worker
    events: SharedEvents
    store: JobStore
    webhooks: WebhookReceiver | None
    metrics: Metrics
    health: Health
    languages: Languages  # which language each person is answered in
    web: WebParts | None = None  # the web pages, when on: /web hands out sign-in links for them


def frontend_parts(app: App) -> FrontendParts:
    languages = Languages(app.store, app.store.ops)
    return FrontendParts(app.config, app.service, app.admin, app.board, app.listeners, app.worker, app.events,
                         app.store, app.webhooks, app.metrics, app.health, languages, app.web)


@contextlib.asynccontextmanager
async def build_app(
    config: AppConfig,
    *,
    clock: Callable[[], float] = time.time,
    jitter: Callable[[], float] = random.random,
    make_provider: ProviderFactory = build_provider,
    serve_http: bool = True,
    create_database: bool = True,
) -> AsyncIterator[App]:
    """Everything but the background tasks: open on enter, close on exit (in reverse order).
    `serve_http=False` (one-shot CLI commands) leaves out the webhook and metrics server: the port
    belongs to `run`, and jobs of a process without it are polled, not called back. Such a process
    also works only on CLI jobs: a chat job changes in the process that edits its message.
    `create_database=False` (read-only commands): a SQLite database not there yet is a DatabaseError.

    What tests and benchmarks inject, everything else being the production wiring: `clock` (every
    part reads the time from it), `jitter` (of the runner's backoff: a constant makes retries
    predictable) and `make_provider` (builds each provider entry's adapter from its config and the
    shared HTTP client, e.g. the local simulator on the test's clock)."""
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as http:
        store = await JobStore.open(config.database, create=create_database)
        pool = ProviderPool.from_config(config, http, make_provider)
        try:
            await pool.start()
            yield await _assemble(config, http, store, pool, clock, jitter, serve_http)
        finally:
            await pool.aclose()
            await store.close()


async def _assemble(
    config: AppConfig, http: httpx.AsyncClient, store: JobStore, pool: ProviderPool,
    clock: Callable[[], float], jitter: Callable[[], float], serve_http: bool,
) -> App:
    """Build and wire every part but the store and the providers, in the order they depend on."""
    listeners = Listeners()
    board = QueueBoard()
    listeners.add(board)  # first: the frontends' listeners read positions from it
    hooks = None
    if config.webhooks is not None and serve_http:
        hooks = WebhookReceiver(config.webhooks, store, pool, listeners, clock=clock)
    runner = JobRunner(store, pool, listeners, config.polling, clock=clock, jitter=jitter, callbacks=hooks)
    poller = Poller(store, pool, runner, config.polling, clock=clock,
                    only_platform=None if serve_http else CLI_PLATFORM)
    access = AccessPolicy(config.access, config.admins, store.bans, clock)
    quotas = Quotas(config.limits, store.ledger, store.ops, clock)
    job_media = JobMedia(pool, MediaCache(Downloader(http, config.media), config.media_cache_dir))
    service = JobService(config, store, pool, job_media, listeners, poller.wake, clock, access=access,
                         moderator=Moderator.from_config(config.moderation), quotas=quotas)
    admin, metrics, health = await _operations(store, pool, listeners, access, quotas, clock)
    worker = Worker(store, config.workers, clock=clock)
    metrics.worker = health.worker = worker.describe
    if hooks is not None:
        metrics.webhook_counts = lambda: hooks.deliveries
    served = None
    if hooks is None and config.metrics.listen and serve_http:
        served = MetricsServer(config.metrics.listen, metrics, health, store, pool.last_success)
    if serve_http:  # a one-shot CLI command shows no chat message: it needs no queue positions
        board.load(await service.queued_jobs())
    web = await _web(config, store, service, admin, job_media, clock, metrics) if hooks is not None else None
    return App(config, http, store, pool, listeners, runner, poller, service, admin, metrics, health, worker,
               SharedEvents(store, listeners, clock), board, hooks, served, web)


async def _web(config: AppConfig, store: JobStore, service: JobService, admin: AdminService,
               job_media: JobMedia, clock: Callable[[], float], metrics: Metrics) -> WebParts | None:
    """The web pages' parts, when `web.enabled` (their signing secret loaded, or made and stored)."""
    if not config.web_enabled or config.webhooks is None:
        presentation.set_web_url(None)  # no page-opening buttons (Vary (Region)) in the chats
        return None
    presentation.set_web_url(config.webhooks.public_url)
    token = config.telegram.token.get_secret_value() if config.telegram is not None else ""
    auth = WebAuth(config.web, config.webhooks.public_url, store.web, clock, telegram_token=token)
    await auth.load_secret()
    thumbs = ThumbCache(config.media_cache_dir / "thumbs", max_pixels=config.media.max_pixels)
    return WebParts(auth, service, admin, store.web, job_media, thumbs, Languages(store, store.ops), clock,
                    metrics)


async def _operations(
    store: JobStore, pool: ProviderPool, listeners: Listeners, access: AccessPolicy, quotas: Quotas,
    clock: Callable[[], float],
) -> tuple[AdminService, Metrics, Health]:
    """Refunds, admin pauses, metrics and health: wired once, state restored from the store."""
    listeners.add(quotas)  # failed and timed-out jobs are refunded however they end
    await quotas.ledger.reconcile(clock())  # ... including any that ended during a crash
    admin = AdminService(pool, access, quotas, store.ops, clock)
    held = await admin.restore()
    if held:
        log.info("providers paused by an admin: %s", ", ".join(held))
    metrics = Metrics()
    metrics.instrument(pool.get(name) for name in pool.names)
    metrics.pauses = pool.pauses
    return admin, metrics, Health(store, pool.last_success, pool.names, clock)


@contextlib.asynccontextmanager
async def running(app: App) -> AsyncIterator[None]:
    """Run the poller, the worker's leases, the shared events (and the webhook or metrics server,
    the admin pauses' watch and retention, when configured) in a TaskGroup for the block."""
    async with asyncio.TaskGroup() as group:
        await app.worker.join()
        tasks = [group.create_task(app.poller.run(), name="poller"),
                 group.create_task(app.worker.run(), name="worker"),
                 group.create_task(app.events.run(), name="events")]
        if app.webhooks is not None:
            web_app = app.webhooks.build_application()
            add_routes(web_app, app.metrics, app.health, app.store, app.pool.last_success)
            if app.web is not None:
                mount_web(web_app, app.web)
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
