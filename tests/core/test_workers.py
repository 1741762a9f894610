"""Workers sharing one database: leases (one holder, lapse, hand-back), chats taken over from a dead
worker, job changes heard by every worker (PostgreSQL NOTIFY, with a catch-up after a lost
connection), and `imagine-bot workers`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from bot.config import WorkersConfig
from bot.domain import Job, JobState, Placement
from bot.events import CHANNEL, Listeners, SharedEvents
from bot.store import InboxEntry, JobStore
from bot.workers import Worker
from tests import postgres
from tests.core.test_store import make
from tests.harness import FakeClock

CONFIG = WorkersConfig(id="w", heartbeat=1.0, lease=10.0)


def placed(job_id: str, chat: str, **kw: object) -> Job:
    return make(job_id, placement=Placement(platform="telegram", chat_id=chat, message_id="7"), **kw)


async def test_a_lease_has_one_holder_until_it_lapses_or_is_handed_back(store: JobStore) -> None:
    leases = store.workers
    assert await leases.take("chat:telegram:-1", "a", now=100.0, until=110.0)
    assert await leases.take("chat:telegram:-1", "a", now=105.0, until=115.0)  # its own: renewed
    assert not await leases.take("chat:telegram:-1", "b", now=114.0, until=124.0)
    assert await leases.holder("chat:telegram:-1", 114.0) == "a"
    assert await leases.take("chat:telegram:-1", "b", now=115.0, until=125.0)  # lapsed: b's now
    assert await leases.renew("a", now=116.0, until=126.0) == set()  # a lost it
    assert await leases.renew("b", now=116.0, until=126.0) == {"chat:telegram:-1"}
    await leases.join("b", "instance-1", 116.0, {})
    await leases.leave("b", "instance-1")  # a clean stop hands every lease back at once
    assert await leases.holder("chat:telegram:-1", 117.0) is None
    assert await leases.take("chat:telegram:-1", "a", now=117.0, until=127.0)


async def test_only_chats_with_something_to_show_and_no_live_holder_are_offered(store: JobStore) -> None:
    await store.insert(placed("live", "-1", state=JobState.RUNNING))
    await store.insert(placed("undelivered", "-2", state=JobState.SUCCEEDED))
    done = placed("done", "-3", state=JobState.SUCCEEDED)
    await store.insert(done)
    await store.mark_delivered(done.id, done.state)
    await store.insert(placed("held", "-4", state=JobState.RUNNING))
    await store.workers.take("chat:telegram:-4", "other", now=100.0, until=110.0)
    await store.insert(placed("mine", "-5", state=JobState.RUNNING))
    await store.workers.take("chat:telegram:-5", "me", now=100.0, until=110.0)  # an earlier life's
    assert sorted(await store.workers.unheld_chats("me", 105.0)) == [
        ("telegram", "-1"), ("telegram", "-2"), ("telegram", "-5")]  # fmt: skip
    assert ("telegram", "-4") in await store.workers.unheld_chats("me", 110.0)  # its holder stopped


@contextlib.asynccontextmanager
async def two_stores() -> AsyncIterator[tuple[JobStore, JobStore]]:
    """Two processes' stores on one PostgreSQL database."""
    async with postgres.database() as url:
        first, second = await JobStore.open(url), await JobStore.open(url)
        try:
            yield first, second
        finally:
            await first.close()
            await second.close()


async def test_a_dead_workers_chats_are_taken_over_once_its_leases_lapse() -> None:
    clock = FakeClock(1000.0)
    async with two_stores() as (one, two):
        await one.insert(placed("j1", "-1", state=JobState.RUNNING))
        first = Worker(one, WorkersConfig(id="first", heartbeat=1.0, lease=10.0), clock=clock)
        second = Worker(two, WorkersConfig(id="second", heartbeat=1.0, lease=10.0), clock=clock)
        adopted: dict[str, list[list[str]]] = {"first": [], "second": []}

        async def by(name: str, chats: list[str]) -> None:
            adopted[name].append(chats)

        await first.adopt("telegram", lambda chats: by("first", chats))
        await second.adopt("telegram", lambda chats: by("second", chats))
        assert adopted == {"first": [["-1"]], "second": []}
        assert await first.owns_chat("telegram", "-1") and not await second.owns_chat("telegram", "-1")
        clock.advance(9.0)
        await first.beat()  # alive: renewed for another lease
        clock.advance(9.0)
        await second.adopt_unheld()
        assert adopted["second"] == []
        clock.advance(1.5)  # first stopped beating 10.5 s ago: dead
        await second.adopt_unheld()
        assert adopted["second"] == [["-1"]]
        assert await second.owns_chat("telegram", "-1")
        assert not await first.owns_chat("telegram", "-1")  # it knows as soon as it looks again
        await second.adopt_unheld()
        assert adopted["second"] == [["-1"]]  # adopted once


async def test_a_clean_stop_hands_the_chats_over_at_once() -> None:
    async with two_stores() as (one, two):
        await one.insert(placed("j1", "-1", state=JobState.RUNNING))
        first, second = Worker(one, CONFIG.model_copy(update={"id": "a"})), Worker(two, CONFIG)
        assert await first.owns_chat("telegram", "-1")
        await first.join()
        assert [w.id for w in await two.workers.all(time.time())] == ["a"]
        await first.leave()
        taken: list[list[str]] = []

        async def adopter(chats: list[str]) -> None:
            taken.append(chats)

        await second.adopt("telegram", adopter)
        assert taken == [["-1"]]
        assert await two.workers.all(time.time()) == []


