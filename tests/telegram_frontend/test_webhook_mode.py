"""Telegram updates by webhook (`telegram.mode: webhook`) on the bot's webhook server, and several
workers on one PostgreSQL: any worker takes an update, the chat's worker processes it and shows the
chat; only one worker long-polls in polling mode."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.config import AppConfig
from bot.telegram_frontend.app import TelegramFrontend
from bot.telegram_frontend.updates import SECRET_HEADER, webhook_secret
from tests import postgres
from tests.fakes.telegram_api import TelegramFake
from tests.net import RoundRobin, free_port
from tests.telegram_frontend.conftest import ANN, BOB, GROUP, Bot, make_config, serving


def hooked(tmp_path: Path, fake: TelegramFake, public_url: str, port: int, **top: Any) -> AppConfig:
    return make_config(tmp_path, fake, telegram={"mode": "webhook"},
                       webhooks={"listen": f"127.0.0.1:{port}", "public_url": public_url}, **top)


def worker(config: AppConfig, fake: TelegramFake, shown: dict[str, set[str]] | None = None
           ) -> contextlib.AbstractAsyncContextManager[Bot]:
    """A bot serving Telegram until the block ends. `shown`: chat id -> ids of the workers that sent
    or queued a message there (recorded at the outbox's two doors)."""
    return serving(config, fake, prepare=(lambda app, frontend: _record(frontend, app.worker.id, shown))
                   if shown is not None else None)


def _record(frontend: TelegramFrontend, worker_id: str, shown: dict[str, set[str]]) -> None:
    outbox, delivery = frontend.outbox, frontend.outbox.delivery
    paced, push = outbox.paced, delivery.push

    async def paced_here(chat_id: int, call: Any) -> Any:
        shown[str(chat_id)].add(worker_id)
        return await paced(chat_id, call)

    def push_here(chat_key: str, *args: Any, **kwargs: Any) -> None:
        shown[chat_key].add(worker_id)
        push(chat_key, *args, **kwargs)

    outbox.paced = paced_here  # type: ignore[method-assign]
    delivery.push = push_here  # type: ignore[method-assign]


async def test_updates_come_by_webhook_and_a_spoofed_update_changes_nothing(
        fake: TelegramFake, tmp_path: Path) -> None:
    port = free_port()
    config = hooked(tmp_path, fake, f"http://127.0.0.1:{port}", port)
    async with worker(config, fake) as bot:
        assert fake.webhook is not None and fake.webhook.url == f"http://127.0.0.1:{port}/updates/telegram"
        assert fake.webhook.secret_token == webhook_secret(fake.token)
        command = fake.send_text(GROUP, ANN, "/imagine a lighthouse by webhook")
        reply = await bot.reply(GROUP, command.message_id)
        await bot.finished(GROUP, reply.message_id)
        assert fake.calls("getUpdates") == []

        forged = {"update_id": 999_001, "message": {
            "message_id": 5000, "date": 1, "chat": {"id": GROUP, "type": "supergroup", "title": "Artists"},
            "from": {"id": BOB.id, "is_bot": False, "first_name": "Bob"}, "text": "/imagine forged",
            "entities": [{"type": "bot_command", "offset": 0, "length": 8}]}}  # fmt: skip
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: webhook_secret("another-token")}):
                async with http.post(f"http://127.0.0.1:{port}/updates/telegram", json=forged,
                                     headers=headers) as answer:
                    assert answer.status == 403
        await asyncio.sleep(0.3)
        jobs = await bot.app.service.recent(limit=10)
        assert [job.request.prompt.text for job in jobs if job.request.prompt] == ["a lighthouse by webhook"]
        assert await bot.app.store.inbox_pending("telegram") == []
        assert all(m.reply_to_message_id != 5000 for m in fake.bot_messages(GROUP))


async def test_two_workers_behind_a_balancer_each_chat_shown_by_one(fake: TelegramFake, tmp_path: Path
                                                                    ) -> None:
    ports = [free_port(), free_port()]
    shown: dict[str, set[str]] = defaultdict(set)
    async with postgres.database() as url, RoundRobin([f"http://127.0.0.1:{p}" for p in ports]) as balancer:
        configs = [hooked(tmp_path, fake, balancer.url, port, database=url,
                          workers={"id": f"worker-{i}", "heartbeat": 0.2, "lease": 1.0})
                   for i, port in enumerate(ports)]  # fmt: skip
        async with worker(configs[0], fake, shown) as first, worker(configs[1], fake, shown):
            commands = [fake.send_text(chat, user, f"/imagine picture {n} in {chat}")
                        for n in range(4) for chat, user in ((GROUP, ANN), (BOB.id, BOB))]  # fmt: skip
            for command in commands:
                reply = await first.reply(command.chat_id, command.message_id, within=20)
                await first.finished(command.chat_id, reply.message_id, within=20)
            assert all(len(first.replies(c.chat_id, c.message_id)) == 1 for c in commands)  # one reply each
            assert min(balancer.served.values()) >= 1  # both workers took updates
            assert await first.app.store.inbox_pending("telegram") == []
            assert len(await first.app.service.recent(limit=50)) == len(commands)  # one job each
        assert {chat: len(workers) for chat, workers in shown.items()} == {str(GROUP): 1, str(BOB.id): 1}
        assert fake.rate_limited == []


async def test_a_second_polling_worker_refuses_to_poll_until_the_first_is_gone(
        fake: TelegramFake, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with postgres.database() as url:
        configs = [make_config(tmp_path, fake, database=url,
                               workers={"id": f"poller-{i}", "heartbeat": 0.2, "lease": 1.0}) for i in (0, 1)]
        async with contextlib.AsyncExitStack() as first_life, contextlib.AsyncExitStack() as second_life:
            await first_life.enter_async_context(worker(configs[0], fake))
            with caplog.at_level(logging.INFO, logger="bot.telegram_frontend.updates"):
                second = await second_life.enter_async_context(worker(configs[1], fake))
                refusal = [r.getMessage() for r in caplog.records if "long-polls" in r.getMessage()]
                assert refusal == ["telegram: worker poller-0 already long-polls getUpdates and Telegram "
                                   "allows only one; this worker does not poll (it still shows its chats). "
                                   "Use telegram.mode: webhook to share updates among workers."]
                await first_life.aclose()  # a clean stop hands the poll lease back
                await fake.wait_until(lambda: any("polls from now on" in r.getMessage()
                                                  for r in caplog.records), 10)
            command = fake.send_text(GROUP, ANN, "/imagine after the hand-over")
            reply = await second.reply(GROUP, command.message_id, within=20)
            await second.finished(GROUP, reply.message_id, within=20)
