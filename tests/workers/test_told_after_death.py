"""A worker that stores a job's final and is SIGKILLed before it tells anyone: the worker showing the
job's chat shows the final all the same, since the database announces a change in the transaction that
stores it (bot/events.py), not the worker after it.

Two `imagine-bot run` workers on one PostgreSQL, Telegram in webhook mode and the midjourney-proxy fake,
which calls back on every change of a task. Telegram's updates reach w0 (so it takes the chat); the
provider's callbacks reach w1, armed to die (`final_stored=kill`) right after it stores a final, before
its own listeners hear of it. Jobs with callbacks are polled only every 10 minutes here, so nothing but
the callback w1 took can bring the result.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import asyncpg
import yaml

from tests import postgres
from tests.fakes.mj_proxy import MjProxyFake
from tests.fakes.telegram_api import FakeUser, TelegramFake
from tests.net import RoundRobin, free_port
from tests.workers.chats import Place, Senders, Sent, telegram_final, telegram_finals_sent, telegram_replies
from tests.workers.harness import (
    BOT,
    FLOOD,
    MJ_SECRET,
    TIME_SCALE,
    Plan,
    WorkerProcess,
    ready,
    spawn,
    worker_config,
)

PLAN = Plan(workers=2, job_step=0.2, callback_poll=600.0, heartbeat=0.5, lease=5.0)
GROUP = Place("telegram", -1002000000777, "supergroup")


async def test_a_final_stored_by_a_worker_killed_at_once_is_shown_by_the_chats_worker(tmp_path: Path) -> None:
    telegram = TelegramFake(bot_username=BOT, time_scale=TIME_SCALE, flood_limits=FLOOD)
    w0, w1 = (WorkerProcess(f"w{n}", free_port(), tmp_path / f"w{n}.yaml") for n in range(2))
    Senders([w0, w1]).watch(telegram, None)  # which worker made each Telegram call
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(telegram)
        mj = await stack.enter_async_context(MjProxyFake(secret=MJ_SECRET, step=PLAN.job_step))
        url = await stack.enter_async_context(postgres.database())
        router = await stack.enter_async_context(RoundRobin([w1.url], pinned={"/updates/": w0.url}))
        for n, worker in enumerate((w0, w1)):
            config = worker_config(PLAN, n, worker.port, database=url, public_url=router.url,
                                   workdir=tmp_path, telegram=telegram, discord=None, mj=mj)  # fmt: skip
            worker.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        tokens = {"TELEGRAM_TOKEN": telegram.token, "MJ_API_KEY": MJ_SECRET}
        await spawn(w0, tmp_path, tokens)
        await spawn(w1, tmp_path, {**tokens, "IMAGINE_BOT_FAULTS": "final_stored=kill"})
        try:
            await asyncio.gather(ready(w0), ready(w1))
            await telegram.wait_until(lambda: telegram.webhook is not None, within=30)
            person = FakeUser(9100, "Person")
            command = telegram.send_text(GROUP.chat_id, person, "/imagine a lighthouse", chat_type=GROUP.kind)
            sent = Sent(GROUP, "a lighthouse", 0.0, message_id=command.message_id)
            assert w1.process is not None
            assert await asyncio.wait_for(w1.process.wait(), 60) == -signal.SIGKILL
            assert "SIGKILL at final_stored" in w1.logs[-1].read_text()
            final = lambda: any(telegram_final(m) for m in telegram_replies(telegram, sent))  # noqa: E731
            await telegram.wait_until(final, within=30)
        finally:
            for worker in (w0, w1):
                if worker.process is not None and worker.process.returncode is None:
                    worker.process.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(worker.process.wait(), 30)
        connection = await asyncpg.connect(url)
        try:
            job = await connection.fetchrow("SELECT state, delivered_state, message_id FROM jobs")
            holder = await connection.fetchval("SELECT holder FROM leases WHERE name = $1", GROUP.lease)
        finally:
            await connection.close()
    replies = telegram_replies(telegram, sent)
    assert [m.message_id for m in replies] == [int(job["message_id"])]  # one message for the job ...
    made_final_by = telegram_finals_sent(telegram, GROUP.chat_id, replies[0].message_id)
    assert made_final_by == ["w0"]  # ... made final once, by the worker showing the chat
    assert (job["state"], job["delivered_state"]) == ("succeeded", "succeeded")
    assert holder is None  # w0 handed its chat back as it stopped (w1 never held it)
