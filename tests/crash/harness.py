"""The crash harness: `imagine-bot run` as a child process, SIGKILLed again and again, then restarted.

The fakes (the Telegram Bot API and a provider) are served from this process on 127.0.0.1, so they
outlive every bot process and remember what each one did. /imagine commands (each with its own prompt)
arrive in several chats while the bot lives, dies and starts again. Each life of the process ends in a
SIGKILL, either at a random moment or at a fault point armed through `IMAGINE_BOT_FAULTS` (bot/faults.py:
a platform update committed but not processed, a job stored but not replied to, a reply sent but not
recorded, a submit claimed but not sent, a submit answered but not recorded). Some lives also get a
provider submit that creates its task and never answers (the bot's `request_timeout` runs out). A
last life, without faults, runs until every command shows its result; then a SIGTERM stops it.

`analyse` then reads what each side holds, as a person, an operator and the provider would see it:
the chats (tests/fakes/telegram_api.py), the SQLite file (sqlite3, the jobs and quota_ledger tables)
and the provider fake's tasks. Nothing here retries on the bot's behalf or tidies up after it: a lost
command or a duplicated task shows up in the `Report`.

Used by tests/crash/test_crash.py (small plans, run in CI) and bench/crash.py (200 jobs and more).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import asyncpg
import yaml
from aiohttp import web

from tests.fakes._server import HANG_AFTER_CREATE
from tests.fakes.mj_proxy import MjProxyFake
from tests.fakes.telegram_api import FakeMessage, FakeUser, TelegramFake

ROOT = Path(__file__).resolve().parents[2]
BOT = "imagine_crash_bot"
MJ_SECRET = "crash-secret"
TIME_SCALE = 0.02  # the fake's flood windows, and the bot's pacing with them (see tests/telegram_frontend)
#: The windows a kill can fall into, in the order a command passes them (bot/faults.py).
FAULT_POINTS = ("inbox_committed", "job_created", "reply_sent", "submit_claimed", "submit_sent")
GROUP = -1001777000111
Provider = Literal["mj_proxy", "local"]
Process = asyncio.subprocess.Process
Say = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What to do to the bot: how many commands, how many deaths and of which kind."""

    provider: Provider = "mj_proxy"
    jobs: int = 48
    random_kills: int = 5  # lives ended by a SIGKILL at a random moment
    faults: tuple[str, ...] = FAULT_POINTS  # one life per point, ended by a SIGKILL there
    hangs: int = 2  # submits the provider serves but never answers (mj_proxy only)
    chats: int = 6  # five private chats and a group, round-robin
    job_seconds: float = 0.5  # how long a task takes at the provider
    # what mj_proxy's GET /mj/task/list (reconcile) holds: trueai's newest 100 tasks (the fake's
    # default), or None for every task, as novicezk serves it
    list_limit: int | None = 100
    seed: int = 1
    settle_within: float = 120.0  # bound on the last life showing every result
    fault_within: float = 25.0  # bound on an armed point being reached

    @property
    def kills(self) -> int:
        return self.random_kills + len(self.faults)


@dataclass(frozen=True)
class Life:
    """One bot process from its start to its death."""

    fault: str | None  # "point=kill@N", or None: killed at `kill_after` (the last life: stopped)
    kill_after: float | None
    commands: int  # new commands sent while it starts and runs
    hang: bool  # the provider holds back the answer to the next submit


@dataclass(frozen=True)
class Command:
    chat_id: int
    message_id: int
    prompt: str


