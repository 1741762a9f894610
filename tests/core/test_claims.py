"""Several processes on one SQLite file: claims taken once, migrations run once, locks waited out.

Each JobStore here is its own connection, as each process has; the migration test uses real processes.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
from pathlib import Path

import aiosqlite

from bot.domain import JobState, Owner, Placement
from bot.store import InboxEntry, JobStore
from bot.store.migrations import SQLITE as MIGRATIONS
from providers.base import TaskResult, TaskSnapshot, TaskStatus
from tests.core.test_store import make

ROOT = Path(__file__).resolve().parents[2]


async def test_two_stores_claim_each_queued_job_once_and_share_the_capacity(database: Path | str) -> None:
    """Two processes on one database, on each engine."""
    first, second = await JobStore.open(database), await JobStore.open(database)
    try:
        for n in range(40):
            await first.insert(make(f"q{n:02d}", created_at=100.0 + n))
        takes = await asyncio.gather(*(store.claim_queued("local", 200.0, 30.0, capacity=25)
                                       for store in (first, second, first, second)))  # fmt: skip
        claimed = [job.id for take in takes for job in take]
        assert len(claimed) == len(set(claimed)) == 25  # none twice, and the capacity holds for both
        assert sorted(claimed) == [f"q{n:02d}" for n in range(25)]  # oldest first
        keys = {job.submit_key for take in takes for job in take}
        assert len(keys) == 25 and all(key and key.startswith("q") for key in keys)
        assert await first.claim_queued("local", 200.0, 30.0, capacity=25) == []
    finally:
        await first.close()
        await second.close()


async def test_only_the_attempt_holder_records_its_task(store: JobStore) -> None:
    await store.insert(make("a1"))
    [claimed] = await store.claim_queued("local", 200.0, 30.0, capacity=5)
    assert claimed.state is JobState.SUBMITTING and claimed.claimed_until == 230.0
    stale = claimed.model_copy(update={"submit_key": "a1-other"})
    assert await store.record_submit(stale, "T9", 205.0, 201.0) is None
    recorded = await store.record_submit(claimed, "T1", 205.0, 201.0)
    assert recorded is not None and (recorded.state, recorded.provider_task_id) == (JobState.SUBMITTED, "T1")
    assert await store.release_submit(claimed, None, 202.0) is None  # no longer its to hand back


async def test_a_lapsed_submit_is_taken_by_one_reconciler(database: Path | str) -> None:
    """Two processes on one database, on each engine."""
    first, second = await JobStore.open(database), await JobStore.open(database)
    try:
        await first.insert(make("a1"))
        await first.claim_queued("local", 200.0, 30.0, capacity=5)
        assert await first.claim_stale_submits(220.0, 60.0) == []  # its lease still holds
        takes = await asyncio.gather(*(s.claim_stale_submits(231.0, 60.0) for s in (first, second)))
        assert sorted(len(take) for take in takes) == [0, 1]
    finally:
        await first.close()
        await second.close()


async def test_a_job_from_the_same_event_is_stored_once(store: JobStore) -> None:
    where = Placement(platform="telegram", chat_id="-1", reply_to="5")
    _, created = await store.insert(make("a1", origin="telegram:77", placement=where))
    again, created_again = await store.insert(make("b2", origin="telegram:77", placement=where))
    assert (created, created_again, again.id) == (True, False, "a1")
    assert [j.id for j in await store.unreplied("telegram")] == ["a1"]
    await store.place("a1", where.model_copy(update={"message_id": "9"}))
    assert await store.unreplied("telegram") == []


async def test_the_inbox_keeps_events_until_done_and_remembers_the_last(store: JobStore) -> None:
    first = [InboxEntry("10", 10, '{"a": 1}', "-5"), InboxEntry("11", 11, '{"b": 2}')]
    await store.inbox_add("telegram", first, 100.0)
    await store.inbox_add("telegram", [InboxEntry("11", 11, '{"changed": true}')], 101.0)  # seen before: kept
    assert await store.inbox_pending("telegram") == first
    await store.inbox_done("telegram", "10", 102.0)
    assert [key for key, *_ in await store.inbox_pending("telegram")] == ["11"]
    await store.inbox_done("telegram", "11", 102.0)
    await store.inbox_prune(1000.0)
    assert await store.inbox_last("telegram") == 11  # the newest stays: it holds the offset


async def test_an_interaction_is_handled_again_by_the_worker_that_took_it(store: JobStore) -> None:
    await store.inbox_add("discord", [InboxEntry("1", 1, "{}")], 100.0, taken_by="w1")
    await store.inbox_add("discord", [InboxEntry("2", 2, "{}")], 100.0, taken_by="w2")
    await store.inbox_add("discord", [InboxEntry("3", 3, "{}")], 100.0)
    assert [e.key for e in await store.inbox_pending("discord", taken_by="w1")] == ["1", "3"]
    assert [e.key for e in await store.inbox_pending("discord", taken_by="w2")] == ["2", "3"]
    assert [e.key for e in await store.inbox_pending("discord")] == ["1", "2", "3"]


async def test_four_processes_migrate_a_fresh_file_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    script = ("import asyncio, sys; from bot.store import JobStore\n"
              "async def main():\n    s = await JobStore.open(sys.argv[1]); await s.close()\n"
              "asyncio.run(main())")  # fmt: skip
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(path), cwd=ROOT, stderr=asyncio.subprocess.PIPE) for _ in range(4)]
    results = [await proc.communicate() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], [err.decode() for _, err in results]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_a_write_waits_out_another_process_lock_beyond_busy_timeout(tmp_path: Path) -> None:
    """SQLite's: a file shared by processes is locked whole while one of them writes."""
    path = tmp_path / "db" / "jobs.sqlite3"
    store = await JobStore.open(path)
    await store.engine.execute("PRAGMA busy_timeout=50")  # so the wait outlasts it many times over
    async with aiosqlite.connect(path, isolation_level=None) as other:
        await other.execute("BEGIN IMMEDIATE")
        await other.execute("INSERT INTO user_settings VALUES ('x', 'y', 'k', 'v')")
        write = asyncio.create_task(store.put_setting("telegram", "42", "speed", "fast"))
        await asyncio.sleep(0.6)
        assert not write.done()  # held up by the other writer, not failed
        await other.execute("COMMIT")
        await write
    assert await store.settings("telegram", "42") == {"speed": "fast"}
    await store.close()


