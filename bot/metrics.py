"""Prometheus metrics and health, per app (one `CollectorRegistry` per `Metrics`, no global registry).

- Provider requests: latency histogram and errors by class, timed around each adapter's calls
  (`instrument`).
- Jobs by state and provider, and queue lengths: read from the store when `/metrics` is scraped.
- Platform edits sent, 429s (retried) and failures: read from each frontend's `Delivery.stats`.
- Webhook deliveries accepted/rejected: read from the receiver's `deliveries` counter.

`add_routes(web_app, ...)` puts `/metrics` and `/healthz` on an aiohttp application (the webhook
receiver's, or one of their own on `metrics.listen`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.store import JobStore
from bot.webhooks import start_site
from providers.base import Provider
from providers.errors import ProviderError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_KEY: web.AppKey[Metrics] = web.AppKey("metrics")


class DeliveryCounts(Protocol):
    """What `bot.delivery.DeliveryStats` offers."""

    @property
    def sent(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def coalesced(self) -> int: ...


class HasDeliveryStats(Protocol):
    """A frontend's `Delivery` (anything with `.stats`)."""

    @property
    def stats(self) -> DeliveryCounts: ...


class Connected(Protocol):
    """A frontend as /healthz sees it."""

    name: str

    @property
    def connected(self) -> bool: ...


