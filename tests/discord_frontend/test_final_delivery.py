"""The record of which finished jobs' messages show their final state (what a restart re-sends)."""

from __future__ import annotations

import time
from pathlib import Path

import aiosqlite

from bot.domain import Job, JobState, Owner, Placement
from bot.store import JobStore
from bot.store.migrations import SQLITE as MIGRATIONS
from providers.base import Action, GenerationRequest, PromptParams
from tests.discord_frontend.conftest import Discord


def job(job_id: str, state: JobState, message_id: str | None = "7") -> Job:
    now = time.time()
    placement = Placement(platform="discord", chat_id="5", message_id=message_id)
    return Job(id=job_id, kind=Action.IMAGINE, provider="local", state=state,
               request=GenerationRequest(prompt=PromptParams(text="a fox")),
               owner=Owner(platform="discord", user_id="1", name="Alice"), placement=placement,
               created_at=now, updated_at=now, deadline=now + 100)


DELIVERED_STATE = 4  # the migrations before the one that added `delivered_state`


async def test_jobs_finished_before_the_upgrade_count_as_delivered(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = await aiosqlite.connect(path, isolation_level=None)  # the schema of the previous release
    try:
        for number, script in enumerate(MIGRATIONS[:DELIVERED_STATE], start=1):
            await db.executescript(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")
        await db.execute(
            "INSERT INTO jobs (id, kind, provider, request, state, owner_platform, owner_id, chat_platform,"
            " chat_id, message_id, created_at, updated_at, deadline) VALUES ('done', 'imagine', 'local',"
            " ?, 'succeeded', 'discord', '1', 'discord', '10', '20', 1, 1, 100)",
            (GenerationRequest(prompt=PromptParams(text="a fox")).model_dump_json(),))
    finally:
        await db.close()
    store = await JobStore.open(path)  # upgrades
    try:
        assert await store.undelivered("discord", 0) == []
        await store.insert(job("running", JobState.RUNNING))
        await store.insert(job("unplaced", JobState.RUNNING, message_id=None))
        for job_id in ("running", "unplaced"):
            stored = await store.get(job_id)
            assert stored is not None
            assert await store.save(stored.model_copy(update={"state": JobState.FAILED})) is not None
        assert [j.id for j in await store.undelivered("discord", 0)] == ["running"]  # shown, not updated
        assert await store.undelivered("telegram", 0) == []
        await store.mark_delivered("running", JobState.FAILED)
        assert await store.undelivered("discord", 0) == []
    finally:
        await store.close()


async def test_the_bot_stops_taking_commands_once_it_is_stopping(discord_env: Discord) -> None:
    d = discord_env
    d.bot.frontend.client.handlers.stopping = True  # what serve() sets before draining the edits
    await d.command("imagine", {"prompt": "too late"})
    await d.told(lambda text: text == "The bot is restarting; try again in a minute.")
    assert d.public() == [] and await d.bot.app.service.recent() == []