@dataclass
class Report:
    """What the chats, the store and the provider hold after the run."""

    provider: Provider
    jobs: int  # commands sent
    kills: Counter[str] = field(default_factory=Counter)  # by point, or "random"
    unfired: list[str] = field(default_factory=list)  # armed faults the process never reached
    other_deaths: list[int] = field(default_factory=list)  # exit codes of lives that ended otherwise
    hangs: int = 0  # submits that were served but never answered
    lost: list[str] = field(default_factory=list)  # prompts without a job
    duplicated_jobs: list[str] = field(default_factory=list)  # prompts with more than one job
    not_succeeded: dict[str, str] = field(default_factory=dict)  # prompt -> state
    shown_once: int = 0  # commands whose result the message the store has shows (and no other but orphans)
    #: results also on an orphan: a first reply that was itself the result, sent by a life killed
    #: between Telegram's answer and the store's write of its message id
    orphaned_results: int = 0
    never_shown: list[str] = field(default_factory=list)
    shown_twice: list[str] = field(default_factory=list)
    wrong_message: list[str] = field(default_factory=list)  # the final is not the message the store has
    wrong_language: list[str] = field(default_factory=list)  # a final not in its asker's language
    duplicate_first_replies: int = 0  # extra bot replies to one command (a placeholder sent again)
    #: how the lives that sent those extra replies ended (the reply went out, the kill came before the
    #: store had its message id): at the reply_sent point, or elsewhere while replies were in flight
    duplicates_by_death: Counter[str] = field(default_factory=Counter)
    replied_twice_in_one_life: list[str] = field(default_factory=list)  # only a kill may cause a repeat
    duplicated_submits: list[str] | None = None  # prompts the provider got twice (None: local, in-process)
    provider_tasks: int | None = None
    double_charges: int = 0  # commands charged more than once
    uncharged: list[str] = field(default_factory=list)  # jobs without a ledger row
    refunded_successes: list[str] = field(default_factory=list)
    integrity: str = ""
    unconfirmed_updates: int = 0  # updates Telegram still holds (never confirmed by an offset)
    final_exit: int | None = None  # exit code of the SIGTERMed last life
    tracebacks: int = 0  # tracebacks in the logs of all lives
    wall: float = 0.0

    @property
    def kill_count(self) -> int:
        return sum(self.kills.values())

    def rows(self) -> list[tuple[str, str]]:
        """The figures as (metric, value), for a table."""
        dup = "n/a (in-process)" if self.duplicated_submits is None else str(len(self.duplicated_submits))
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.kills.items()))
        deaths = ", ".join(f"{k} {n}" for k, n in sorted(self.duplicates_by_death.items()))
        by_death = f" (sent by lives killed at: {deaths})" if deaths else ""
        return [
            ("jobs (/imagine commands)", str(self.jobs)),
            ("kills (SIGKILL)", f"{self.kill_count} ({kinds})"),
            ("hung submits (served, never answered)", str(self.hangs)),
            ("lost commands", str(len(self.lost))),
            ("commands with two jobs", str(len(self.duplicated_jobs))),
            ("jobs not succeeded", str(len(self.not_succeeded))),
            ("duplicated provider submits", dup),
            ("double charges", str(self.double_charges)),
            ("results shown in the job's message", f"{self.shown_once}/{self.jobs}"),
            ("results also on an orphan first reply", str(self.orphaned_results)),
            ("duplicate first replies", f"{self.duplicate_first_replies}{by_death}"),
            ("integrity_check", self.integrity),
            ("tracebacks in the bot's logs", str(self.tracebacks)),
            ("wall time", f"{self.wall:.1f} s"),
        ]


# -- the fakes and the config --------------------------------------------------------------------


RUSSIAN_CHAT = 7001  # the private chat of the person whose app is in Russian (see `_users`)
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def _users(chats: int) -> list[tuple[int, FakeUser]]:
    """(chat id, sender): private chats, and a group with two members as the last chat."""
    # the first person's app is in Russian: their jobs' messages are too, across every kill
    people = [FakeUser(7001 + n, f"Crash {n}", language_code="ru" if n == 0 else None)
              for n in range(max(1, chats))]
    places = [(person.id, person) for person in people[: max(1, chats - 1)]]
    if chats > 1:
        places.append((GROUP, people[-1]))
    return places


