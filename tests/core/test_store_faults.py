"""The store when its database misbehaves: a PostgreSQL server that isn't there at start (or has no such
database), a database made by a newer imagine-bot (both engines), a PostgreSQL server that drops every
connection or goes away for a few seconds while jobs run, and uploads over the size cap, which must
never reach the database (both engines).

Everything runs on a real PostgreSQL (tests/postgres.py); an outage is made with a small TCP proxy in
this process between the store and the server, stopped and started again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import random
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from PIL import Image

import bot.cli
from bot.access import Caller
from bot.cli import EXIT_DATABASE, main
from bot.config import MediaConfig, PollingConfig, is_database_url
from bot.domain import Job, JobState
from bot.errors import BadImage
from bot.store import DatabaseError, JobStore, migrations
from tests import postgres
from tests.core.conftest import OWNER, Harness, build, image_input, local, png
from tests.harness import FakeClock
from tests.net import free_port

SECRET = "S3cretPw"
NEWER = "newer than this version of imagine-bot knows"


# -- helpers -------------------------------------------------------------------------------------


def with_netloc(url: str, *, host: str | None = None, port: int | None = None, password: str | None = None,
                name: str | None = None) -> str:
    """`url` with its host, port, password or database name replaced."""
    parts = urlsplit(url)
    user = parts.username or "postgres"
    secret = password if password is not None else parts.password
    credentials = f"{user}:{secret}" if secret else user
    netloc = f"{credentials}@{host or parts.hostname or '127.0.0.1'}:{port or parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{name}" if name else parts.path))


class RealClock(FakeClock):
    """The wall clock, for a poller left to run by itself (`Poller.run`)."""

    def __call__(self) -> float:
        return time.time()


@pytest.fixture
def cli_logging(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, root_logging: None
                ) -> None:
    """The CLI replaces the root handlers (bot.logs.configure_logging): keep pytest's capture among them,
    at DEBUG, so `caplog` holds every record the command made, as made (before any redaction); the root
    logger is restored afterwards (`root_logging`)."""
    root = logging.getLogger()
    real = bot.cli.configure_logging

    def configure(*args: Any, **kwargs: Any) -> logging.Handler:
        handler = real(*args, **kwargs)
        root.addHandler(caplog.handler)
        root.setLevel(logging.DEBUG)
        caplog.handler.setLevel(logging.DEBUG)
        return handler

    monkeypatch.setattr(bot.cli, "configure_logging", configure)


def run_cli(tmp_path: Path, database: Path | str, *args: str) -> int:
    """`imagine-bot <args> --config <a config naming database>`, in this process."""
    config = tmp_path / "config.yaml"
    config.write_text(f"database: '{database}'\n", encoding="utf-8")
    return main([*args, "--config", str(config)])


def assert_no_secret(secret: str, out: str, err: str, caplog: pytest.LogCaptureFixture) -> None:
    assert secret not in out and secret not in err
    logging.getLogger("bot.store").debug("still captured")  # whatever the command logged was seen too
    assert caplog.records and caplog.records[-1].getMessage() == "still captured"
    for record in caplog.records:
        assert secret not in record.getMessage(), record
        assert secret not in str(record.args), record
    assert secret not in caplog.text  # with any formatted exception


# -- 1. a server that isn't there --------------------------------------------------------------------


def test_an_unreachable_server_at_start_exits_3_naming_host_and_port_never_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, cli_logging: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    port = free_port()  # nothing listens there
    code = run_cli(tmp_path, f"postgresql://user:{SECRET}@127.0.0.1:{port}/x", "jobs")
    out, err = capsys.readouterr()
    assert code == EXIT_DATABASE == 3, (out, err)
    assert err.startswith("error: "), err
    assert f"127.0.0.1:{port}" in err
    assert "Traceback" not in err
    assert_no_secret(SECRET, out, err, caplog)


def test_a_database_that_does_not_exist_exits_3_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, cli_logging: None,
) -> None:
    monkeypatch.chdir(tmp_path)
    server = postgres.server()
    name = f"imagine_missing_{uuid.uuid4().hex[:8]}"
    # the test server trusts its user (any password does); one that checks keeps its own, the secret then
    secret = urlsplit(server).password or SECRET
    url = with_netloc(server, password=secret, name=name)
    code = run_cli(tmp_path, url, "jobs")
    out, err = capsys.readouterr()
    parts = urlsplit(server)
    assert code == EXIT_DATABASE, (out, err)
    assert err.startswith("error: "), err
    assert f"{parts.hostname}:{parts.port or 5432}/{name}" in err
    assert f'database "{name}" does not exist' in err
    assert "Traceback" not in err
    assert_no_secret(secret, out, err, caplog)


# -- 2. a database made by a newer imagine-bot -----------------------------------------------------------


async def _made_by_a_newer_version(database: Path | str) -> int:
    """Store something, then move the database one schema version past this code's, with a table of
    that newer version's; the version it is at now."""
    store = await JobStore.open(database)
    try:
        await store.put_setting("telegram", "1", "speed", "fast")
    finally:
        await store.close()
    if is_database_url(database):
        version = len(migrations.POSTGRES) + 1
        connection = await asyncpg.connect(str(database))
        try:
            await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
            await connection.execute("CREATE TABLE from_the_future (note TEXT)")
            await connection.execute("INSERT INTO from_the_future VALUES ('kept')")
        finally:
            await connection.close()
        return version
    version = len(migrations.SQLITE) + 1
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("CREATE TABLE from_the_future (note TEXT)")
        db.execute("INSERT INTO from_the_future VALUES ('kept')")
        db.execute(f"PRAGMA user_version = {version}")
        db.commit()
    return version


