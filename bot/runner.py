"""The job runner: where jobs meet their provider. It sends a claimed job (a command's
`submit`, a button's `act`), reconciles a submit whose answer never came, moves a refused command to
the next provider of its fallback chain, asks for the status of running jobs and applies what the
provider says to the job, and ends jobs past their deadline (stopping their task where it can).

Split out of the poller so that "where is a provider called, and what happens to its answer?" has
one answer by name: the poller (bot/poller.py) decides *when* and *which* jobs (claims, due polls,
wake-ups, batching) and hands each claimed job or batch here; this module decides *what is sent* and
*what the answer means*. Provider callbacks are the other way in: bot/webhooks.py applies them. One
call is made elsewhere: a member's cancel of a running job, sent by JobService.cancel while the member
waits for the outcome. A /shorten on a provider that has none is answered here without a call, by
the bot's own analysis (bot/shorten.py), so it takes the same path as every other job.

Everything it learns goes to the store first, then to the listener. A `ProviderError` names the
provider, the HTTP status and the provider's words for the operators' log (`describe()`); the root
log handler redacts every secret of the config from each line (bot/logs.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from bot import faults, i18n, shorten
from bot.config import PollingConfig
from bot.domain import Job, JobState
from bot.errors import UserError
from bot.events import JobListener
from bot.i18n import N_, t
from bot.moderation import refusal_message
from bot.pool import ProviderPool
from bot.store import JobStore
from bot.zoom import with_zoom
from providers.base import COMMANDS, Action, ActRequest, SubmitAttempt, TaskSnapshot
from providers.errors import (
    ProviderAuthError,
    ProviderBusy,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderQuotaExceeded,
    ProviderUnavailable,
)

log = logging.getLogger(__name__)

Clock = Callable[[], float]

_LEASE_MARGIN = 1.0  # seconds a submit is given up before its claim would lapse
# the texts stored on a failed job: written in its language (`with i18n.use(job.locale)`) where stored
_AUTH_MESSAGE = N_(
    "The image provider rejected the bot's credentials. An admin needs to check the API key.")
_UNKNOWN_MESSAGE = N_("The image provider did not confirm whether it started this job, and it can't be "
                      "asked; to avoid charging twice it was not sent again. It was refunded: please "
                      "try again.")


class Callbacks(Protocol):
    """The webhook receiver as the runner sees it (see bot.webhooks.WebhookReceiver)."""

    async def url_for(self, job: Job) -> str | None:
        """The callback URL to give the provider for `job`, or None when it gets none."""

    def poll_interval(self, provider: str) -> float | None:
        """The slower fallback cadence for jobs that expect a callback from `provider`, else None."""


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        pool: ProviderPool,
        listener: JobListener,
        config: PollingConfig,
        *,
        clock: Clock = time.time,
        jitter: Callable[[], float] = random.random,
        callbacks: Callbacks | None = None,
    ) -> None:
        self._store = store
        self._pool = pool
        self._listener = listener
        self._config = config
        self._clock = clock
        self._jitter = jitter
        self._callbacks = callbacks

    # -- what the poller asks ---------------------------------------------------------------------

    def lease(self, provider: str) -> float:
        """How long a claim holds: past the request's own timeout, so a live submit always ends first."""
        timeout = self._pool.config(provider).request_timeout
        return timeout + max(2.0, timeout / 2)

    def interval(self, provider: str, hooked: bool = True) -> float:
        """Seconds between polls: the provider's own, or the slower fallback when a callback is due
        (`hooked`: the job was given a callback URL; a job another process submitted may have none)."""
        interval = self._pool.config(provider).poll_interval
        fallback = self._callbacks.poll_interval(provider) if self._callbacks and hooked else None
        return max(interval, fallback) if fallback is not None else interval

    async def _changed(self, job: Job) -> None:
        if job.terminal:
            await faults.point("final_stored")
        await self._listener.job_changed(job)

    # -- ending jobs ------------------------------------------------------------------------------

    async def finish(self, job: Job, state: JobState, error: str | None) -> Job | None:
        """Move a job to a terminal state with a user-safe message, store it and tell the listeners.
        None when it had already ended some other way (a webhook, a cancel, another process)."""
        ended = job.model_copy(
            update={"state": state, "error": error, "next_poll_at": None, "claimed_until": None,
                    "updated_at": self._clock()}
        )  # fmt: skip
        stored = await self._store.save(ended, job)
        if stored is not None:
            await self._changed(stored)
        return stored

    async def time_out(self, job: Job) -> None:
        """End a job past its deadline, shown to the user, and stop its task (nobody will look again)."""
        minutes = max(1, round((job.deadline - job.created_at) / 60))
        with i18n.use(job.locale):
            note = t("The job took longer than {minutes} min and was stopped.", minutes=minutes)
        ended = await self.finish(job, JobState.TIMED_OUT, note)
        if ended is not None and job.provider_task_id:
            await self._cancel_quietly(job.provider, job.provider_task_id, job.id)

    async def _cancel_quietly(self, name: str, task_id: str, job_id: str) -> None:
        """Stop a provider task nobody will look at again (where the provider can)."""
        if not self._pool.get(name).capabilities.cancel:
            return
        try:
            await self._pool.get(name).cancel(task_id)
        except ProviderError as exc:
            log.info("could not cancel task %s of job %s: %s", task_id, job_id, exc.describe())

    # -- submitting claimed jobs ------------------------------------------------------------------

    async def submit(self, job: Job, now: float) -> None:
        """Send a claimed job. Its attempt key goes with it, so an answer that never comes back can be
        looked up (`reconcile`) instead of sent twice."""
        await faults.point("submit_claimed")
        with i18n.use(job.locale):  # what it is told (a refusal, an input gone) is in its language
            await self._submit(job, now)

    async def _submit(self, job: Job, now: float) -> None:
        try:
            async with asyncio.timeout(self.lease(job.provider) - _LEASE_MARGIN):
                snapshot = await self._send(job)  # given up before its claim lapses: never sent twice
        except (ProviderOutcomeUnknown, TimeoutError) as exc:
            why = exc.describe() if isinstance(exc, ProviderOutcomeUnknown) else "no answer within its lease"
            log.warning("job %s: no answer to its submit on %s (%s); it will be reconciled",
                        job.id, job.provider, why)  # fmt: skip
            await self._store.extend_claim(job, self._clock() + self._config.reconcile_delay)
            return
        except ProviderError as exc:
            await self._submit_failed(job, exc, now)
            return
        except UserError as exc:  # its input can't be sent (no longer stored)
            await self.finish(job, JobState.FAILED, exc.message)
            return
        await faults.point("submit_sent")
        self._pool.last_success[job.provider] = now
        await self._submitted(job, snapshot, now)

    async def _send(self, job: Job) -> TaskSnapshot:
        provider = self._pool.get(job.provider)
        update = {"callback_url": await self._callbacks.url_for(job) if self._callbacks else None,
                  "client_ref": job.submit_key}  # fmt: skip
        if job.kind is Action.SHORTEN and not provider.capabilities.can(Action.SHORTEN):
            return shorten.snapshot(job.request.prompt)  # the bot's own analysis: no provider call
        if job.kind in COMMANDS:  # its stored inputs are loaded here, for the request that goes out
            request = await self._store.inputs.load(job.request)
            return await provider.submit(request.model_copy(update=update))
        act = self._act_request(job).model_copy(update=update)
        return await provider.act((await self._parent(job)).as_parent(), act)

    async def _parent(self, job: Job) -> Job:
        parent = await self._store.get(job.parent_id or "")
        assert parent is not None, "a child job always has its parent stored"
        return parent

    def _act_request(self, job: Job) -> ActRequest:
        edited = job.request.prompt if job.request.remixed else None  # Remix: the person's prompt
        takes_prompt = job.kind in (Action.VIDEO_EXTEND, Action.CUSTOM_ZOOM)  # their prompt is always sent
        given = job.request.prompt if takes_prompt else edited
        return ActRequest(
            action=job.kind,
            index=job.index,
            prompt=given.full() if given else None,
            remix=edited,
            zoom=job.request.zoom,
            mask=job.request.mask,
            speed=job.request.speed,
            callback_url=job.request.callback_url,
        )

    async def _next_polls(self, name: str, jobs: list[Job], now: float) -> dict[str, float]:
        hooked = await self._store.with_callbacks([job.id for job in jobs]) if self._callbacks else set()
        return {job.id: now + self.interval(name, job.id in hooked) for job in jobs}

    async def _submitted(self, job: Job, snapshot: TaskSnapshot, now: float) -> None:
        next_poll = (await self._next_polls(job.provider, [job], now))[job.id]
        stored = await self._store.record_submit(job, snapshot.task_id, next_poll, self._clock())
        if stored is None:  # the claim was lost: cancelled or timed out while the submit was in flight
            current = await self._store.get(job.id)
            if current is None or current.provider_task_id != snapshot.task_id:
                log.info("job %s ended during its submit; stopping task %s", job.id, snapshot.task_id)
                await self._cancel_quietly(job.provider, snapshot.task_id, job.id)
            return
        merged = await self._store.apply_snapshot(job.provider, snapshot, now, known=stored)
        await self._changed(merged or stored)

    async def _submit_failed(self, job: Job, exc: ProviderError, now: float) -> None:
        """A submit the provider answered with a refusal: nothing was created there, so the job may
        wait (busy), move to a fallback, be tried again later (unavailable) or fail."""
        name = job.provider
        if isinstance(exc, ProviderBusy):
            wait = exc.retry_after if exc.retry_after is not None else self._backoff(0)
            self._pool.pause(name, now + wait)
            waited = self._clock() - job.created_at  # not `now`: the tick may have begun before the job
            if waited >= self._pool.config(name).busy_wait and await self._fail_over(job, now):
                return
            await self._store.release_submit(job, None, now)  # dispatch retries once the provider un-pauses
            return
        if isinstance(exc, ProviderQuotaExceeded | ProviderUnavailable) and await self._fail_over(job, now):
            return
        attempts_left = job.submit_attempts + 1 < self._config.max_submit_attempts
        if isinstance(exc, ProviderUnavailable) and attempts_left:
            retry = job.model_copy(update={"submit_attempts": job.submit_attempts + 1})
            await self._store.release_submit(retry, now + self._backoff(job.submit_attempts), now)
            return
        with i18n.use(job.locale):
            message = t(_AUTH_MESSAGE) if isinstance(exc, ProviderAuthError) else refusal_message(exc)
        log.warning("job %s failed at submit on %s: %s", job.id, name, exc.describe())
        await self.finish(job, JobState.FAILED, message)

    async def _fail_over(self, job: Job, now: float) -> bool:
        """Hand a new command to the next untried provider in its chain. Actions never move."""
        if job.kind not in COMMANDS:
            return False
        tried = [*job.tried_providers, job.provider]
        chain = self._pool.fallback_chain(tried[0])
        for name in chain:  # a provider that can't serve the job's flags is no fallback: they'd be lost
            caps = self._pool.get(name).capabilities
            if name not in tried and caps.can(job.kind) and not caps.flags.refused(job.request.prompt):
                moved = job.model_copy(update={"provider": name, "tried_providers": tried,
                                               "submit_attempts": 0})  # fmt: skip
                stored = await self._store.release_submit(moved, None, now)
                log.info("job %s moved from %s to %s", job.id, job.provider, name)
                if stored is not None:
                    await self._changed(stored)
                return True
        return False

    # -- submits whose outcome is unknown ---------------------------------------------------------

    async def reconcile(self, job: Job, now: float) -> bool:
        """Ask the provider whether the unanswered attempt of a claimed job created a task; adopt it,
        ask again later, or give up. True when the job went back to the queue to be sent again."""
        if job.provider not in self._pool.names:
            return False  # the poller's retire_orphans ends it
        provider = self._pool.get(job.provider)
        if provider.capabilities.reconcile:
            try:
                found = await provider.reconcile(await self._attempt(job))
            except ProviderError as exc:  # can't tell now: ask again later (the deadline still holds)
                log.info("job %s: reconcile on %s failed (%s); retrying", job.id, job.provider,
                         exc.describe())  # fmt: skip
                await self._ask_later(job, now)
                return False
            if found is not None and (owner := await self._store.by_task(job.provider, found.task_id)):
                log.info("job %s: the task found, %s, is job %s's; asking again later", job.id, found.task_id,
                         owner.id)  # a match by prompt and time can't tell two of our own jobs apart
                await self._ask_later(job, now)
                return False
            if found is not None:
                log.info("job %s: its unanswered submit created task %s", job.id, found.task_id)
                await self._submitted(job, found, now)
                return False
            log.info("job %s: its unanswered submit created nothing; sending it again", job.id)
        elif not self._pool.config(job.provider).resubmit_unknown:
            log.warning("job %s: the outcome of its submit to %s is unknown and %s can't be asked; "
                        "failed and refunded", job.id, job.provider, job.provider)  # fmt: skip
            with i18n.use(job.locale):
                note = t(_UNKNOWN_MESSAGE)
            await self.finish(job, JobState.FAILED, note)
            return False
        return await self._store.release_submit(job, now, now) is not None

    async def _ask_later(self, job: Job, now: float) -> None:
        """Reconcile again after a backoff that grows with each lookup that could not tell."""
        await self._store.extend_claim(job, now + self._backoff(job.poll_failures), job.poll_failures + 1)

    async def _attempt(self, job: Job) -> SubmitAttempt:
        parent = await self._parent(job) if job.kind not in COMMANDS else None
        return SubmitAttempt(
            client_ref=job.submit_key or "", kind=job.kind,
            prompt=self._sent_prompt(job),
            parent_task_id=parent.provider_task_id if parent else None, index=job.index,
            started_at=job.submit_started or job.created_at, remix=job.request.remixed,
        )  # fmt: skip

    @staticmethod
    def _sent_prompt(job: Job) -> str | None:
        """The prompt text the request carried: a Custom Zoom's form text has its --zoom (so a form
        found waiting after a lost answer is confirmed with it)."""
        prompt = job.request.prompt.full() if job.request.prompt else None
        return with_zoom(prompt or "", job.request.zoom) if job.request.zoom is not None else prompt

    def _backoff(self, failures: int) -> float:
        delay = min(self._config.backoff_max, self._config.backoff_base * 2.0**failures)
        return delay * (0.5 + self._jitter() / 2)

    # -- polling running jobs ---------------------------------------------------------------------

    async def poll(self, name: str, jobs: list[Job], now: float) -> None:
        """Ask provider `name` for the status of `jobs` (claimed polls, one batch: one request) and
        apply each answer to its job; a job the provider does not know (yet) is asked about later."""
        ids = [job.provider_task_id for job in jobs if job.provider_task_id]
        try:
            await faults.point("poll_claimed")
            snapshots = await self._pool.get(name).fetch(ids)
        except ProviderError as exc:
            await self._poll_failed(jobs, exc, now)
            return
        self._pool.last_success[name] = now
        seen = set()
        next_polls = await self._next_polls(name, jobs, now)
        by_task = {job.provider_task_id: job for job in jobs}
        for snapshot in snapshots:
            seen.add(snapshot.task_id)
            known = by_task.get(snapshot.task_id)
            next_poll = next_polls[known.id] if known else now + self.interval(name)
            changed = await self._store.apply_snapshot(name, snapshot, now, next_poll, known=known)
            if changed is not None:
                await self._changed(changed)
        for job in jobs:
            if job.provider_task_id not in seen:
                await self._store.save(job.model_copy(update={"next_poll_at": next_polls[job.id]}), job)

    async def _poll_failed(self, jobs: list[Job], exc: ProviderError, now: float) -> None:
        log.info("fetch of %d job(s) failed: %s", len(jobs), exc.describe())
        if isinstance(exc, ProviderBusy) and exc.retry_after is not None:
            self._pool.pause(jobs[0].provider, now + exc.retry_after)  # submits wait too
        for job in jobs:
            wait = self._backoff(job.poll_failures)
            if isinstance(exc, ProviderBusy) and exc.retry_after is not None:
                wait = max(wait, exc.retry_after)
            update = {"poll_failures": job.poll_failures + 1, "next_poll_at": now + wait}
            await self._store.save(job.model_copy(update=update), job)
