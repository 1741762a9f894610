"""How frontends learn about job changes: a small listener protocol, fanned out by `Listeners`."""

from __future__ import annotations

import logging
from typing import Protocol

from bot.domain import Job

log = logging.getLogger(__name__)


class JobListener(Protocol):
    async def job_changed(self, job: Job) -> None:
        """Called after every stored change of a job (state, progress, preview, result, placement)."""


class Listeners:
    """Fan-out to every registered listener; one failing listener does not starve the others."""

    def __init__(self) -> None:
        self._listeners: list[JobListener] = []

    def add(self, listener: JobListener) -> None:
        self._listeners.append(listener)

    def remove(self, listener: JobListener) -> None:
        self._listeners.remove(listener)

    async def job_changed(self, job: Job) -> None:
        for listener in list(self._listeners):
            try:
                await listener.job_changed(job)
            except Exception:  # a listener bug must not stop the poller; it is logged with its trace
                log.exception("listener %s failed on job %s", type(listener).__name__, job.id)
