"""`imagine-bot run` and one-shot CLI commands on one SQLite file, as the README's `docker compose exec`
section has them: each job is submitted once, whichever process takes it, and every CLI returns.

All start at the same moment on a fresh file (so they also migrate it together); the config has a
`webhooks:` section, whose port belongs to `run`: the CLIs must not try to bind it. `run` asks the
provider to call back; the CLIs, without a receiver, poll. Every process polls whatever is due, so
`run` also polls the CLIs' jobs, which no callback will ever finish: those must keep their own pace,
not `webhooks.poll_interval`'s (set far beyond the bound here).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.crash.harness import BOT, MJ_SECRET, Command, Process, all_shown, replies, spawn
from tests.fakes.mj_proxy import MjProxyFake
from tests.fakes.telegram_api import FakeUser, TelegramFake
from tests.net import free_port

pytestmark = pytest.mark.filterwarnings("ignore:unread_data:DeprecationWarning")  # see test_crash.py

CLI_PROMPTS = [f"shared cli {n} harbour at night" for n in range(3)]
CHAT_PROMPTS = [f"shared chat {n} harbour at night" for n in range(3)]
RETURN_WITHIN = 45.0  # bound on each CLI (its job takes about two seconds at the fake)
JOB_STEP = 0.3  # seconds between a task's changes at the fake (six changes)


def write_config(tmp_path: Path, telegram: TelegramFake, provider: MjProxyFake, port: int) -> Path:
    config: dict[str, Any] = {
        "database": str(tmp_path / "db" / "bot.sqlite3"),
        "default_provider": "mj",
        "providers": [{"name": "mj", "type": "mj_proxy", "base_url": provider.base_url, "api_key": MJ_SECRET,
                       "poll_interval": 0.2, "request_timeout": 1.0}],
        "telegram": {"token": "${TELEGRAM_TOKEN}", "base_url": f"{telegram.base_url}/bot",
                     "base_file_url": f"{telegram.base_url}/file/bot", "poll_timeout": 1},
        "webhooks": {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}",
                     "poll_interval": 300},
        "polling": {"idle_interval": 0.05, "backoff_base": 0.1, "backoff_max": 1.0, "reconcile_delay": 0.3},
        "media": {"allow_private_addresses": True},
    }  # fmt: skip
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def stored(database: Path) -> list[tuple[str, str, str, str | None]]:
    """(id, prompt, state, origin) of every job, read from the file as an operator would."""
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=10)) as db:
        try:
            return list(db.execute("SELECT id, json_extract(request, '$.prompt.text'), state, origin"
                                   " FROM jobs"))  # fmt: skip
        except sqlite3.OperationalError:  # not migrated yet
            return []


def integrity(database: Path) -> str:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def output(log: Path) -> str:
    return log.read_text(errors="replace")


async def finished(process: Process, log: Path, since: float) -> tuple[int | None, str]:
    """The CLI's exit code (None: it had not returned RETURN_WITHIN s after `since`), and its output."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(since + RETURN_WITHIN):
            await process.wait()
    code = process.returncode
    if code is None:
        process.kill()
        await process.wait()
    return code, output(log)


async def test_cli_processes_beside_run_submit_each_job_once_and_all_return(tmp_path: Path) -> None:
    async with TelegramFake(bot_username=BOT) as telegram, MjProxyFake(secret=MJ_SECRET, step=JOB_STEP) as mj:
        port = free_port()
        config = write_config(tmp_path, telegram, mj, port)
        database = tmp_path / "db" / "bot.sqlite3"
        people = [FakeUser(8001 + n, f"Sharer {n}") for n in range(len(CHAT_PROMPTS))]
        commands = [Command(person.id, telegram.send_text(person.id, person, f"/imagine {prompt}",
                                                          chat_type="private").message_id, prompt)
                    for person, prompt in zip(people, CHAT_PROMPTS, strict=True)]  # fmt: skip
        started = asyncio.get_running_loop().time()
        run = await spawn(config, telegram.token, tmp_path / "run.log")
        clis = [(await spawn(config, telegram.token, tmp_path / f"cli-{n}.log", "", "imagine", prompt,
                             "--out", str(tmp_path / f"out-{n}")), tmp_path / f"cli-{n}.log")
                for n, prompt in enumerate(CLI_PROMPTS)]  # fmt: skip
        try:
            # a CLI watching a job that `run` takes and finishes (Telegram's first command)
            chat_job = await telegram.wait_until(
                lambda: next((j for j, p, _, o in stored(database) if p == CHAT_PROMPTS[0] and o), None),
                within=RETURN_WITHIN)  # fmt: skip
            waiter_log = tmp_path / "cli-wait.log"
            waiter = await spawn(config, telegram.token, waiter_log, "", "wait", chat_job,
                                 "--out", str(tmp_path / "out-wait"))  # fmt: skip
            watched = [*clis, (waiter, waiter_log)]
            results = [await finished(process, log, started) for process, log in watched]
            await telegram.wait_until(lambda: all_shown(telegram, commands), within=RETURN_WITHIN)
            assert run.returncode is None, output(tmp_path / "run.log")  # `run` kept serving
            run.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                assert await run.wait() == 0, output(tmp_path / "run.log")
        finally:
            for process in [run, *(p for p, _ in clis)]:
                if process.returncode is None:
                    process.kill()
                    await process.wait()

    for code, printed in results:
        assert code is not None, f"still running {RETURN_WITHIN:.0f} s after it started:\n{printed}"
        assert code == 0, printed
        assert "address already in use" not in printed.lower() and "Traceback" not in printed
        assert re.search(r"^wrote .+-grid\.png$", printed, re.MULTILINE), printed
    jobs = stored(database)
    assert sorted(p for _, p, _, _ in jobs) == sorted(CLI_PROMPTS + CHAT_PROMPTS)  # one job per prompt
    assert {state for _, _, state, _ in jobs} == {"succeeded"}
    tasks = Counter(task.data["prompt"] for task in mj.tasks.values())
    submits = Counter(r.body["prompt"] for r in mj.submitted("imagine"))
    assert tasks == submits == Counter(CLI_PROMPTS + CHAT_PROMPTS)  # each submitted once, by one process
    assert all(len(replies(telegram, command)) == 1 for command in commands)
    assert integrity(database) == "ok"
    assert "address already in use" not in output(tmp_path / "run.log").lower()
