"""JobStore on a real SQLite file: migrations, WAL, idempotent snapshots, lookups, queue, child dedupe."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bot.domain import Job, JobState, Owner, Placement
from bot.store import JobStore
from bot.store.migrations import SQLITE as MIGRATIONS
from providers.base import Action, GenerationRequest, PromptParams, TaskResult, TaskSnapshot, TaskStatus

OWNER = Owner(platform="telegram", user_id="42", name="Ada")


def make(job_id: str, **kw: Any) -> Job:
    fields: dict[str, Any] = {
        "id": job_id, "kind": Action.IMAGINE, "provider": "local",
        "request": GenerationRequest(prompt=PromptParams(text=f"prompt {job_id}", aspect_ratio="16:9")),
        "owner": OWNER, "created_at": 100.0, "updated_at": 100.0, "deadline": 1000.0,
    }  # fmt: skip
    return Job(**{**fields, **kw})


async def test_migrations_set_user_version_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = await JobStore.open(path)
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "user_settings"} <= tables
    store = await JobStore.open(path)  # a second open finds nothing to migrate
    await store.close()


async def test_reopen_keeps_jobs_and_every_field(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    job = make("a1", placement=Placement(platform="telegram", chat_id="-100", message_id="7", thread_id="3"),
               provider_task_id="T1", state=JobState.SUCCEEDED, progress=100, actions={"upscale:1": "cid"},
               result=TaskResult(grid_url="http://x/g.png", image_urls=["http://x/1.png"], prompts=["p"]),
               provider_data={"k": [1, 2]}, tried_providers=["mj"])  # fmt: skip
    store = await JobStore.open(path)
    await store.insert(job)
    await store.close()
    store = await JobStore.open(path)
    try:
        assert await store.get("a1") == job
    finally:
        await store.close()


async def test_lookups(store: JobStore) -> None:
    placement = Placement(platform="discord", chat_id="c1", message_id="m1")
    await store.insert(make("a1", provider_task_id="T1", placement=placement))
    await store.insert(make("a2", provider="mj", provider_task_id="T1"))
    assert (await store.get("a1")).id == "a1"  # type: ignore[union-attr]
    assert await store.get("zz") is None
    assert (await store.by_task("local", "T1")).id == "a1"  # type: ignore[union-attr]
    assert (await store.by_task("mj", "T1")).id == "a2"  # type: ignore[union-attr]
    assert await store.by_task("local", "T9") is None
    assert (await store.by_message("discord", "c1", "m1")).id == "a1"  # type: ignore[union-attr]
    assert await store.by_message("telegram", "c1", "m1") is None


async def test_apply_snapshot_is_idempotent_and_never_regresses(store: JobStore) -> None:
    await store.insert(make("a1", provider_task_id="T1", state=JobState.SUBMITTED, next_poll_at=100.0))
    running = TaskSnapshot(task_id="T1", status=TaskStatus.RUNNING, progress=50)
    changed = await store.apply_snapshot("local", running, now=101.0, next_poll_at=104.0)
    assert changed is not None and (changed.state, changed.progress, changed.next_poll_at) == (
        JobState.RUNNING, 50, 104.0)  # fmt: skip
    assert await store.apply_snapshot("local", running, now=102.0) is None
    stale = TaskSnapshot(task_id="T1", status=TaskStatus.SUBMITTED, progress=10)
    assert await store.apply_snapshot("local", stale, now=103.0) is None
    stored = await store.get("a1")
    assert stored is not None and (stored.state, stored.progress) == (JobState.RUNNING, 50)
    done = TaskSnapshot(task_id="T1", status=TaskStatus.SUCCEEDED, result=TaskResult(grid_url="http://x/g"))
    assert (await store.apply_snapshot("local", done, now=104.0)) is not None
    failed = TaskSnapshot(task_id="T1", status=TaskStatus.FAILED, error="late")
    assert await store.apply_snapshot("local", failed, now=105.0) is None
    stored = await store.get("a1")
    assert stored is not None and stored.state is JobState.SUCCEEDED and stored.error is None
    assert stored.next_poll_at is None


async def test_unchanged_snapshot_still_reschedules_the_poll(store: JobStore) -> None:
    await store.insert(
        make("a1", provider_task_id="T1", state=JobState.RUNNING, progress=5, next_poll_at=100.0)
    )
    same = TaskSnapshot(task_id="T1", status=TaskStatus.RUNNING, progress=5)
    assert await store.apply_snapshot("local", same, now=101.0, next_poll_at=110.0) is None
    assert (await store.get("a1")).next_poll_at == 110.0  # type: ignore[union-attr]


async def test_a_snapshot_merged_into_a_stale_copy_gives_way_to_a_later_write(store: JobStore) -> None:
    await store.insert(make("a1", provider_task_id="T1", state=JobState.SUBMITTED, next_poll_at=100.0))
    read = await store.get("a1")  # what the poller read before it asked the provider
    assert read is not None
    webhook = TaskSnapshot(task_id="T1", status=TaskStatus.RUNNING, progress=80)
    assert await store.apply_snapshot("local", webhook, now=101.0) is not None  # written meanwhile
    polled = TaskSnapshot(task_id="T1", status=TaskStatus.RUNNING, progress=40)
    assert await store.apply_snapshot("local", polled, now=102.0, next_poll_at=105.0, known=read) is None
    stored = await store.get("a1")
    assert stored is not None and (stored.state, stored.progress, stored.next_poll_at) == (
        JobState.RUNNING, 80, 105.0)  # fmt: skip


async def test_a_snapshot_merged_into_a_fresh_copy_is_written(store: JobStore) -> None:
    await store.insert(
        make("a1", provider_task_id="T1", state=JobState.RUNNING, progress=10, next_poll_at=100.0)
    )
    read = await store.get("a1")
    done = TaskSnapshot(task_id="T1", status=TaskStatus.SUCCEEDED, result=TaskResult(grid_url="http://x/g"))
    merged = await store.apply_snapshot("local", done, now=101.0, next_poll_at=110.0, known=read)
    assert merged is not None and merged.state is JobState.SUCCEEDED
    assert await store.get("a1") == merged
    # the same report merged into the same (now stale) copy can't be told from this very write sent
    # again after its answer was lost (PostgreSQL, a dropped connection): it is reported again, unchanged
    assert await store.apply_snapshot("local", done, now=102.0, known=read) == merged
    assert await store.apply_snapshot("local", done, now=103.0) is None  # without a copy: nothing new


async def test_due_takes_the_soon_due_only_along_with_one_due_now(store: JobStore) -> None:
    await store.insert(make("r1", state=JobState.RUNNING, provider_task_id="T1", next_poll_at=101.0))
    await store.insert(make("r2", state=JobState.RUNNING, provider_task_id="T2", next_poll_at=102.0))
    assert await store.due(now=100.0, ahead=5.0) == []
    assert [j.id for j in await store.due(now=101.0, ahead=5.0)] == ["r1", "r2"]


async def test_snapshot_for_an_unknown_task(store: JobStore) -> None:
    snap = TaskSnapshot(task_id="nope", status=TaskStatus.SUCCEEDED)
    assert await store.apply_snapshot("local", snap, now=1.0) is None


async def test_due_queue_and_positions(store: JobStore) -> None:
    await store.insert(make("r1", state=JobState.RUNNING, provider_task_id="T1", next_poll_at=50.0))
    await store.insert(make("r2", state=JobState.SUBMITTED, provider_task_id="T2", next_poll_at=150.0))
    await store.insert(make("s1", state=JobState.SUCCEEDED, provider_task_id="T3", next_poll_at=10.0))
    for i, created in enumerate((100.0, 100.0, 99.0)):
        await store.insert(make(f"q{i}", created_at=created))
    await store.insert(make("later", created_at=1.0, next_poll_at=500.0))  # backing off until 500
    await store.insert(make("other", provider="mj", created_at=1.0))
    assert [j.id for j in await store.due(now=100.0)] == ["r1"]
    assert [j.id for j in await store.due(now=200.0)] == ["r1", "r2"]
    assert [j.id for j in await store.queued("local", now=200.0, limit=10)] == ["q2", "q0", "q1"]
    assert [j.id for j in await store.queued("local", now=200.0, limit=2)] == ["q2", "q0"]
    assert (await store.queued("local", now=600.0, limit=10))[0].id == "later"
    positions = [await store.queue_position(j) for j in [make("q2", created_at=99.0), make("q0"), make("q1")]]
    assert positions == [2, 3, 4]  # "later" is still ahead of them in the line
    assert await store.queue_position(make("r1", state=JobState.RUNNING)) == 0
    assert sorted(await store.queued_providers()) == ["local", "mj"]
    assert await store.active_count("local") == 2
    assert await store.next_due() == 50.0


async def test_insert_child_dedupes_live_presses(store: JobStore) -> None:
    await store.insert(make("p1", state=JobState.SUCCEEDED))
    first, created = await store.insert_child(make("c1", kind=Action.UPSCALE, parent_id="p1", index=2))
    assert created and first.id == "c1"
    again, created = await store.insert_child(make("c2", kind=Action.UPSCALE, parent_id="p1", index=2))
    assert not created and again.id == "c1"
    other, created = await store.insert_child(make("c3", kind=Action.UPSCALE, parent_id="p1", index=3))
    assert created and other.id == "c3"
    await store.save(first.model_copy(update={"state": JobState.FAILED}))
    retry, created = await store.insert_child(make("c4", kind=Action.UPSCALE, parent_id="p1", index=2))
    assert created and retry.id == "c4"  # a failed press may be pressed again
    assert await store.get("c2") is None


async def test_expired_and_recent(store: JobStore) -> None:
    await store.insert(make("old", deadline=50.0))
    await store.insert(make("done", deadline=50.0, state=JobState.SUCCEEDED))
    await store.insert(make("new", deadline=500.0, created_at=200.0))
    assert [j.id for j in await store.expired(now=100.0)] == ["old"]
    assert [j.id for j in await store.recent(limit=2)] == ["new", "done"]
    assert [j.id for j in await store.recent(owner=Owner(platform="cli", user_id="x"))] == []


async def test_settings(store: JobStore) -> None:
    await store.put_setting("telegram", "42", "speed", "fast")
    await store.put_setting("telegram", "42", "speed", "relax")
    assert await store.settings("telegram", "42") == {"speed": "relax"}