class _ReadAtScrape(Collector):
    """Counters that live elsewhere (Delivery.stats, the receiver's deliveries, poller fetches)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        edits = CounterMetricFamily("imagine_platform_edits", "Message sends/edits by platform and outcome",
                                    labels=["platform", "outcome"])
        for platform, source in self._m.deliveries.items():
            stats = source.stats
            for outcome in ("sent", "retried", "failed", "coalesced"):
                edits.add_metric([platform, outcome], getattr(stats, outcome))
        yield edits
        limited = CounterMetricFamily("imagine_platform_rate_limited", "429 answers from the chat platform",
                                      labels=["platform"])
        for platform, source in self._m.deliveries.items():
            limited.add_metric([platform], source.stats.retried)
        yield limited
        hooks = CounterMetricFamily("imagine_webhook_deliveries", "Provider callbacks by outcome",
                                    labels=["outcome"])
        for outcome, count in (self._m.webhook_counts() or {}).items():
            hooks.add_metric([outcome], count)
        yield hooks


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Gauge("imagine_jobs", "Jobs in the store by provider and state", ["provider", "state"],
                          registry=r)
        self.queue = Gauge("imagine_queue_length", "Queued jobs waiting for a provider", ["provider"],
                           registry=r)
        self.requests = Histogram("imagine_provider_request_seconds", "Provider API calls by operation",
                                  ["provider", "operation"], registry=r,
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.errors = Counter("imagine_provider_errors", "Provider API errors by class",
                              ["provider", "operation", "error"], registry=r)
        self.up = Gauge("imagine_provider_last_success_timestamp", "When a provider last answered well",
                        ["provider"], registry=r)
        self.paused = Gauge("imagine_provider_rate_limited_until_timestamp",
                            "Until when a provider's Retry-After holds all its requests", ["provider"],
                            registry=r)
        self.worker_leases = Gauge("imagine_worker_leases", "Leases this worker holds (chats it shows)",
                                   ["worker"], registry=r)
        self.worker_info = Gauge("imagine_worker_info", "This worker: its id and the shards it runs",
                                 ["worker", "shards"], registry=r)
        self.pauses: Callable[[], Mapping[str, float]] = dict
        self.worker: Callable[[], Mapping[str, Any]] = dict  # Worker.describe
        self.deliveries: dict[str, HasDeliveryStats] = {}
        self.webhook_counts: Callable[[], Mapping[str, int] | None] = lambda: None
        r.register(_ReadAtScrape(self))

    def watch_delivery(self, platform: str, delivery: HasDeliveryStats) -> None:
        """A frontend registers its Delivery so edits and 429s are scraped from its stats."""
        self.deliveries[platform] = delivery

    def instrument(self, providers: Iterable[Provider]) -> None:
        for provider in providers:
            instrument(provider, self)

    async def refresh(self, store: JobStore, last_success: Mapping[str, float]) -> None:
        """Bring the store-derived gauges up to date (called on every scrape)."""
        counts = await store.counts()
        self.jobs.clear()
        self.queue.clear()
        for (provider, state), n in counts.items():
            self.jobs.labels(provider, state).set(n)
            if state == "queued":
                self.queue.labels(provider).set(n)
        for provider, at in last_success.items():
            self.up.labels(provider).set(at)
        for provider, until in self.pauses().items():
            self.paused.labels(provider).set(until)
        worker = self.worker()
        if worker:
            self.worker_leases.labels(worker["id"]).set(worker["leases"])
            self.worker_info.clear()
            self.worker_info.labels(worker["id"], str(worker.get("discord_shards", ""))).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)


_TIMED = ("submit", "act", "fetch", "cancel")


def _timed(metrics: Metrics, provider: str, operation: str,
           call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(call)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call(*args, **kwargs)
        except ProviderError as exc:
            exc.provider = exc.provider or provider  # the logs name it (ProviderError.describe)
            metrics.errors.labels(provider, operation, type(exc).__name__).inc()
            raise
        finally:
            metrics.requests.labels(provider, operation).observe(time.perf_counter() - started)

    return timed


def instrument(provider: Provider, metrics: Metrics) -> Provider:
    """Time every API call of `provider` and count its errors by class, in place: the pool keeps the
    adapter object itself (tests and benchmarks look at its own counters), only its calls are timed."""
    for operation in _TIMED:
        original = getattr(provider, operation)
        setattr(provider, operation, _timed(metrics, provider.config.name, operation, original))
    return provider


class Health:
    """What /healthz reports: the store answers, every frontend is connected, providers' last success."""

    def __init__(self, store: JobStore, last_success: Mapping[str, float], providers: Sequence[str],
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._last_success = last_success
        self._providers = list(providers)
        self._clock = clock
        self.frontends: list[Connected] = []
        self.worker: Callable[[], Mapping[str, Any]] = dict  # Worker.describe

    async def report(self) -> tuple[bool, dict[str, object]]:
        try:
            store_ok = await self._store.ping()
        except Exception:  # any database failure means "not healthy", reported, never raised
            store_ok = False
        frontends = {f.name: f.connected for f in self.frontends}
        now = self._clock()
        providers = {
            name: {"last_success_age": round(now - at, 1) if (at := self._last_success.get(name)) else None}
            for name in self._providers
        }
        healthy = store_ok and all(frontends.values())
        return healthy, {"ok": healthy, "store": store_ok, "frontends": frontends, "providers": providers,
                         "worker": dict(self.worker())}


def add_routes(app: web.Application, metrics: Metrics, health: Health, store: JobStore,
               last_success: Mapping[str, float]) -> None:
    """Serve `/metrics` (Prometheus text format) and `/healthz` (JSON; 503 when unhealthy) on `app`."""

    async def metrics_view(request: web.Request) -> web.Response:
        await metrics.refresh(store, last_success)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def health_view(request: web.Request) -> web.Response:
        healthy, body = await health.report()
        return web.json_response(body, status=200 if healthy else 503)

    app[METRICS_KEY] = metrics
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", health_view)


class MetricsServer:
    """`/metrics` and `/healthz` on `metrics.listen`, for setups without a webhook server."""

    def __init__(self, listen: str, metrics: Metrics, health: Health, store: JobStore,
                 last_success: Mapping[str, float]) -> None:
        self._listen = listen
        self._app = web.Application()
        add_routes(self._app, metrics, health, store, last_success)
        self.port: int | None = None
        self.serving = asyncio.Event()

    async def run(self) -> None:
        runner = web.AppRunner(self._app, access_log=None)
        await runner.setup()
        try:
            self.port = await start_site(runner, self._listen, "metrics.listen")
            self.serving.set()
            log.info("metrics on %s (port %s)", self._listen, self.port)
            await asyncio.Event().wait()
        finally:
            self.serving.clear()
            await runner.cleanup()
