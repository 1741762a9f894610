"""`imagine-bot db copy SRC DST`: a store made by the real service (jobs, a blend's stored inputs, charges,
bans, settings, an album, the inbox) moved SQLite -> PostgreSQL and back on real databases: every table
the same on both sides, jobs and inputs read back equal, queue order kept, nothing duplicated when it is
run again or into a target that already has some of it, and the URL's password never printed."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

from bot.access import Caller
from bot.cli import EXIT_DATABASE, main
from bot.domain import Job, JobState
from bot.store import InboxEntry, JobStore
from bot.store import copy as store_copy
from bot.store.engine import Engine, open_engine
from bot.store.prompts import PromptRequest
from bot.store.sql import COPY_TABLES, NOT_COPIED
from bot.store.web import WebSession
from tests import postgres
from tests.core.conftest import OWNER, build, image_input, local, png

Dump = dict[str, list[dict[str, Any]]]


def with_password(url: str) -> tuple[str, str]:
    """`url` with a password in it (the test server trusts loopback, so any one connects) and that
    password, which nothing may print."""
    parts = urlsplit(url)
    if parts.password:
        return url, parts.password
    netloc = f"{parts.username or 'postgres'}:anything-s3cret@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc)), "anything-s3cret"


async def _columns(engine: Engine) -> dict[str, tuple[list[str], list[str]]]:
    """Every table of the store as the database describes it: its columns and primary key, in order."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    if engine.dialect.numbered:
        for table, column in await engine.rows(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name <> 'schema_version' ORDER BY table_name, ordinal_position"
        ):
            if (table, column) != ("jobs", "seq"):  # generated, never copied
                found.setdefault(table, ([], []))[0].append(column)
        for table, column in await engine.rows(
            "SELECT k.table_name, k.column_name FROM information_schema.table_constraints c"
            " JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name"
            " AND k.table_name = c.table_name WHERE c.constraint_type = 'PRIMARY KEY'"
            " AND c.table_schema = 'public' AND c.table_name <> 'schema_version'"
            " ORDER BY k.table_name, k.ordinal_position"
        ):
            found[table][1].append(column)
        return found
    tables = await engine.rows(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    for (table,) in tables:
        info = await engine.rows(f"PRAGMA table_info({table})")
        key = sorted((row[5], row[1]) for row in info if row[5])
        found[table] = ([row[1] for row in info], [name for _, name in key])
    return found


async def dump(database: str | Path) -> Dump:
    """Every row of every table, as {column: value}, in primary-key order."""
    engine = await open_engine(database)
    try:
        out: Dump = {}
        for table, (columns, key) in (await _columns(engine)).items():
            rows = await engine.rows(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(key)}")
            out[table] = [dict(zip(columns, row, strict=True)) for row in rows]
        return out
    finally:
        await engine.close()


@dataclass
class Seeded:
    path: Path
    jobs: list[Job]
    queued: list[Job]  # in queue order
    blend: Job
    origin_job: Job


async def seed(tmp_path: Path) -> Seeded:
    """A SQLite store with one row or more in every table, made through the real service."""
    path = tmp_path / "source.sqlite3"
    async with build(tmp_path, [local(max_concurrency=1)], database=path) as h:
        first = await h.imagine("a lighthouse at dusk")
        upscale = await h.act(first, "upscale", 1)
        blend = await h.done(await h.service.blend(Caller(OWNER), [image_input(png(color=(9, 8, 7))),
                                                           image_input(png(color=(1, 2, 3)))]))
        asked = await h.service.imagine(Caller(OWNER), "from telegram", origin="telegram:update:41")
        origin_job = await h.done(asked)
        # never submitted (the poller does not tick again), all at the same moment: their order is the
        # source's sequence alone
        queued = [await h.service.imagine(Caller(OWNER), f"queued fox {i}") for i in range(4)]
        store, now = h.store, h.clock()
        await store.callback_secret(first.id, "callback-secret")
        await store.bans.ban("telegram", "202", "*", "spam", "cli:ops", now)
        await store.ops.put("*", "user_per_hour", "5")
        await store.put_setting("cli", OWNER.user_id, "aspect_ratio", "16:9")
        await store.albums.add("-1001", "album-7", 70, "file-a", now)
        await store.albums.add("-1001", "album-7", 71, "file-b", now)
        asked = PromptRequest("telegram", "-1001", "72", first.id, "variation", 2, "201", now)
        await store.prompts.add(asked)
        await store.web.use_link("link-nonce-1", now, now + 600)
        session = WebSession("f" * 64, "telegram", "202", "Bob", None, "-1001", False, False, now, now + 3600)
        await store.web.add_session(session)
        entries = [InboxEntry("41", 41, '{"update_id": 41}'),
                   InboxEntry("42", 42, '{"update_id": 42}', "-1001")]
        await store.inbox_add("telegram", entries, now)
        await store.inbox_done("telegram", "41", now)
        jobs = [await h.service.get(j.id) for j in (first, upscale, blend, origin_job, *queued)]
        queued = [await h.service.get(j.id) for j in queued]
    assert all(j.state is JobState.QUEUED for j in queued)
    return Seeded(path, jobs, queued, blend, origin_job)


@pytest.fixture
def config(tmp_path: Path, root_logging: None) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"database": str(tmp_path / "unused.sqlite3"),
                                    "providers": [{"name": "local", "type": "local"}]}))  # fmt: skip
    return str(path)


