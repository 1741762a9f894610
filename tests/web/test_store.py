"""The web surface's rows on both engines (SQLite and PostgreSQL): a link's one use, sessions, the
signing secret stored once for every worker, a chat's jobs through its ledger scope."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.domain import Job, Owner
from bot.store import JobStore
from bot.store.web import WebSession
from providers.base import Action, GenerationRequest, PromptParams


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


async def test_every_chat_with_its_job_count_the_busiest_lately_first(two: tuple[JobStore, JobStore]) -> None:
    first, second = two

    def job(job_id: str) -> Job:
        return Job(id=job_id, kind=Action.IMAGINE, provider="local",
                   request=GenerationRequest(prompt=PromptParams(text="a fox")),
                   owner=Owner(platform="telegram", user_id="101"), created_at=0, updated_at=0, deadline=100)

    charges = [("j1", "telegram:-100", 1000.0), ("j2", "telegram:-100", 1001.0), ("j3", "discord:55", 1005.0),
               ("j4", None, 1010.0)]  # j4: a private chat, counted under no chat
    for job_id, scope, at in charges:
        assert await first.ledger.charge(job(job_id), scope, 1.0, False, at)
    chats = await second.web.chats()
    assert [(c.scope, c.jobs, c.last_at) for c in chats] == [("discord:55", 1, 1005.0),
                                                              ("telegram:-100", 2, 1001.0)]
    assert [c.scope for c in await second.web.chats(limit=1)] == ["discord:55"]
