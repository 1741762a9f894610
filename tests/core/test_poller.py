"""Poller start and stop: jobs whose provider left the config end clearly instead of wedging every tick;
a poll cut short by a clean stop is due again at once."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from bot import faults
from bot.access import Caller
from bot.domain import JobState
from tests.core.conftest import OWNER, build, local


async def test_jobs_of_a_provider_removed_from_the_config_fail_at_start(tmp_path: Path,
                                                                        database: Path | str) -> None:
    async with build(tmp_path, [local("local"), local("gone", duration=60.0)], database=database) as h:
        kept = await h.imagine("a kept job")
        await h.service.imagine(Caller(OWNER), "an orphan to be", provider="gone")
        await h.poller.tick()  # submitted and running at "gone"
    async with build(tmp_path, [local("local")], database=database) as h:
        orphan = next(job for job in await h.service.recent() if job.provider == "gone")
        assert orphan.state is JobState.SUBMITTED or orphan.state is JobState.RUNNING
        await h.poller.retire_orphans()
        await h.poller.tick()
        ended = await h.service.get(orphan.id)
        assert ended.state is JobState.FAILED
        assert ended.error == "The provider 'gone' is no longer available."
        assert (await h.service.get(kept.id)).state is JobState.SUCCEEDED
        assert [job.id for job in h.listener.seen] == [orphan.id]


async def test_a_poll_cut_short_by_a_clean_stop_is_due_again_at_once(tmp_path: Path,
                                                                     database: Path | str) -> None:
    """A due poll is claimed by pushing it a lease ahead; a stop while its status request is out hands it
    back, so the next process (a restart) polls it at once instead of after the lease."""
    async with build(tmp_path, [local("local", duration=60.0)], database=database) as h:
        job = await h.service.imagine(Caller(OWNER), "a poll cut short")
        await h.poller.tick()  # submitted
        h.clock.advance(5.0)  # its poll is due
        faults.arm("poll_claimed=hang")  # the status request never answers
        try:
            ticking = asyncio.create_task(h.poller.tick())
            for _ in range(200):
                claimed = await h.service.get(job.id)
                if (claimed.next_poll_at or 0.0) > h.clock() + 5.0:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the poll was never claimed")
            ticking.cancel()  # the stop
            with contextlib.suppress(asyncio.CancelledError):
                await ticking
        finally:
            faults.arm("")
        released = await h.service.get(job.id)
        assert released.next_poll_at is not None and released.next_poll_at <= h.clock()
        assert released.state in (JobState.SUBMITTED, JobState.RUNNING)