def write_config(workdir: Path, plan: Plan, telegram: TelegramFake, provider: MjProxyFake | None,
                 database: str | Path) -> Path:
    """The bot's config: the fakes' URLs, pacing scaled like the fake's windows, short timeouts (a
    submit's claim lasts its request_timeout and a little more: then a new life reconciles it)."""
    scale = TIME_SCALE * 1.5
    if provider is not None:
        # clock_slack: the fake shares this machine's clock. With the default 60 s, a task list that
        # holds 100 tasks all younger than a minute can't show a submit made nothing (the harness
        # submits 200 in about 70 s): reconcile "cannot tell" until the job's deadline.
        entry: dict[str, Any] = {
            "name": "mj", "type": "mj_proxy", "base_url": provider.base_url, "api_key": MJ_SECRET,
            "poll_interval": 0.2, "request_timeout": 1.0, "max_concurrency": 100, "clock_slack": 1.0,
        }  # fmt: skip
    else:
        entry = {"name": "local", "type": "local", "duration": plan.job_seconds, "poll_interval": 0.1,
                 "grid_size": 256, "max_concurrency": 100, "request_timeout": 1.0}  # fmt: skip
    config = {
        "database": str(database),
        "default_provider": entry["name"],
        "providers": [entry],
        "telegram": {
            "token": "${TELEGRAM_TOKEN}", "base_url": f"{telegram.base_url}/bot",
            "base_file_url": f"{telegram.base_url}/file/bot", "poll_timeout": 1,
            "chat_rate": {"count": 1, "period": 1.0 * scale},
            "group_rate": {"count": 20, "period": 60.0 * scale},
            "global_rate": {"count": 30, "period": 1.0 * scale},
        },
        "polling": {"idle_interval": 0.05, "backoff_base": 0.1, "backoff_max": 1.0, "reconcile_delay": 0.3},
        "media": {"allow_private_addresses": True},
    }  # fmt: skip
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextlib.asynccontextmanager
async def _provider_fake(plan: Plan) -> AsyncIterator[MjProxyFake | None]:
    if plan.provider == "local":
        yield None
        return
    async with MjProxyFake(secret=MJ_SECRET, step=plan.job_seconds / 6) as fake:
        fake.list_limit = plan.list_limit
        yield fake


# -- the lives -----------------------------------------------------------------------------------


