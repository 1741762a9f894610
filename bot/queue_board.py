"""QueueBoard: every provider's queue, kept in memory from the change stream, so a job's place in line
is known without asking the store.

Every worker hears every job change (its own through `Listeners`, the others' through
`SharedEvents`), so a board loaded once at start and fed each change stays current. Frontends read
positions from it while rendering (no query per waiting job on every dequeue), and it says which
queue moved, so the messages of the jobs behind a job that left can be shown again.

Order: oldest first by (created_at, id). The store breaks a tie of equal creation times by insertion
order instead; two jobs created in the same microsecond may show each other's position.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable

from bot.domain import Job, JobState

_Key = tuple[float, str]


class QueueBoard:
    """Positions in each provider's queue (1 = next to be submitted), fed by `job_changed`."""

    def __init__(self) -> None:
        self._lines: dict[str, list[_Key]] = {}  # provider -> its queued jobs, oldest first
        self._where: dict[str, tuple[str, _Key]] = {}  # job id -> (provider, key) while queued
        self._moved: list[Callable[[str], None]] = []

    def on_moved(self, callback: Callable[[str], None]) -> None:
        """Call `callback(provider)` whenever a job leaves that provider's queue (those behind moved up)."""
        self._moved.append(callback)

    def load(self, queued: Iterable[Job]) -> None:
        """Start from the store's queued jobs (at start, before any change is heard)."""
        for job in queued:
            self._update(job)

    async def job_changed(self, job: Job) -> None:
        left = self._update(job)
        if left is not None:
            for callback in self._moved:
                callback(left)

    def _update(self, job: Job) -> str | None:
        """Record `job`'s state; return the provider whose queue it left (its line moved up), if any."""
        previous = self._where.get(job.id)
        if job.state is JobState.QUEUED:
            key = (job.created_at, job.id)
            if previous == (job.provider, key):
                return None
            left = self._remove(job.id)
            self._where[job.id] = (job.provider, key)
            bisect.insort(self._lines.setdefault(job.provider, []), key)
            return left
        return self._remove(job.id)

    def _remove(self, job_id: str) -> str | None:
        found = self._where.pop(job_id, None)
        if found is None:
            return None
        provider, key = found
        line = self._lines[provider]
        del line[bisect.bisect_left(line, key)]
        return provider

    def position(self, job: Job) -> int:
        """1-based place of a queued job among its provider's queued jobs; 0 when it is not queued."""
        if job.state is not JobState.QUEUED:
            return 0
        line = self._lines.get(job.provider)
        found = self._where.get(job.id)
        if line is None or found is None:
            return 1  # not heard of yet (a change on its way): it is at least in line
        return bisect.bisect_left(line, found[1]) + 1

    def waiting(self, provider: str) -> int:
        return len(self._lines.get(provider, ()))
