"""SIGTERM in the middle of a job, then a restart: the process exits cleanly, the job waits in the store,
and the next process brings the same chat message to its final grid (one job, one provider task)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.bot_process import running_bot, stop, telegram_section, write_config
from tests.fakes.telegram_api import FakeMessage, TelegramFake
from tests.telegram_frontend.conftest import ANN, BOT, labels


def replies_to(fake: TelegramFake, message_id: int) -> list[FakeMessage]:
    return [m for m in fake.bot_messages(ANN.id) if m.reply_to_message_id == message_id]


def jobs(tmp_path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
        return db.execute("SELECT state, message_id, provider_task_id FROM jobs").fetchall()


async def test_sigterm_mid_job_then_restart_completes_the_same_message(tmp_path: Path) -> None:
    async with TelegramFake(bot_username=BOT) as fake:
        path = write_config(tmp_path, duration=4.0, poll_interval=0.2, telegram=telegram_section(fake))
        async with running_bot(path, TELEGRAM_TOKEN=fake.token) as first:
            await fake.wait_until(lambda: fake.calls("getUpdates"), within=30)
            command = fake.send_text(ANN.id, ANN, "/imagine a lighthouse through a restart",
                                     chat_type="private")
            [reply] = await fake.wait_until(lambda: replies_to(fake, command.message_id), within=20)
            await fake.wait_until(lambda: "%" in (fake.message(ANN.id, reply.message_id).caption or ""),
                                  within=20)  # fmt: skip
            await stop(first)
        [(state, message_id, task_id)] = jobs(tmp_path)
        assert state in ("submitted", "running") and message_id == str(reply.message_id)
        assert not fake.message(ANN.id, reply.message_id).keyboard  # not finished before the stop

        async with running_bot(path, TELEGRAM_TOKEN=fake.token) as second:
            final = await fake.wait_until(
                lambda: (m := fake.message(ANN.id, reply.message_id)).keyboard and m, within=30)
            log = await stop(second)
        assert labels(final)[0] == ["U1", "U2", "U3", "U4"] and final.photo
        assert jobs(tmp_path) == [("succeeded", str(reply.message_id), task_id)]  # resumed, not resubmitted
        assert len(replies_to(fake, command.message_id)) == 1
        assert fake.token not in log
        assert fake.violations == []
