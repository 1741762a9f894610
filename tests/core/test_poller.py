"""Poller start-up: jobs whose provider left the config end clearly instead of wedging every tick."""

from __future__ import annotations

from pathlib import Path

from bot.domain import JobState
from tests.core.conftest import OWNER, build, local


async def test_jobs_of_a_provider_removed_from_the_config_fail_at_start(tmp_path: Path,
                                                                        database: Path | str) -> None:
    async with build(tmp_path, [local("local"), local("gone", duration=60.0)], database=database) as h:
        kept = await h.imagine("a kept job")
        await h.service.imagine(OWNER, "an orphan to be", provider="gone")
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