def schedule(plan: Plan, rng: random.Random) -> list[Life]:
    """The kill lives in a random order (each with its share of the commands), then the last life."""
    deaths: list[tuple[str | None, float | None]] = [
        (f"{point}=kill@{1 if point == 'inbox_committed' else rng.randint(1, 3)}", None)
        for point in plan.faults
    ]
    deaths += [(None, rng.uniform(1.0, 4.5)) for _ in range(plan.random_kills)]
    rng.shuffle(deaths)
    count = max(1, len(deaths))
    hangs = set(rng.sample(range(count), min(count, plan.hangs))) if plan.provider == "mj_proxy" else set()
    lives = [
        Life(fault, kill_after, plan.jobs // count + (1 if n < plan.jobs % count else 0), n in hangs)
        for n, (fault, kill_after) in enumerate(deaths)
    ]
    if not lives:
        lives = [Life(None, None, plan.jobs, False)]
    return [*lives, Life(None, None, 0, False)]


def _open_log(path: Path) -> IO[bytes]:
    return path.open("ab")


async def spawn(config: Path, token: str, log: Path, faults: str = "", *args: str) -> Process:
    """`python -m bot --config PATH <args or run>` with its output appended to `log`."""
    env = {"PATH": "/usr/bin:/bin", "TELEGRAM_TOKEN": token}
    if faults:
        env["IMAGINE_BOT_FAULTS"] = faults
    with _open_log(log) as out:  # the child has its own copy of the descriptor
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(config), *(args or ("run",)), cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


class Commands:
    """People sending /imagine commands, round-robin over the chats, each with a prompt of its own."""

    def __init__(self, telegram: TelegramFake, chats: int, rng: random.Random) -> None:
        self._telegram = telegram
        self._places = _users(chats)
        self._rng = rng
        self.sent: list[Command] = []

    async def send(self, count: int, spread: float) -> None:
        """Send `count` commands at random moments within `spread` seconds."""
        for _ in range(count):
            await asyncio.sleep(self._rng.uniform(0, 2 * spread / max(1, count)))
            chat_id, person = self._places[len(self.sent) % len(self._places)]
            prompt = f"crash {len(self.sent):04d} lighthouse in a storm"
            kind = "private" if chat_id > 0 else "supergroup"
            message = self._telegram.send_text(chat_id, person, f"/imagine {prompt}", chat_type=kind)
            self.sent.append(Command(chat_id, message.message_id, prompt))


class InFlight:
    """Counts the Bot API requests the fake is still handling (long polls aside): a process that was
    just killed may have left one behind whose bytes had all been sent."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.endswith("/getUpdates"):
            return await handler(request)  # type: ignore[no-any-return]
        self.count += 1
        self._idle.clear()
        try:
            return await handler(request)  # type: ignore[no-any-return]
        finally:
            self.count -= 1
            if not self.count:
                self._idle.set()

    async def drained(self, within: float = 10.0) -> None:
        """Once what a dead process sent has been handled (its last message belongs to its life)."""
        await asyncio.sleep(0.2)  # what was still in the socket's buffer reaches the fake
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._idle.wait()


def _is_final(message: FakeMessage) -> bool:
    """The message shows a finished grid: a photo with the U1-U4 buttons."""
    return bool(message.photo) and any(text == "U1" for row in message.keyboard for text, _ in row)


def replies(telegram: TelegramFake, command: Command) -> list[FakeMessage]:
    return [m for m in telegram.bot_messages(command.chat_id) if m.reply_to_message_id == command.message_id]


def all_shown(telegram: TelegramFake, commands: list[Command]) -> bool:
    return all(any(_is_final(m) for m in replies(telegram, c)) for c in commands)


class Run:
    """One crash run: the fakes, the config, the lives, and what they left behind."""

    def __init__(self, plan: Plan, workdir: Path, say: Say | None = None,
                 database: str | None = None) -> None:
        self.plan = plan
        self.workdir = workdir
        self.database: str | Path = database or workdir / "bot.sqlite3"  # a file, or a PostgreSQL URL
        self.rng = random.Random(plan.seed)
        self.say = say or (lambda _: None)
        self.logs: list[Path] = []
        #: per life, the newest message id of each chat just before it started: the messages above a
        #: life's mark and up to the next one's are the ones that life sent (or its people)
        self.marks: list[dict[int, int]] = []
        self.deaths: list[str] = []  # how each life ended, in the order of `marks`
        self.inflight = InFlight()

    async def execute(self) -> Report:
        report = Report(self.plan.provider, self.plan.jobs)
        started = time.monotonic()
        telegram = TelegramFake(bot_username=BOT, time_scale=TIME_SCALE)
        telegram.app.middlewares.insert(0, self.inflight.middleware)
        async with telegram, _provider_fake(self.plan) as provider:
            config = write_config(self.workdir, self.plan, telegram, provider, self.database)
            commands = Commands(telegram, self.plan.chats, self.rng)
            lives = schedule(self.plan, self.rng)
            for number, life in enumerate(lives[:-1], start=1):
                if life.hang and provider is not None:
                    provider.inject(HANG_AFTER_CREATE)
                    report.hangs += 1
                await self._live(number, life, config, telegram, commands, report)
            await self._last(len(lives), config, telegram, commands, report)
            report.wall = time.monotonic() - started
            if provider is not None:  # a hang no submit came to take is still waiting in the fake
                report.hangs -= sum(1 for fault in provider._faults if fault == HANG_AFTER_CREATE)
            lives = list(zip(self.marks, self.deaths, strict=True))
            stored = await read_store(self.database)
            analyse(report, commands.sent, telegram, provider, stored, lives)
            transcript(self.workdir / "chats.txt", telegram, lives)
        report.tracebacks = sum(log.read_text(errors="replace").count("Traceback") for log in self.logs)
        # An upload cut off by a kill leaves aiohttp's spooled copy of it unclosed (the fake's
        # `request.post()` does not close it on error): collected now, not in whatever runs next.
        gc.collect()
        return report

    async def _mark(self, telegram: TelegramFake) -> None:
        """Note where each chat stands as a new process is about to start (it can't send before), once
        the last one's requests are all handled."""
        await self.inflight.drained()
        self.marks.append({chat_id: max((m.message_id for m in telegram.chat(chat_id, True)), default=0)
                           for chat_id, _ in _users(self.plan.chats)})  # fmt: skip

    def _log(self, number: int) -> Path:
        path = self.workdir / f"bot-{number:03d}.log"
        self.logs.append(path)
        return path

    async def _live(self, number: int, life: Life, config: Path, telegram: TelegramFake,
                    commands: Commands, report: Report) -> None:
        log = self._log(number)
        began = time.monotonic()
        await self._mark(telegram)
        process = await spawn(config, telegram.token, log, life.fault or "")
        sending = asyncio.create_task(commands.send(life.commands, spread=2.0))
        try:
            if life.fault is not None:
                try:
                    async with asyncio.timeout(self.plan.fault_within):
                        await process.wait()
                except TimeoutError:
                    report.unfired.append(life.fault)
            else:
                assert life.kill_after is not None
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(life.kill_after):
                        await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
            await sending
        point = life.fault.partition("=")[0] if life.fault else None
        if process.returncode != -signal.SIGKILL:  # it ended by itself: a crash of its own
            report.other_deaths.append(process.returncode)
            cause = f"exit code {process.returncode}"
        else:
            fired = point and f"fault injection: SIGKILL at {point}" in log.read_text(errors="replace")
            cause = point if fired and point else "random"
            report.kills[cause] += 1
        self.deaths.append(cause)
        self.say(f"life {number}: {life.fault or f'kill after {life.kill_after:.1f} s'} -> {cause} after "
                 f"{time.monotonic() - began:.1f} s ({len(commands.sent)} commands sent so far)")  # fmt: skip

    async def _last(self, number: int, config: Path, telegram: TelegramFake, commands: Commands,
                    report: Report) -> None:
        """A life without faults until every command shows its result (or the bound), then SIGTERM."""
        began = time.monotonic()
        await self._mark(telegram)
        polls = len(telegram.calls("getUpdates"))
        process = await spawn(config, telegram.token, self._log(number))
        try:
            with contextlib.suppress(AssertionError):  # what never showed is in the report
                # up (it polls Telegram after its start-up work, with its SIGTERM handler in place) ...
                await telegram.wait_until(lambda: len(telegram.calls("getUpdates")) > polls,
                                          self.plan.settle_within)  # fmt: skip
                # ... and every command shows its result
                await telegram.wait_until(lambda: all_shown(telegram, commands.sent), self.plan.settle_within)
            process.send_signal(signal.SIGTERM)  # what it still sends while stopping is looked at too
            async with asyncio.timeout(30):
                report.final_exit = await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        self.deaths.append("SIGTERM")
        report.unconfirmed_updates = telegram.pending_updates
        self.say(f"life {number}: stopped with exit code {report.final_exit} after "
                 f"{time.monotonic() - began:.1f} s")


# -- what each side holds ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stored:
    job_id: str
    prompt: str
    state: str
    chat_id: str | None
    message_id: str | None


Stored = tuple[list[_Stored], list[tuple[str, float | None]], str]


async def read_store(database: str | Path) -> Stored:
    """Jobs, ledger rows (job id, refunded at) and an integrity verdict, straight from the database: a
    SQLite file's `PRAGMA integrity_check`, or PostgreSQL's (its own checks hold by construction: "ok"
    once the rows are read)."""
    if isinstance(database, str):
        connection = await asyncpg.connect(database)
        try:
            jobs = [_Stored(*row) for row in await connection.fetch(
                "SELECT id, request::jsonb #>> '{prompt,text}', state, chat_id, message_id FROM jobs")]
            ledger = [(str(r[0]), r[1]) for r in await connection.fetch(
                "SELECT job_id, refunded_at FROM quota_ledger")]  # fmt: skip
        finally:
            await connection.close()
        return jobs, ledger, "ok"
    with contextlib.closing(sqlite3.connect(database)) as db:
        jobs = [_Stored(*row) for row in db.execute(
            "SELECT id, json_extract(request, '$.prompt.text'), state, chat_id, message_id FROM jobs")]
        ledger = [(str(job), refunded) for job, refunded in db.execute(
            "SELECT job_id, refunded_at FROM quota_ledger")]  # fmt: skip
        integrity = "; ".join(str(row[0]) for row in db.execute("PRAGMA integrity_check"))
    return jobs, ledger, integrity


Lives = list[tuple[dict[int, int], str]]  # per process life: where each chat stood at its start, its end


def _life_of(message: FakeMessage, lives: Lives) -> int:
    """The process life that sent `message`: the last one that started before it was there."""
    return max((n for n, (mark, _) in enumerate(lives) if message.message_id > mark[message.chat_id]),
               default=-1)  # fmt: skip


def _orphaned(message: FakeMessage, kept: FakeMessage, lives: Lives) -> bool:
    """A result on a first reply the store never learned of (the one gap Telegram leaves, see README
    "Crash safety"): sent as the result, never edited, by a life killed before a later life sent the
    message the store has."""
    life = _life_of(message, lives)
    killed = 0 <= life < len(lives) - 1 and lives[life][1] != "SIGTERM"
    return killed and message.edit_date is None and life < _life_of(kept, lives)


def analyse(report: Report, sent: list[Command], telegram: TelegramFake, provider: MjProxyFake | None,
            stored: Stored, lives: Lives) -> None:
    jobs, ledger, report.integrity = stored
    by_prompt: dict[str, list[_Stored]] = {}
    for job in jobs:
        by_prompt.setdefault(job.prompt, []).append(job)
    charges = Counter(job_id for job_id, _ in ledger)
    refunded = {job_id for job_id, at in ledger if at is not None}
    for command in sent:
        mine = by_prompt.get(command.prompt, [])
        if not mine:
            report.lost.append(command.prompt)
        if len(mine) > 1:
            report.duplicated_jobs.append(command.prompt)
        for job in mine:
            if job.state != "succeeded":
                report.not_succeeded[command.prompt] = job.state
            if charges[job.job_id] == 0:
                report.uncharged.append(job.job_id)
            if job.state == "succeeded" and job.job_id in refunded:
                report.refunded_successes.append(job.job_id)
        if sum(charges[job.job_id] for job in mine if job.job_id not in refunded) > 1:
            report.double_charges += 1
        answers = replies(telegram, command)
        finals = [m for m in answers if _is_final(m)]
        placed = {(job.chat_id, job.message_id) for job in mine}
        kept = [m for m in finals if (str(command.chat_id), str(m.message_id)) in placed]
        orphans = [m for m in finals if m not in kept]
        if len(kept) == 1 and all(_orphaned(m, kept[0], lives) for m in orphans):
            report.shown_once += 1
            report.orphaned_results += len(orphans)
            russian = command.chat_id == RUSSIAN_CHAT  # the footer's "job" is in Cyrillic, the rest Latin
            if russian != bool(_CYRILLIC.search(kept[0].caption or kept[0].text or "")):
                report.wrong_language.append(command.prompt)
        elif len(finals) == 1:
            report.wrong_message.append(command.prompt)
        elif not finals:
            report.never_shown.append(command.prompt)
        else:
            report.shown_twice.append(command.prompt)
        report.duplicate_first_replies += max(0, len(answers) - 1)
        senders = [_life_of(m, lives) for m in answers]
        if len(set(senders)) < len(senders):
            report.replied_twice_in_one_life.append(command.prompt)
        for life in senders[:-1]:  # the orphans: every reply but the newest, the one the store has
            report.duplicates_by_death[lives[life][1] if life >= 0 else "?"] += 1
    if provider is not None:
        tasks = Counter(t.data["prompt"] for t in provider.tasks.values() if t.data["action"] == "IMAGINE")
        bodies = [r.body for r in provider.submitted("imagine") if isinstance(r.body, dict)]
        submits = Counter(body.get("prompt") for body in bodies)
        report.provider_tasks = sum(tasks.values())
        report.duplicated_submits = sorted(p for p in tasks.keys() | submits.keys()
                                           if max(tasks[p], submits[p]) > 1)  # fmt: skip


def transcript(path: Path, telegram: TelegramFake, lives: Lives) -> None:
    """What every chat shows, message by message, with the life that sent each: to read after a run."""
    lines = []
    for chat_id in lives[0][0] if lives else {}:
        lines.append(f"chat {chat_id}")
        for m in telegram.chat(chat_id, include_deleted=True):
            shown = (m.caption or m.text or "").replace("\n", " | ")
            who = f"bot (life {_life_of(m, lives) + 1})" if m.from_bot else "person"
            lines.append(f"  {m.message_id:>4} {who:<14} reply_to={m.reply_to_message_id} "
                         f"{'GRID ' if _is_final(m) else ''}{shown[:120]}")  # fmt: skip
    lines += [f"life {n}: ended by {death}" for n, (_, death) in enumerate(lives, start=1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def crash_run(plan: Plan, workdir: Path, say: Say | None = None, database: str | None = None) -> Report:
    """`database`: a PostgreSQL URL (default: a SQLite file in `workdir`)."""
    return await Run(plan, workdir, say, database).execute()


def markdown(reports: list[Report]) -> str:
    """The reports side by side, one column per provider."""
    header = ["metric", *(r.provider for r in reports)]
    rows = [[name, *(dict(r.rows())[name] for r in reports)] for name, _ in reports[0].rows()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