@pytest.fixture
async def pg() -> AsyncIterator[tuple[str, str]]:
    """A fresh PostgreSQL database: its URL with a password, and the password."""
    async with postgres.database() as url:
        yield with_password(url)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of two rows (stored inputs one by one): every table of two rows or more takes several
    pages, the last one empty."""
    monkeypatch.setattr(store_copy, "BATCH", 2)
    monkeypatch.setattr(store_copy, "BLOB_BATCH", 1)


async def db(config: str, *args: str) -> int:
    return await asyncio.to_thread(main, ["--config", config, "db", *args])


def counts(out: str) -> dict[str, tuple[int, int, int]]:
    """The summary lines: table -> (in source, in target, copied)."""
    found = {}
    for line in out.splitlines():
        words = line.replace("(", " ").split()
        if words and words[0] in COPY_TABLES:
            found[words[0]] = (int(words[1]), int(words[4]), int(words[7]))
    return found


async def test_the_copy_names_every_table_and_column_of_the_schema(database: Path | str) -> None:
    store = await JobStore.open(database)
    try:
        described = await _columns(store.engine)
    finally:
        await store.close()
    assert {t: (sorted(c), k) for t, (c, k) in described.items() if t not in NOT_COPIED} == {
        t: (sorted(c), list(k)) for t, (c, k) in COPY_TABLES.items()
    }


async def test_sqlite_to_postgres_and_back(tmp_path: Path, config: str, pg: tuple[str, str],
                                           small_batches: None, capsys: pytest.CaptureFixture[str]) -> None:
    url, password = pg
    seeded = await seed(tmp_path)
    source = await dump(seeded.path)
    assert all(source[table] for table in COPY_TABLES), {t: len(r) for t, r in source.items()}

    assert await db(config, "copy", str(seeded.path), url) == 0
    out, err = capsys.readouterr()
    assert password not in out + err and url not in out + err
    assert "jobs" in err  # the progress bars
    assert counts(out)["jobs"] == (len(seeded.jobs), len(seeded.jobs), len(seeded.jobs))
    assert all(s == t == c for s, t, c in counts(out).values()) and len(counts(out)) == len(COPY_TABLES)
    assert await dump(url) == source

    store = await JobStore.open(url)
    try:
        for job in seeded.jobs:
            assert await store.get(job.id) == job
        copied = await store.get(seeded.blend.id)
        assert copied is not None
        loaded = await store.inputs.load(copied.request)
        assert [i.data for i in loaded.images] == [png(color=(9, 8, 7)), png(color=(1, 2, 3))]
        assert [await store.queue_position(j) for j in seeded.queued] == [1, 2, 3, 4]
        assert [j.id for j in await store.queued("local", 1e12, 10)] == [j.id for j in seeded.queued]
        assert await store.by_origin("telegram:update:41") == seeded.origin_job
        assert await store.albums.photos("-1001", "album-7") == ["file-a", "file-b"]
        assert await store.inbox_pending("telegram") == [("42", 42, '{"update_id": 42}', "-1001")]
    finally:
        await store.close()

    # again: nothing duplicated, nothing copied
    assert await db(config, "copy", str(seeded.path), url) == 0
    out, err = capsys.readouterr()
    assert password not in out + err
    assert all(s == t and c == 0 for s, t, c in counts(out).values())
    assert await dump(url) == source

    # and back, into a new SQLite file
    back = tmp_path / "back" / "store.sqlite3"
    assert await db(config, "copy", url, str(back)) == 0
    out, err = capsys.readouterr()
    assert password not in out + err
    assert await dump(back) == source
    store = await JobStore.open(back)
    try:
        assert [await store.queue_position(j) for j in seeded.queued] == [1, 2, 3, 4]
        for job in seeded.jobs:
            assert await store.get(job.id) == job
    finally:
        await store.close()


async def test_into_a_target_that_has_some_of_it(tmp_path: Path, config: str, pg: tuple[str, str],
                                                 small_batches: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = pg
    seeded = await seed(tmp_path)
    assert await db(config, "copy", str(seeded.path), url) == 0
    kept, gone = seeded.jobs[0], seeded.jobs[1]
    engine = await open_engine(url)
    try:  # the target differs: one job changed there, others (and some of every table) missing
        await engine.execute("UPDATE jobs SET error = 'changed in the target' WHERE id = ?", (kept.id,))
        await engine.execute("DELETE FROM jobs WHERE id = ?", (gone.id,))
        for table in ("quota_ledger", "blobs", "albums", "inbox", "bans", "job_blobs"):
            await engine.execute(f"DELETE FROM {table} WHERE {COPY_TABLES[table][1][0]} IN"
                                 f" (SELECT MIN({COPY_TABLES[table][1][0]}) FROM {table})")  # fmt: skip
    finally:
        await engine.close()
    capsys.readouterr()

    assert await db(config, "copy", str(seeded.path), url) == 0
    out, _ = capsys.readouterr()
    assert all(s == t for s, t, _ in counts(out).values())
    assert counts(out)["jobs"][2] == 1 and counts(out)["blobs"][2] == 1
    source, target = await dump(seeded.path), await dump(url)
    changed = next(row for row in target["jobs"] if row["id"] == kept.id)
    assert changed["error"] == "changed in the target"  # left as it was
    changed["error"] = kept.error
    assert target == source
    store = await JobStore.open(url)
    try:
        assert await store.get(gone.id) == gone
    finally:
        await store.close()


async def test_rows_the_target_refuses_are_reported(tmp_path: Path, config: str, pg: tuple[str, str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A target row with another key but the unique values of two source jobs (the same platform event,
    the same provider task) keeps both out: fewer jobs in the target, a non-zero exit saying so."""
    url, _ = pg
    seeded = await seed(tmp_path)
    store = await JobStore.open(url)
    try:
        intruder = seeded.jobs[0].model_copy(update={"id": "intruder", "origin": seeded.origin_job.origin})
        assert (await store.insert(intruder))[1]
    finally:
        await store.close()
    capsys.readouterr()
    assert await db(config, "copy", str(seeded.path), url) == 1
    out, err = capsys.readouterr()
    assert counts(out)["jobs"] == (len(seeded.jobs), len(seeded.jobs) - 1, len(seeded.jobs) - 2)
    assert "MISSING ROWS" in out and "fewer rows in the target than in the source: jobs" in err


async def test_a_source_that_is_no_store(tmp_path: Path, config: str, pg: tuple[str, str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    url, password = pg
    missing = tmp_path / "nowhere.sqlite3"
    assert await db(config, "copy", str(missing), url) == EXIT_DATABASE
    assert f"There is no database at {missing}" in capsys.readouterr().err
    assert not missing.exists()
    assert await db(config, "copy", url, str(tmp_path / "out.sqlite3")) == EXIT_DATABASE  # an empty database
    err = capsys.readouterr().err
    assert "holds no imagine-bot store" in err and password not in err
    assert await db(config, "copy", url, url) == EXIT_DATABASE
    assert "are the same database" in capsys.readouterr().err
    newer = tmp_path / "newer.sqlite3"
    await (await JobStore.open(newer)).close()
    with sqlite3.connect(newer) as raw:
        raw.execute("PRAGMA user_version = 999")
    assert await db(config, "copy", str(newer), url) == EXIT_DATABASE
    assert "newer than this version of imagine-bot knows" in capsys.readouterr().err
