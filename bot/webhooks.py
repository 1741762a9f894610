"""The webhook receiver: provider callbacks -> `parse_callback` -> the store -> the listeners.

Every job that goes to a provider with webhooks gets a callback URL carrying a random per-job secret
(`<public_url>/hooks/<job id>/<secret>`, the secret kept in the store). A delivery is checked
(secret, size, signature, shape) and answered at once; applying it to the store and telling the
listeners runs afterwards in a task the receiver's TaskGroup owns. The store's `apply_snapshot` is
idempotent and never regresses a job, so duplicate and out-of-order deliveries change nothing.
Polling goes on for these jobs at the slower `webhooks.poll_interval`, so a lost callback only delays.

`build_application` returns the aiohttp `web.Application`, so other routes (health, metrics) can be
added beside `/hooks/...` before the server starts.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot import faults
from bot.config import WebhooksConfig
from bot.domain import Job
from bot.errors import ExitCode, StartupError
from bot.events import JobListener
from bot.pool import ProviderPool
from bot.store import JobStore
from providers.base import TaskSnapshot, TaskStatus
from providers.errors import CallbackSignatureError, ProviderProtocolError

log = logging.getLogger(__name__)

HOOK_ROUTE = "/hooks/{job_id}/{secret}"
UPDATES_ROUTE = "/updates/{platform}"  # a chat platform's pushed updates (Telegram's webhook mode)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RECEIVER_KEY: web.AppKey[WebhookReceiver] = web.AppKey("webhook_receiver")
_TASK_ID_WAIT = 5.0  # how long a callback may wait for its job's submit answer to be stored


_STAGE = {TaskStatus.SUBMITTED: 0, TaskStatus.RUNNING: 1}  # anything else is an end state (2)


def _rank(snapshot: TaskSnapshot) -> tuple[int, int]:
    """How far along a report is: by state, then progress (later reports of an end state win ties)."""
    return _STAGE.get(snapshot.status, 2), snapshot.progress or 0


def parse_listen(listen: str) -> tuple[str, int]:
    """``"0.0.0.0:8080"``, ``"[::]:8080"`` or ``":8080"`` as (host, port)."""
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"webhooks.listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


async def start_site(runner: web.AppRunner, listen: str, key: str) -> int:
    """Serve `runner` on `listen` (the config's `key`); the port bound. An address that can't be had
    (in use, not this machine's, a privileged port) is a StartupError: one line, nothing to retry."""
    host, port = parse_listen(listen)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        in_use = exc.errno == errno.EADDRINUSE
        reason = "the port is in use (another imagine-bot?)" if in_use else exc.strerror
        raise StartupError(f"Can't listen on {key} {host}:{port}: {reason}.", ExitCode.UNREACHABLE) from None
    return int(runner.addresses[0][1]) if runner.addresses else port


class WebhookReceiver:
    """Hands out callback URLs and turns deliveries into stored job changes."""

    def __init__(
        self,
        config: WebhooksConfig,
        store: JobStore,
        pool: ProviderPool,
        listener: JobListener,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._config = config
        self._store = store
        self._pool = pool
        self._listener = listener
        self._clock = clock
        self._sleep = sleep
        self._group: asyncio.TaskGroup | None = None
        self._latest: dict[str, TaskSnapshot] = {}  # job id -> the furthest report not yet applied
        self._appliers: dict[str, asyncio.Task[None]] = {}  # job id -> the task applying its reports
        self.public_url = config.public_url.rstrip("/")
        self.port: int | None = None  # the bound port once `run` has started serving
        self.serving = asyncio.Event()
        self.deliveries: Counter[str] = Counter()  # outcome -> count (accepted, unknown, malformed ...)
        self._platforms: dict[str, Handler] = {}

    # -- what the poller asks ---------------------------------------------------------------------

    def expects_callbacks(self, provider: str) -> bool:
        return self._pool.get(provider).capabilities.webhooks

    async def url_for(self, job: Job) -> str | None:
        if not self.expects_callbacks(job.provider):
            return None
        secret = await self._store.callback_secret(job.id, secrets.token_urlsafe(24))
        return f"{self.public_url}/hooks/{job.id}/{secret}"

    def poll_interval(self, provider: str) -> float | None:
        return self._config.poll_interval if self.expects_callbacks(provider) else None

    # -- serving ----------------------------------------------------------------------------------

    def build_application(self) -> web.Application:
        app = web.Application(client_max_size=self._config.max_body_bytes)
        app[RECEIVER_KEY] = self
        app.router.add_post(HOOK_ROUTE, self.handle)
        app.router.add_post(UPDATES_ROUTE, self._updates)
        return app

    def mount(self, platform: str, handler: Handler) -> str:
        """Serve `platform`'s pushed updates with `handler`; the public URL to give the platform."""
        self._platforms[platform] = handler
        return f"{self.public_url}/updates/{platform}"

    def unmount(self, platform: str) -> None:
        self._platforms.pop(platform, None)

    async def _updates(self, request: web.Request) -> web.StreamResponse:
        handler = self._platforms.get(request.match_info["platform"])
        if handler is None:  # not served by this worker (yet): the platform sends it again later
            return web.Response(status=503, text="not serving this platform now")
        return await handler(request)

    async def run(self, app: web.Application | None = None) -> None:
        """Serve on `webhooks.listen` until cancelled; deliveries in flight are owned by a TaskGroup."""
        runner = web.AppRunner(app or self.build_application(), access_log=None)
        await runner.setup()
        try:
            async with asyncio.TaskGroup() as group:
                self.port = await start_site(runner, self._config.listen, "webhooks.listen")
                self._group = group
                self.serving.set()
                log.info("webhooks listening on %s (port %s), advertised as %s", self._config.listen,
                         self.port, self.public_url)  # fmt: skip
                await asyncio.Event().wait()
        finally:
            self._group = None
            self.serving.clear()
            await runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        job = await self._authorised(request.match_info["job_id"], request.match_info["secret"])
        if job is None or job.provider not in self._pool.names:  # (a provider since removed from the config)
            return self._refuse("unknown", 404, "unknown callback")
        if (request.content_length or 0) > self._config.max_body_bytes:
            return self._refuse("too_large", 413, "body too large")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse("too_large", 413, "body too large")
        try:
            snapshot = self._pool.get(job.provider).parse_callback(body, request.headers)
        except CallbackSignatureError:
            return self._refuse("bad_signature", 401, "bad signature")
        except ProviderProtocolError as exc:
            log.info("malformed callback for job %s: %s", job.id, exc.message)
            return self._refuse("malformed", 400, "malformed body")
        if self._group is None:
            return self._refuse("not_serving", 503, "shutting down")
        self.deliveries["accepted"] += 1
        if job.provider_task_id not in (None, snapshot.task_id):
            self.deliveries["other_task"] += 1  # a stale task of the job (failover, modal) or a stray
            log.info("callback for job %s names task %s; ignored", job.id, snapshot.task_id)
        else:
            self._enqueue(job, snapshot, self._group)
        return web.json_response({"ok": True})

    def _enqueue(self, job: Job, snapshot: TaskSnapshot, group: asyncio.TaskGroup) -> None:
        """Keep the furthest report per job and one applier task per job: under a burst of progress
        callbacks the intermediate ones collapse instead of each costing a store write."""
        waiting = self._latest.get(job.id)
        if waiting is None or _rank(snapshot) >= _rank(waiting):
            self._latest[job.id] = snapshot
        if job.id not in self._appliers:
            self._appliers[job.id] = group.create_task(self._drain(job), name=f"webhook-{job.id}")

    async def _drain(self, job: Job) -> None:
        try:
            while (snapshot := self._latest.pop(job.id, None)) is not None:
                await self._apply(job, snapshot)
        finally:  # no await between the empty check and this: a new report always finds an applier
            del self._appliers[job.id]

    @property
    def pending(self) -> int:
        """Jobs with accepted deliveries not yet applied."""
        return len(self._appliers)

    async def settled(self) -> None:
        """Wait until every accepted delivery has been applied (tests, shutdown)."""
        while self._appliers:
            await asyncio.wait(list(self._appliers.values()))

    def _refuse(self, outcome: str, status: int, text: str) -> web.Response:
        self.deliveries[outcome] += 1
        return web.json_response({"ok": False, "error": text}, status=status)

    async def _authorised(self, job_id: str, secret: str) -> Job | None:
        target = await self._store.callback_target(job_id)
        if target is None or not hmac.compare_digest(target[0].encode(), secret.encode()):
            return None
        return target[1]

    # -- applying ---------------------------------------------------------------------------------

    async def _apply(self, job: Job, snapshot: TaskSnapshot) -> None:
        """Store the report and tell the listeners. A failure here is logged: polling recovers it."""
        try:
            current = job if job.provider_task_id is not None else await self._with_task_id(job.id)
            if current is None or current.provider_task_id != snapshot.task_id:
                self.deliveries["other_task"] += 1
                log.info("callback for job %s names task %s; ignored", job.id, snapshot.task_id)
                return
            changed = await self._store.apply_snapshot(current.provider, snapshot, self._clock())
            if changed is not None:
                if changed.terminal:
                    await faults.point("final_stored")
                await self._listener.job_changed(changed)
        except Exception:  # a supervised task: it must not take the receiver down
            log.exception("applying a callback for job %s failed", job.id)

    async def _with_task_id(self, job_id: str) -> Job | None:
        """The job once its provider task id is stored: a fast provider can call back before the
        poller has stored the submit answer."""
        waited = 0.0
        while True:
            job = await self._store.get(job_id)
            if job is None or job.provider_task_id is not None or job.terminal or waited >= _TASK_ID_WAIT:
                return job
            await self._sleep(0.05)
            waited += 0.05