async def _contents(database: Path | str) -> dict[str, Any]:
    """Everything an upgrade could have touched: the schema version, every table and column, the rows."""
    if is_database_url(database):
        connection = await asyncpg.connect(str(database))
        try:
            versions = [r[0] for r in await connection.fetch("SELECT version FROM schema_version ORDER BY 1")]
            columns = [tuple(r) for r in await connection.fetch(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' ORDER BY 1, 2")]  # fmt: skip
            indexes = [tuple(r) for r in await connection.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")]
            settings = [tuple(r) for r in await connection.fetch("SELECT * FROM user_settings")]
            future = [tuple(r) for r in await connection.fetch("SELECT * FROM from_the_future")]
            jobs = await connection.fetchval("SELECT count(*) FROM jobs")
        finally:
            await connection.close()
        return {"versions": versions, "columns": columns, "indexes": indexes, "settings": settings,
                "future": future, "jobs": jobs}  # fmt: skip
    with contextlib.closing(sqlite3.connect(database)) as db:
        return {
            "versions": db.execute("PRAGMA user_version").fetchall(),
            "schema": db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
            "settings": db.execute("SELECT * FROM user_settings").fetchall(),
            "future": db.execute("SELECT * FROM from_the_future").fetchall(),
            "jobs": db.execute("SELECT count(*) FROM jobs").fetchall(),
        }


async def test_a_database_from_a_newer_version_is_refused_and_left_as_it_was(
    database: Path | str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    cli_logging: None,
) -> None:
    version = await _made_by_a_newer_version(database)
    before = await _contents(database)
    assert before["future"] == [("kept",)] and before["settings"]

    with pytest.raises(DatabaseError, match=NEWER) as refused:
        await JobStore.open(database)
    assert f"schema version {version}" in str(refused.value)
    assert await _contents(database) == before

    monkeypatch.chdir(tmp_path)
    code = await asyncio.to_thread(run_cli, tmp_path, database, "jobs")
    out, err = capsys.readouterr()
    assert code == EXIT_DATABASE, (out, err)
    assert err.startswith("error: ") and NEWER in err, err
    assert "Traceback" not in err
    assert await _contents(database) == before


# -- 3. PostgreSQL lost while jobs run -------------------------------------------------------------------

JOBS = 6
FAST_POLLING = PollingConfig(idle_interval=0.1, backoff_base=0.2, backoff_max=1.0, max_submit_attempts=3)


@contextlib.asynccontextmanager
async def running(h: Harness) -> AsyncIterator[None]:
    """The poller ticking by itself (as `run` has it) for the block."""
    task = asyncio.create_task(h.poller.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def ended(h: Harness, jobs: list[Job], within: float = 30.0) -> list[Job]:
    """The jobs once the listener has seen every one of them end (read from the store then); fails
    naming, for each job, its stored state and what the listener was told, if that takes `within`."""
    heard = lambda job: [seen.state.value for seen in h.listener.of(job.id)]  # noqa: E731
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            while not all(any(seen.terminal for seen in h.listener.of(job.id)) for job in jobs):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    stored = [await h.service.get(job.id) for job in jobs]
    assert all(any(seen.terminal for seen in h.listener.of(job.id)) for job in jobs), [
        (job.id, job.state.value, heard(job)) for job in stored]
    return stored


async def charges(url: str) -> Counter[str]:
    connection = await asyncpg.connect(url)
    try:
        return Counter(str(row[0]) for row in await connection.fetch("SELECT job_id FROM quota_ledger"))
    finally:
        await connection.close()


def check_outcome(h: Harness, jobs: list[Job], finished: list[Job], charged: Counter[str]) -> None:
    """Every job succeeded, its listener heard of its end once, it is charged once, nothing else exists."""
    assert [job.state for job in finished] == [JobState.SUCCEEDED] * len(jobs), [
        (job.id, job.state.value, job.error) for job in finished]
    for job in jobs:
        finals = [seen.state for seen in h.listener.of(job.id) if seen.terminal]
        assert finals == [JobState.SUCCEEDED], (job.id, finals)
    assert charged == Counter({job.id: 1 for job in jobs})


async def test_every_backend_killed_again_and_again_while_jobs_run(tmp_path: Path) -> None:
    async with postgres.database() as url:
        name = urlsplit(url).path.lstrip("/")
        providers = [local(duration=1.0, poll_interval=0.2, request_timeout=2.0)]
        async with build(tmp_path, providers, clock=RealClock(), polling=FAST_POLLING, database=url) as h:
            jobs = [await h.service.imagine(Caller(OWNER), f"a lighthouse at dusk {n}") for n in range(JOBS)]
            admin = await asyncpg.connect(postgres.server())
            killed = 0
            try:
                async with running(h):
                    for _ in range(8):  # the jobs take a second at the provider: kills fall before,
                        await asyncio.sleep(0.15)  # during and after their submits and polls
                        killed += len(await admin.fetch(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = $1 AND pid <> pg_backend_pid()", name))  # fmt: skip
                    finished = await ended(h, jobs)
            finally:
                await admin.close()
            assert killed >= 8  # the pool had a connection open every time, at least
            check_outcome(h, jobs, finished, await charges(url))
            assert h.providers["local"].calls["submit"] >= JOBS


class Proxy:
    """A TCP proxy on 127.0.0.1 in front of the test server: `stop()` closes every connection and stops
    listening (the server is unreachable: connections are refused), `start()` listens again on the
    same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for link in list(self._links):
            link.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        self.connections += 1
        upstream: asyncio.StreamWriter | None = None
        try:
            up_reader, upstream = await asyncio.open_connection(*self.target)
            async with asyncio.TaskGroup() as group:
                group.create_task(_pipe(reader, upstream))
                group.create_task(_pipe(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._links.discard(task)
            for side in (writer, upstream):
                if side is not None:
                    side.transport.abort()  # a cut, not a goodbye: no FIN handshake to wait for


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.transport.abort()


async def states(h: Harness, jobs: list[Job]) -> list[JobState]:
    return [(await h.service.get(job.id)).state for job in jobs]


async def test_a_server_gone_for_seconds_makes_jobs_wait_then_finish(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.store.postgres")
    server = urlsplit(postgres.server())
    proxy = Proxy((server.hostname or "127.0.0.1", server.port or 5432))
    await proxy.start()
    try:
        async with postgres.database() as url:
            behind = with_netloc(url, host="127.0.0.1", port=proxy.port)
            providers = [local(duration=2.0, poll_interval=0.2)]
            async with build(tmp_path, providers, clock=RealClock(), polling=FAST_POLLING,
                             database=behind) as h:  # fmt: skip
                me = Caller(OWNER)
                jobs = [await h.service.imagine(me, f"a harbour at night {n}") for n in range(JOBS)]
                async with running(h):
                    async with asyncio.timeout(20):  # all at the provider, none finished yet
                        while not set(await states(h, jobs)) <= {JobState.SUBMITTED, JobState.RUNNING}:  # noqa: ASYNC110
                            await asyncio.sleep(0.05)
                    await proxy.stop()
                    down = time.monotonic()
                    await asyncio.sleep(3.0)  # the jobs finish at the provider meanwhile
                    assert not any(seen.terminal for seen in h.listener.seen)  # nobody could record it
                    await proxy.start()
                    finished = await ended(h, jobs)
                    waited = time.monotonic() - down
                assert waited >= 3.0
                check_outcome(h, jobs, finished, await charges(url))
                assert h.providers["local"].calls["submit"] == JOBS  # no submit was sent twice
    finally:
        with contextlib.suppress(AssertionError):
            await proxy.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "bot.store.postgres"]
    lost = [m for m in messages if "can't be reached" in m]
    back = [m for m in messages if "is back" in m]
    assert lost and back, messages
    assert messages.index(lost[0]) < messages.index(back[0])
    assert f"127.0.0.1:{proxy.port}" in lost[0]


# -- 4. uploads over the size cap ------------------------------------------------------------------------

CAP = 1_000_000


def oversized_png() -> bytes:
    """A real PNG of noise (it does not compress) over CAP bytes."""
    rng = random.Random(3)
    image = Image.frombytes("RGB", (640, 640), rng.randbytes(640 * 640 * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    data = out.getvalue()
    assert CAP < len(data) < 2 * CAP
    return data


async def count(h: Harness, table: str) -> int:
    return int((await h.store.engine.rows(f"SELECT count(*) FROM {table}"))[0][0])


async def test_an_upload_over_the_size_cap_is_never_stored(tmp_path: Path, database: Path | str) -> None:
    big = image_input(oversized_png(), "big.png")
    small = image_input(png(), "small.png")
    size = f"{len(big.data) / 1e6:.1f}"
    media = MediaConfig(max_download_bytes=CAP, cache_dir=tmp_path / "media")
    async with build(tmp_path, database=database, media=media) as h:
        with pytest.raises(BadImage, match=rf"^The image is {size} MB; the limit is 1\.0 MB\.$"):
            await h.service.describe(Caller(OWNER), big)
        with pytest.raises(BadImage, match=rf"^Image 2 is {size} MB; the limit is 1\.0 MB\.$"):
            await h.service.blend(Caller(OWNER), [small, big])
        with pytest.raises(BadImage, match=rf"is {size} MB; the limit is 1\.0 MB\.$"):
            await h.service.imagine(Caller(OWNER), "a lighthouse at dusk", images=[big])
        assert [await count(h, table) for table in ("blobs", "job_blobs", "jobs", "quota_ledger")] == [0] * 4

        kept = await h.service.describe(Caller(OWNER), small)  # an image within the cap is stored, once
        assert await count(h, "blobs") == 1
        assert (await h.service.inputs(kept))[0].data == small.data
