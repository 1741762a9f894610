"""The web surface's rows on both engines (SQLite and PostgreSQL): a link's one use, sessions, the
signing secret stored once for every worker, a chat's jobs through its ledger scope."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store import JobStore
from bot.store.web import WebSession


@pytest.fixture
async def two(database: Path | str) -> AsyncIterator[tuple[JobStore, JobStore]]:
    """Two stores on one database: two workers (or a worker before and after a restart)."""
    first = await JobStore.open(database)
    second = await JobStore.open(database)
    yield first, second
    await first.close()
    await second.close()


def session(sid: str, user: str = "101", expires: float = 2000.0) -> WebSession:
    return WebSession(sid, "telegram", user, "Ada", None, "-100", True, False, 1000.0, expires)


async def test_a_link_is_used_once_across_workers(two: tuple[JobStore, JobStore]) -> None:
    first, second = two
    results = await asyncio.gather(first.web.use_link("n1", 1000.0, 1600.0),
                                   second.web.use_link("n1", 1000.0, 1600.0))
    assert sorted(results) == [False, True]
    assert not await first.web.use_link("n1", 1001.0, 1600.0)
    assert await second.web.use_link("n2", 1001.0, 1600.0)


async def test_the_secret_is_stored_once(two: tuple[JobStore, JobStore]) -> None:
    first, second = two
    kept = await first.web.secret("first-candidate")
    assert kept == "first-candidate"
    assert await second.web.secret("second-candidate") == "first-candidate"
    assert await first.ops.all("*") == {}  # not among the settings limits and pauses read


async def test_sessions_live_until_they_expire_or_are_revoked(two: tuple[JobStore, JobStore]) -> None:
    first, second = two
    await first.web.add_session(session("a" * 64))
    await first.web.add_session(session("b" * 64, user="202"))
    await first.web.add_session(session("c" * 64, expires=1500.0))
    got = await second.web.session("a" * 64, 1200.0)
    assert got == session("a" * 64)
    assert [s.id[0] for s in await second.web.sessions(1600.0)] == ["a", "b"]
    assert await second.web.session("c" * 64, 1600.0) is None  # expired
    assert await second.web.revoke_prefix("bbbbbbbb", 1700.0) == 1
    assert await first.web.session("b" * 64, 1700.0) is None
    assert await first.web.revoke_user("telegram", "101", 1700.0) == 2  # the expired one too
    assert await first.web.sessions(1700.0) == []
    await first.web.prune(3000.0)
