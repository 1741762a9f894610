"""The poller: one supervised loop that decides when work is due and takes it. Each tick it hands the
jobs past their deadline, the submits whose answer never came, the queued jobs a provider has room for
and the due status polls (batched where the provider allows) to the job runner (bot/runner.py), which
is what calls the providers. Taking work is an atomic claim in the store, so workers sharing a
database never take the same job; a command or a button press wakes the loop at once.

Clock is injected so tests drive it without waiting on wall-clock timers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from bot.config import PollingConfig
from bot.domain import Job, JobState
from bot.pool import ProviderPool
from bot.runner import JobRunner
from bot.store import JobStore

log = logging.getLogger(__name__)


class Poller:
    def __init__(
        self,
        store: JobStore,
        pool: ProviderPool,
        runner: JobRunner,
        config: PollingConfig,
        *,
        clock: Callable[[], float] = time.time,
        only_platform: str | None = None,
    ) -> None:
        """`only_platform` limits the work to jobs asked for on that platform: a one-shot CLI beside
        `run` works on its own ("cli") jobs, so a chat job's changes happen where its message is edited."""
        self._store = store
        self._pool = pool
        self._runner = runner
        self._config = config
        self._clock = clock
        self._only = only_platform
        self._wake = asyncio.Event()
        self.fetch_requests = 0  # status calls handed to the runner, one per batch (benchmarks, tests)

    def wake(self) -> None:
        """Run a tick now (a job was queued or an action pressed)."""
        self._wake.set()

    async def run(self) -> None:
        """Tick forever; a failing tick is logged and retried after a pause, never fatal."""
        await self.retire_orphans()
        while True:
            self._wake.clear()  # before the tick: a job queued during it wakes the next one
            try:
                await self.tick()
                delay = await self._idle_delay()
            except Exception:  # supervised loop: log with the trace, pause, carry on
                log.exception("poller tick failed")
                delay = self._config.backoff_base
            if delay <= 0:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):  # timing out is the normal way to wake
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
                await asyncio.sleep(self._config.gather)  # a burst of commands: one tick takes them all

    async def _idle_delay(self) -> float:
        now = self._clock()
        next_due = await self._store.next_due()
        delay = self._config.idle_interval if next_due is None else next_due - now
        if await self._store.queued_providers():
            delay = min(delay, self._config.idle_interval / 4)
        return max(0.0, min(delay, self._config.idle_interval))

    async def tick(self) -> None:
        now = self._clock()
        for job in await self._store.expired(now, self._only):
            await self._runner.time_out(job)
        await self._reconcile_stale(now)
        await self._dispatch(now)
        await self._poll(now)

    async def retire_orphans(self) -> None:
        """Fail the unfinished jobs of providers that are no longer configured (once, at start)."""
        for job in await self._store.live_elsewhere(self._pool.names):
            log.warning("job %s: provider %s is no longer configured", job.id, job.provider)
            await self._runner.finish(job, JobState.FAILED, f"The provider '{job.provider}' is no longer "
                                                            "available.")  # fmt: skip

    # -- taking work ------------------------------------------------------------------------------

    async def _dispatch(self, now: float) -> None:
        """Claim as many queued jobs as each provider has room for, and have them sent."""
        for name in await self._store.queued_providers():
            if self._pool.paused(name, now):
                continue
            capacity = self._pool.config(name).max_concurrency
            # the lease runs from now, not from the tick's start: a long tick must not shorten it
            claimed_at, lease = self._clock(), self._runner.lease(name)
            jobs = await self._store.claim_queued(name, claimed_at, lease, capacity, self._only)
            async with asyncio.TaskGroup() as group:
                for job in jobs:
                    group.create_task(self._runner.submit(job, now))

    async def _reconcile_stale(self, now: float) -> None:
        """Submits whose lease ran out: answered by nobody (a timeout) or left by a process that died."""
        stale = await self._store.claim_stale_submits(self._clock(), self._config.backoff_max, self._only)
        async with asyncio.TaskGroup() as group:
            for job in stale:
                group.create_task(self._reconcile(job, now))

    async def _reconcile(self, job: Job, now: float) -> None:
        if await self._runner.reconcile(job, now):
            self.wake()  # back in the queue: sent again on the next tick

    # -- due polls --------------------------------------------------------------------------------

    async def _poll(self, now: float) -> None:
        groups: dict[str, list[Job]] = defaultdict(list)
        slack = self._batch_slack()
        for job in await self._store.due(now, self._only, ahead=slack):
            groups[job.provider].append(job)
        async with asyncio.TaskGroup() as group:
            for name, candidates in groups.items():
                if self._pool.rate_limited(name, now):  # its Retry-After holds for polls as for submits
                    await self._defer(candidates, self._pool.resume_at(name) or now)
                    continue
                jobs = await self._claim_polls(name, self._worth_polling(name, candidates, now), now, slack)
                size = self._pool.get(name).capabilities.batch_fetch
                for start in range(0, len(jobs), size):
                    group.create_task(self._fetch(name, jobs[start : start + size], now))

    async def _claim_polls(self, name: str, jobs: list[Job], now: float, slack: float) -> list[Job]:
        """The polls of `jobs` this process takes (another sharing the database may take some)."""
        lease_end = self._clock() + max(self._runner.lease(name), slack + 1.0)
        claimed = await self._store.claim_polls(jobs, now + slack, lease_end)
        return [job for job in jobs if job.id in claimed]

    async def _defer(self, jobs: list[Job], until: float) -> None:
        for job in jobs:
            if (job.next_poll_at or 0.0) < until:
                await self._store.save(job.model_copy(update={"next_poll_at": until}), job)

    def _batch_slack(self) -> float:
        """How far ahead to look for jobs that may ride along in a batched status call."""
        pool = self._pool
        batched = [n for n in pool.names if pool.get(n).capabilities.batch_fetch > 1]
        return max((self._runner.interval(n) / 2 for n in batched), default=0.0)

    def _worth_polling(self, name: str, jobs: list[Job], now: float) -> list[Job]:
        """The due jobs; for a batched provider also those due within half an interval, when a call is
        made anyway: jobs submitted a moment apart then share calls instead of each making its own."""
        due = [job for job in jobs if (job.next_poll_at or 0.0) <= now]
        if not due or self._pool.get(name).capabilities.batch_fetch <= 1:
            return due
        horizon = now + self._runner.interval(name) / 2
        return [job for job in jobs if (job.next_poll_at or 0.0) <= horizon]

    async def _fetch(self, name: str, jobs: list[Job], now: float) -> None:
        """Poll `jobs`, claimed; a clean stop meanwhile hands their polls back, so the next process
        polls them at once rather than after the claim's lease (an extra poll changes nothing)."""
        self.fetch_requests += 1
        try:
            await self._runner.poll(name, jobs, now)
        except asyncio.CancelledError:
            await self._store.release_polls([job.id for job in jobs], self._clock())
            raise
