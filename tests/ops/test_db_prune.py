"""`imagine-bot db prune [--dry-run] [--older-than PERIOD]`: the configured store pruned now, on each
engine: finished jobs older than the cutoff go with their charges, callback secrets and the inputs no
newer job uses; newer jobs and what they use stay; a dry run changes nothing and counts what the real
run then removes; with `retention.keep_days: null` it asks for --older-than."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.access import Caller
from bot.cli import main
from bot.config import is_database_url
from bot.domain import Job
from bot.errors import ExitCode
from bot.store import JobStore
from bot.store.sql import COPY_TABLES
from tests.core.conftest import OWNER, build, image_input, png
from tests.harness import FakeClock
from tests.ops.test_db_copy import dump, with_password

DAY = 86400.0
ME = Caller(OWNER)
OLD_ONLY, SHARED, NEW_ONLY = png(color=(1, 2, 3)), png(color=(4, 5, 6)), png(color=(7, 8, 9))


@dataclass
class Aged:
    old: list[Job]  # finished 100 days ago
    new: list[Job]  # finished two hours ago


async def aged(tmp_path: Path, database: Path | str) -> Aged:
    async with build(tmp_path, clock=FakeClock(time.time() - 100 * DAY), database=database) as h:
        blend = await h.done(await h.service.blend(ME, [image_input(OLD_ONLY), image_input(SHARED)]))
        imagined = await h.imagine("an old lighthouse")
        await h.store.callback_secret(imagined.id, "old-secret")
    async with build(tmp_path, clock=FakeClock(time.time() - 2 * 3600), database=database) as h:
        kept = await h.done(await h.service.blend(ME, [image_input(SHARED), image_input(NEW_ONLY)]))
        recent = await h.imagine("a new lighthouse")
        await h.store.callback_secret(recent.id, "new-secret")
    return Aged([blend, imagined], [kept, recent])


def write_config(tmp_path: Path, database: Path | str, keep_days: float | None) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"database": str(database), "retention": {"keep_days": keep_days},
                                    "providers": [{"name": "local", "type": "local"}]}))  # fmt: skip
    return str(path)


async def prune(config: str, *args: str) -> int:
    return await asyncio.to_thread(main, ["--config", config, "db", "prune", *args])


def rows(dumped: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {table: len(dumped[table]) for table in COPY_TABLES}


@pytest.fixture
def secret_url(database: Path | str) -> tuple[str, str | None]:
    """The store's location, with a password in it on PostgreSQL (which nothing may print)."""
    if not is_database_url(database):
        return str(database), None
    return with_password(str(database))


async def test_prune_now_and_its_dry_run(tmp_path: Path, database: Path | str,
                                         secret_url: tuple[str, str | None], root_logging: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    url, password = secret_url
    jobs = await aged(tmp_path, database)
    before = await dump(database)
    config = write_config(tmp_path, url, keep_days=30)

    assert await prune(config, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would remove 2 finished job(s) and 1 stored input(s)" in out
    assert await dump(database) == before  # nothing changed

    assert await prune(config) == 0
    out = capsys.readouterr().out
    assert f"removed 2 finished job(s) and 1 stored input(s) ({len(OLD_ONLY) / 1e6:.1f} MB)" in out
    assert password is None or password not in out
    after = await dump(database)
    gone = {
        "jobs": 2, "quota_ledger": 2, "callback_secrets": 1, "blobs": 1, "job_blobs": 2,
    }  # fmt: skip
    assert rows(after) == {t: n - gone.get(t, 0) for t, n in rows(before).items()}

    store = await JobStore.open(database)
    try:
        for job in jobs.old:
            assert await store.get(job.id) is None and await store.ledger.get(job.id) is None
        for job in jobs.new:
            assert await store.get(job.id) is not None and await store.ledger.get(job.id) is not None
        assert await store.callback_secret(jobs.new[1].id, "another") == "new-secret"
        loaded = await store.inputs.load(jobs.new[0].request)
        assert [image.data for image in loaded.images] == [SHARED, NEW_ONLY]
        assert not await store.inputs.exists(jobs.old[0].request.images[0].sha256 or "")
    finally:
        await store.close()

    assert await prune(config, "--older-than", "200d") == 0  # a longer period than the config's: none
    assert "removed 0 finished job(s) and 0 stored input(s)" in capsys.readouterr().out
    assert await prune(config, "--older-than", "1h", "--dry-run") == 0  # a shorter one: the newer jobs too
    assert "would remove 2 finished job(s) and 2 stored input(s)" in capsys.readouterr().out


async def test_keep_everything_refuses_without_a_period(tmp_path: Path, database: Path | str,
                                                        root_logging: None,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    jobs = await aged(tmp_path, database)
    before = await dump(database)
    config = write_config(tmp_path, database, keep_days=None)

    assert await prune(config) == ExitCode.REFUSED
    err = capsys.readouterr().err
    assert "retention.keep_days is null" in err and "--older-than" in err
    assert await prune(config, "--older-than", "soon") == ExitCode.REFUSED
    assert "'soon' is not a period" in capsys.readouterr().err
    assert await dump(database) == before

    assert await prune(config, "--older-than", "4w") == 0
    assert "removed 2 finished job(s) and 1 stored input(s)" in capsys.readouterr().out
    store = await JobStore.open(database)
    try:
        assert [await store.get(job.id) for job in jobs.old] == [None, None]
    finally:
        await store.close()