async def test_on_sqlite_every_chat_is_this_workers_and_no_lease_is_written(tmp_path: Path) -> None:
    store = await JobStore.open(tmp_path / "jobs.sqlite3")
    try:
        worker = Worker(store, CONFIG)
        assert await worker.owns_chat("telegram", "-1")
        assert await store.workers.holder("chat:telegram:-1", time.time()) is None
    finally:
        await store.close()


class Heard:
    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.changed = asyncio.Event()

    async def job_changed(self, job: Job) -> None:
        self.jobs.append(job)
        self.changed.set()

    async def next(self, within: float = 5.0) -> Job:
        await asyncio.wait_for(self.changed.wait(), within)
        self.changed.clear()
        return self.jobs[-1]


async def _listening(store: JobStore, count: int) -> list[int]:
    """The backend pids of the database's LISTEN connections, once there are `count` of them."""
    for _ in range(200):
        rows = await store.engine.rows(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE ?",
            (f"LISTEN%{CHANNEL}%",))  # fmt: skip
        if len(rows) >= count:
            return [int(row[0]) for row in rows]
        await asyncio.sleep(0.02)
    raise AssertionError("the LISTEN connections never showed up")


async def test_a_change_on_one_worker_reaches_the_listeners_of_another() -> None:
    async with two_stores() as (one, two):
        here, there = Listeners(), Listeners()
        heard_here, heard_there = Heard(), Heard()
        here.add(heard_here)
        there.add(heard_there)
        events_here = SharedEvents(one, here)
        events_there = SharedEvents(two, there)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(events_here.run()), group.create_task(events_there.run())]
            await _listening(two, 2)
            await one.insert(placed("j1", "-1", state=JobState.RUNNING, progress=10))
            assert (await heard_there.next()).progress == 10  # a new job is a change too
            job = await one.get("j1")
            assert job is not None
            moved = await one.save(job.model_copy(update={"progress": 60, "updated_at": time.time()}), job)
            assert moved is not None
            await here.job_changed(moved)
            assert (await heard_there.next()).progress == 60  # read from the store by the other worker
            assert [j.progress for j in heard_here.jobs] == [60]  # no echo of its own change
            claimed = await one.engine.execute("UPDATE jobs SET next_poll_at = ? WHERE id = ?", (1.0, "j1"))
            assert claimed == 1  # ... and a write no chat shows (a claimed poll) is no event at all
            # the listening connections are cut: each worker reconnects and reads what changed meanwhile
            admin = await asyncpg.connect(postgres.server())
            try:
                for pid in await _listening(two, 2):
                    await admin.execute("SELECT pg_terminate_backend($1)", pid)
            finally:
                await admin.close()
            again = await heard_there.next(10.0)
            assert again.id == "j1" and again.progress == 60
            for task in tasks:
                task.cancel()
        assert events_there.received == 2


async def test_the_database_announces_what_a_chat_shows_in_the_transaction_that_wrote_it() -> None:
    async with postgres.database() as url:
        one = await JobStore.open(url)
        heard: asyncio.Queue[str] = asyncio.Queue()
        listener = await asyncpg.connect(url)
        await listener.add_listener(CHANNEL, lambda *args: heard.put_nowait(str(args[-1])))
        try:
            origin = one.engine.instance
            await one.insert(placed("j1", "-1", state=JobState.RUNNING, progress=10))
            assert await asyncio.wait_for(heard.get(), 10) == f"{origin} job j1"
            with contextlib.suppress(RuntimeError):  # a writer that fails before committing told nobody
                async with one.transaction():
                    await one.engine.execute("UPDATE jobs SET progress = 20 WHERE id = ?", ("j1",))
                    raise RuntimeError("died mid-transaction")
            claim = "UPDATE jobs SET next_poll_at = 5, poll_failures = 1 WHERE id = ?"  # no chat shows it
            await one.engine.execute(claim, ("j1",))
            await one.engine.execute("UPDATE jobs SET progress = 30 WHERE id = ?", ("j1",))
            assert await asyncio.wait_for(heard.get(), 10) == f"{origin} job j1"  # the progress, only
            await one.inbox_add("telegram", [InboxEntry("1", 1, "{}", "-1"), InboxEntry("2", 2, "{}", "-1"),
                                             InboxEntry("3", 3, "{}", None)], 100.0)  # fmt: skip
            assert await asyncio.wait_for(heard.get(), 10) == f"{origin} inbox telegram"  # one per batch
            await one.engine.execute("UPDATE jobs SET progress = 40 WHERE id = ?", ("j1",))
            assert await asyncio.wait_for(heard.get(), 10) == f"{origin} job j1"
            assert heard.empty()
        finally:
            await listener.close()
            await one.close()


async def test_the_workers_command_lists_live_and_gone_workers(database: Path | str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                root_logging: None) -> None:
    from bot.cli import main

    store = await JobStore.open(database)
    try:
        await Worker(store, WorkersConfig(id="web-1"), clock=lambda: time.time()).join()
        await Worker(store, WorkersConfig(id="web-2"), clock=lambda: time.time() - 3600).join()
        await store.workers.take("chat:telegram:-1", "web-1", time.time(), time.time() + 30)
    finally:
        await store.close()
    config = tmp_path / "config.yaml"
    config.write_text(f"database: {database}\n")
    assert await asyncio.to_thread(main, ["workers", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["WORKER", "STATE", "UP", "SEEN", "LEASES", "DETAILS"]
    assert lines[1].split()[:2] == ["web-1", "live"] and lines[1].split()[4] == "1"
    assert lines[2].split()[:2] == ["web-2", "gone"] and lines[2].split()[3] == "1h"