async def test_a_one_shot_cli_takes_only_cli_jobs(store: JobStore) -> None:
    """A chat job's changes must happen in `run`, the process that edits its message."""
    cli = Owner(platform="cli", user_id="ops")
    await store.insert(make("chat1", created_at=100.0))
    await store.insert(make("cli01", created_at=101.0, owner=cli))
    assert [j.id for j in await store.claim_queued("local", 200.0, 30.0, 5, platform="cli")] == ["cli01"]
    assert [j.id for j in await store.claim_queued("local", 200.0, 30.0, 5)] == ["chat1"]
    assert await store.claim_stale_submits(300.0, 30.0, platform="cli") == [
        await store.get("cli01")]  # fmt: skip
    assert [j.id for j in await store.expired(2000.0, platform="cli")] == ["cli01"]


async def test_a_lookup_that_could_not_tell_counts_towards_its_backoff(store: JobStore) -> None:
    await store.insert(make("a1"))
    [claimed] = await store.claim_queued("local", 200.0, 30.0, capacity=5)
    await store.extend_claim(claimed, 240.0, claimed.poll_failures + 1)
    [again] = await store.claim_stale_submits(250.0, 30.0)
    assert (again.poll_failures, again.submit_key) == (1, claimed.submit_key)


async def test_two_writers_merge_snapshots_of_one_job_without_regressing(database: Path | str) -> None:
    """A webhook in one process and a poll in another report the same task in any order: the job ends
    succeeded with its result, and exactly one write reported the ending."""
    first, second = await JobStore.open(database), await JobStore.open(database)
    try:
        await first.insert(make("a1", provider_task_id="T1", state=JobState.SUBMITTED, next_poll_at=100.0))
        reports = [TaskSnapshot(task_id="T1", status=TaskStatus.RUNNING, progress=p)
                   for p in range(5, 100, 5)]
        reports.append(TaskSnapshot(task_id="T1", status=TaskStatus.SUCCEEDED,
                                    result=TaskResult(grid_url="http://x/g")))  # fmt: skip
        random.Random(3).shuffle(reports)
        writers = (first, second)
        outcomes = await asyncio.gather(*(writers[n % 2].apply_snapshot("local", report, now=101.0 + n)
                                          for n, report in enumerate(reports)))  # fmt: skip
        changes = [job for job in outcomes if job is not None]
        assert [job.state for job in changes].count(JobState.SUCCEEDED) == 1
        stored = await second.get("a1")
        assert stored is not None and stored.state is JobState.SUCCEEDED and stored.result is not None
        assert stored.progress == 100
    finally:
        await first.close()
        await second.close()
