"""Bursts against the flood limits, 429s, and a restart in the middle of a job."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.access import Caller
from bot.app import build_app, running
from bot.config import AppConfig
from bot.domain import Job, JobState, Owner, Placement
from bot.store import JobStore
from tests.fakes.telegram_api import FakeUser, TelegramFake
from tests.telegram_frontend.conftest import ANN, GROUP, BotFactory, labels, make_config, serving

GRID_ROWS = [["U1", "U2", "U3", "U4"], ["V1", "V2", "V3", "V4", "🔄"]]


async def test_twenty_imagines_at_once_in_one_group(make_bot: BotFactory) -> None:
    async with make_bot(local={"duration": 0.4}) as bot:
        fake = bot.fake
        fake.inject_429(times=2, retry_after=1, method="editMessageMedia")  # and two 429s on top
        people = [FakeUser(1000 + n, f"Artist {n}") for n in range(20)]
        commands = [fake.send_text(GROUP, person, f"/imagine castle number {n}")
                    for n, person in enumerate(people)]  # fmt: skip
        replies = await fake.wait_until(
            lambda: len(found := [m for c in commands for m in bot.replies(GROUP, c.message_id)]) == 20
            and found, within=30)  # fmt: skip
        for reply in replies:
            await bot.finished(GROUP, reply.message_id, within=30)
        await bot.settled()

        for n, (command, reply) in enumerate(zip(commands, replies, strict=True)):
            message = fake.message(GROUP, reply.message_id)
            assert reply.reply_to_message_id == command.message_id
            assert labels(message) == GRID_ROWS and message.photo
            assert (message.caption or "").startswith(f"castle number {n}\nlocal · Artist {n} · job ")
            assert (await bot.job(GROUP, message)).state is JobState.SUCCEEDED
        injected = [r for r in fake.rate_limited if r[0] == "editMessageMedia" and r[2] == 1]
        assert len(injected) >= 2  # the injected ones were answered ...
        stats = bot.frontend.outbox.delivery.stats
        assert stats.retried >= 2 and stats.failed == 0  # ... and waited out, nothing lost
        flood = [r for r in fake.rate_limited if r not in injected[:2]]
        assert flood == [], fake.rate_limited  # pacing kept every other send inside Telegram's windows
        # one message per job; past the first five (telegram.congestion_jobs) the chat is congested:
        # those jobs got no placeholder, their one message is their result, and one status message
        # said how many were in the works
        jobs = [m for m in fake.bot_messages(GROUP) if m.reply_to_message_id]
        assert len(jobs) == 20
        status = [m for m in fake.bot_messages(GROUP) if not m.reply_to_message_id]
        assert [m.text for m in status] == ["✅ Every job asked for here has its message."]
        media_edits = [c for c in fake.calls("editMessageMedia") if c.get("chat_id") == GROUP]
        assert len(media_edits) <= 5 + 2  # only the first five were edited to their grid (+ two 429s)


async def test_a_429_storm_on_progress_still_delivers_the_final_grid(make_bot: BotFactory) -> None:
    async with make_bot(local={"duration": 0.4}) as bot:
        fake = bot.fake
        command = fake.send_text(ANN.id, ANN, "/imagine a stormy sea")
        reply = await bot.reply(ANN.id, command.message_id)
        fake.inject_429(times=6, retry_after=2)
        grid = await bot.finished(ANN.id, reply.message_id)
        assert labels(grid) == GRID_ROWS
        assert bot.frontend.outbox.delivery.stats.retried >= 6


async def test_a_restart_mid_job_finishes_the_message_and_old_buttons_work(tmp_path: Path,
                                                                          fake: TelegramFake) -> None:
    config = make_config(tmp_path, fake, local={"duration": 1.5})
    async with serving(config, fake) as first:
        done = await first.reply(GROUP, fake.send_text(GROUP, ANN, "/imagine before the restart").message_id)
        await first.finished(GROUP, done.message_id)
        command = fake.send_text(GROUP, ANN, "/imagine across the restart")
        running = await first.reply(GROUP, command.message_id)
        await first.until(GROUP, running.message_id, lambda m: "Running ·" in (m.caption or ""))
        job = await first.job(GROUP, running)
    assert not (await _stored(config, job.id)).terminal  # stopped mid-job

    async with serving(config, fake) as second:
        grid = await second.finished(GROUP, running.message_id)
        assert labels(grid) == GRID_ROWS and (grid.caption or "").startswith("across the restart\n")
        for message in (done, running):  # buttons on messages sent before the restart
            fake.press(GROUP, message.message_id, ANN, text="U4")
        for message in (done, running):
            child = await second.finished(GROUP, (await second.reply(GROUP, message.message_id)).message_id)
            assert (await second.job(GROUP, child)).index == 4
        assert (await second.job(GROUP, grid)).state is JobState.SUCCEEDED


async def test_a_job_that_ended_while_the_bot_was_down_gets_one_reply_then_its_grid(
        tmp_path: Path, fake: TelegramFake) -> None:
    """Its first reply shows it finishing, without buttons: a crash before the store has that reply's
    message id makes the next start send another, and the orphan must not be a second grid."""
    config = make_config(tmp_path, fake)
    command = fake.send_text(GROUP, ANN, "/imagine finished in the dark")
    placement = Placement(platform="telegram", chat_id=str(GROUP), reply_to=str(command.message_id))
    async with build_app(config) as app, running(app):  # the job runs with no Telegram frontend up
        owner = Owner(platform="telegram", user_id=str(ANN.id))  # made from the command, as a frontend
        job = await app.service.imagine(Caller(owner), "finished in the dark", placement=placement,  # killed
                                        origin=f"telegram:{fake.last_update_id}")  # before it replied
        for _ in range(600):
            if (job := await app.service.get(job.id)).terminal:
                break
            await asyncio.sleep(0.05)
        assert job.state is JobState.SUCCEEDED and job.placement and job.placement.message_id is None

    async with serving(config, fake) as bot:
        reply = await bot.reply(GROUP, command.message_id)
        grid = await bot.finished(GROUP, reply.message_id)
        store = bot.app.store  # the command, received again, was processed as the job it had made
        await fake.wait_until(lambda: fake.pending_updates == 0)
        for _ in range(200):
            if not await store.inbox_pending("telegram"):
                break
            await asyncio.sleep(0.05)
        assert [j.id for j in await store.recent()] == [job.id]
    first = [call for call in fake.calls("sendPhoto") if call.get("caption", "").startswith("finished")]
    assert len(first) == 1 and "Running · 100%" in first[0]["caption"]
    assert "U1" not in str(first[0].get("reply_markup"))  # the first reply has no buttons ...
    assert labels(grid) == GRID_ROWS  # ... the edit brings the grid and them
    assert [m.message_id for m in fake.bot_messages(GROUP)] == [reply.message_id]


async def _stored(config: AppConfig, job_id: str) -> Job:
    store = await JobStore.open(config.database)
    try:
        job = await store.get(job_id)
        assert job is not None
        return job
    finally:
        await store.close()
