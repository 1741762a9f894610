"""Several `imagine-bot run` workers on one PostgreSQL, as docker-compose.scale.yml runs them.

The fakes are served from this process on 127.0.0.1, so they outlive every worker and remember what
each did: the Telegram Bot API in webhook mode, Discord with two shards (a guild on each), and the
midjourney-proxy fake, which calls back on every change of a task. A round-robin balancer
(tests/net.py) stands in front of the workers' webhook ports and is every worker's `public_url`, so
Telegram updates and provider callbacks land on any worker, whichever shows the chat. Worker w0 runs
Discord shard 0 and w1 shard 1 (a lone worker runs both); the others serve Telegram only.

A burst of /imagine commands arrives round-robin over Telegram groups and private chats and Discord
channels of both shards. With `Plan.kill`, w1 is SIGKILLed mid-burst and, as an orchestrator would,
started again `down_for` seconds later under the same id. Commands for its Discord shard wait while it
is away (Discord has nobody to send them to) and, before the kill, until it acknowledged those it got
(Discord does not send an interaction twice: one never acknowledged is the person's to repeat).

While it runs, the leases and the workers' heartbeats are sampled every 100 ms and every event the
workers send each other is heard; tests/workers/report.py then reads what each side holds, and
`chats.txt` in the work directory lists every call per chat, with the worker that made it. Used by
tests/workers/test_three_workers.py and bench/workers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

from bot.events import CHANNEL
from bot.telegram_frontend.updates import SECRET_HEADER, webhook_secret
from tests import postgres
from tests.fakes.discord_api import DiscordFake
from tests.fakes.discord_api import FakeUser as DiscordUser
from tests.fakes.mj_proxy import MjProxyFake
from tests.fakes.telegram_api import FakeUser, FloodLimits, TelegramFake
from tests.net import RoundRobin, free_port
from tests.workers.chats import Key, Place, Senders, Sent, fingerprint, is_final, shown
from tests.workers.report import SPOOF_MESSAGE, SPOOF_UPDATE, Observed, Report, analyse, transcript

ROOT = Path(__file__).resolve().parents[2]
BOT = "imagine_workers_bot"
MJ_SECRET = "workers-mj-secret-7d1f"
TIME_SCALE = 0.02  # the fake Telegram's flood windows, and the bot's pacing with them (a margin added)
#: ... but a chat's window is stretched: on a loaded machine (the whole suite on two cores) sends some
#: 300 ms apart can reach the fake together (the bot, or this process serving the fakes, was waiting for
#: a core), and the fake counts them as it handles them. Telegram: 3 per 0.6 s, the bot 1 per 0.45 s
#: (two workers sending in one chat would break it; the test checks one sender per chat directly too);
#: Discord: 5 edits per 0.25 s, the bot 5 per 0.5 s.
FLOOD = FloodLimits(per_chat=(3, 0.6 / TIME_SCALE))
CHAT_PACE = 0.45
EDIT_LIMIT = (5, 0.25)
CHANNEL_PACE = (5, 0.5)
IDENTIFY = 0.3  # the fake Discord's identify window; the bot waits a little longer between IDENTIFYs
VICTIM = 1  # the worker a kill takes: w1 (Discord shard 1 and its share of the chats)
Process = asyncio.subprocess.Process
Say = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    """What to run: how many workers and commands, how fast they come, and whether w1 dies."""

    workers: int = 3
    jobs: int = 300
    groups: int = 6  # Telegram groups ...
    privates: int = 10  # ... and private chats
    channels: int = 2  # Discord channels in each shard's guild
    spread: float = 12.0  # seconds over which the commands arrive (0: all at once)
    kill: bool = True  # SIGKILL w1 once `kill_after` of the commands are sent ...
    kill_after: float = 0.4
    down_for: float = 4.5  # ... and start it again this long after
    job_step: float = 0.3  # seconds between a task's changes at the provider (six changes)
    heartbeat: float = 0.5
    lease: float = 3.0
    callback_poll: float = 15.0  # webhooks.poll_interval: jobs that get callbacks are polled this seldom
    settle_within: float = 90.0  # bound on every command showing its result once the burst is sent
    provider: str = "mj"  # or "local": the built-in renderer, 0 s per job, polled (no callbacks)


@dataclass
class WorkerProcess:
    id: str
    port: int
    config: Path
    logs: list[Path] = field(default_factory=list)
    process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None


def places(plan: Plan, discord: DiscordFake) -> list[Place]:
    """Telegram groups and private chats, and `plan.channels` channels in a guild on each shard (added
    before the fake starts); interleaved so a burst reaches every kind at once."""
    telegram = [Place("telegram", -1002000000000 - n, "supergroup") for n in range(plan.groups)]
    telegram += [Place("telegram", 7100 + n) for n in range(plan.privates)]
    channels: list[Place] = []
    for shard in (0, 1):
        names = tuple(f"room-{n}" for n in range(plan.channels))
        guild, ids = discord.add_guild(f"guild on shard {shard}", names, shard=(shard, 2))
        channels += [Place("discord", channel, "guild", guild, shard) for channel in ids]
    mixed: list[Place] = []
    for n in range(max(len(telegram), len(channels))):
        mixed += [*telegram[n : n + 1], *channels[n : n + 1]]
    return mixed


def shards_of(plan: Plan, n: int) -> list[int] | None:
    """The Discord shards worker `n` runs: both for a lone worker, else w0 shard 0 and w1 shard 1."""
    if plan.workers == 1:
        return [0, 1]
    return [n] if n < 2 else None


def worker_config(plan: Plan, n: int, port: int, *, database: str, public_url: str, workdir: Path,
                  telegram: TelegramFake, discord: DiscordFake | None, mj: MjProxyFake) -> dict[str, Any]:
    """Worker n's config: every worker alike but for its id, its port and its Discord shards (none
    without `discord`)."""
    scale = TIME_SCALE * 1.5
    provider: dict[str, Any] = {"name": "mj", "type": "mj_proxy", "base_url": mj.base_url,
                                "api_key": "${MJ_API_KEY}", "poll_interval": 0.3, "request_timeout": 2.0,
                                "max_concurrency": 500, "clock_slack": 1.0}  # fmt: skip
    if plan.provider == "local":
        provider = {"name": "local", "type": "local", "duration": 0, "poll_interval": 0.05,
                    "max_concurrency": 500}
    config: dict[str, Any] = {
        "database": database,
        "default_provider": provider["name"],
        "providers": [provider],
        "telegram": {
            "token": "${TELEGRAM_TOKEN}", "mode": "webhook", "base_url": f"{telegram.base_url}/bot",
            "base_file_url": f"{telegram.base_url}/file/bot", "chat_rate": {"count": 1, "period": CHAT_PACE},
            "group_rate": {"count": 20, "period": 60.0 * scale},
            "global_rate": {"count": 30, "period": scale},
        },
        "webhooks": {"listen": f"127.0.0.1:{port}", "public_url": public_url,
                     "poll_interval": plan.callback_poll},
        "workers": {"id": f"w{n}", "heartbeat": plan.heartbeat, "lease": plan.lease},
        "polling": {"idle_interval": 0.05, "backoff_base": 0.1, "backoff_max": 1.0, "reconcile_delay": 0.5},
        "media": {"allow_private_addresses": True, "cache_dir": str(workdir / f"media-w{n}")},
    }  # fmt: skip
    if discord is not None and (shards := shards_of(plan, n)) is not None:
        config["discord"] = {
            "token": "${DISCORD_TOKEN}", "guild_ids": sorted(set(discord.guilds) - {discord.guild_id}),
            "api_base": f"{discord.base_url}/api/v10", "gateway_url": discord.gateway_url,
            "channel_edits": CHANNEL_PACE[0], "channel_period": CHANNEL_PACE[1], "guild_ready_timeout": 0.05,
            "shard_count": 2, "shard_ids": shards, "identify_interval": IDENTIFY + 0.1,
        }  # fmt: skip
    return config


async def spawn(worker: WorkerProcess, workdir: Path, env: dict[str, str]) -> None:
    """Start `imagine-bot run` for `worker`, its output in a log of its own (one per life)."""
    log = workdir / f"{worker.id}-{len(worker.logs) + 1}.log"
    worker.logs.append(log)
    with log.open("ab") as out:  # the child has its own copy of the descriptor
        worker.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(worker.config), "run", cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", **env}, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT)  # fmt: skip


async def ready(worker: WorkerProcess, within: float = 60.0) -> None:
    """Once the worker's /healthz says every frontend is connected."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while True:
            assert worker.pid is not None, f"{worker.id} exited: {worker.logs[-1].read_text()[-3000:]}"
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{worker.url}/healthz") as answer:
                    if answer.status == 200:
                        return
            assert time.monotonic() < deadline, f"{worker.id} not healthy within {within:.0f} s"
            await asyncio.sleep(0.1)


class Cluster:
    """One run: the fakes, the workers, the burst (and the kill), and what they left behind."""

    def __init__(self, plan: Plan, workdir: Path, say: Say | None = None) -> None:
        self.plan = plan
        self.workdir = workdir
        self.say = say or (lambda _: None)
        self.report = Report(plan.workers, plan.lease)
        self.seen = Observed(victim=f"w{VICTIM}")
        self.workers: list[WorkerProcess] = []
        self.senders = Senders(self.workers)
        self.paused: set[int] = set()  # Discord shards whose worker is away: no commands for them
        self._people: list[DiscordUser] = []
        self._started = time.monotonic()

    async def execute(self) -> Report:
        telegram = TelegramFake(bot_username=BOT, time_scale=TIME_SCALE, flood_limits=FLOOD)
        discord = DiscordFake(shards=2, max_concurrency=1, identify_interval=IDENTIFY, edit_limit=EDIT_LIMIT)
        where = places(self.plan, discord)
        self._people = [discord.add_user(f"person{n}") for n in range(3)]
        self.senders.watch(telegram, discord)
        ports = [free_port() for _ in range(self.plan.workers)]
        async with contextlib.AsyncExitStack() as stack:
            for fake in (telegram, discord):
                await stack.enter_async_context(fake)
            mj = await stack.enter_async_context(MjProxyFake(secret=MJ_SECRET, step=self.plan.job_step))
            # Its task list holds every task (as novicezk's does), so a submit the kill left unanswered
            # can be looked up: trueai's newest 100 can't tell while 25 tasks a second arrive, and the
            # job would wait for its deadline (bench/crash.py measures that case).
            mj.list_limit = None
            self.seen.url = await stack.enter_async_context(postgres.database())
            balancer = await stack.enter_async_context(RoundRobin([f"http://127.0.0.1:{p}" for p in ports]))
            for n, port in enumerate(ports):
                config = worker_config(self.plan, n, port, database=self.seen.url, public_url=balancer.url,
                                       workdir=self.workdir, telegram=telegram, discord=discord, mj=mj)
                path = self.workdir / f"w{n}.yaml"
                path.write_text(yaml.safe_dump(config), encoding="utf-8")
                self.workers.append(WorkerProcess(f"w{n}", port, path))
                self.seen.backends[self.workers[-1].url] = f"w{n}"
            tokens = {"TELEGRAM_TOKEN": telegram.token, "DISCORD_TOKEN": discord.token,
                      "MJ_API_KEY": MJ_SECRET}
            try:
                await self._run(telegram, discord, balancer, where, tokens)
            finally:
                self.report.exits = await self._stop_all()
            self.report.wall = time.monotonic() - self._started
            await analyse(self.report, self.seen, self.senders, telegram, discord, mj, balancer)
        self._read_logs(telegram.token, discord.token)
        zero = self.seen.killed_at or self.report.first_sent
        transcript(self.workdir / "chats.txt", self.seen, self.senders, zero)
        return self.report

    async def _run(self, telegram: TelegramFake, discord: DiscordFake, balancer: RoundRobin,
                   where: list[Place], tokens: dict[str, str]) -> None:
        async with asyncio.TaskGroup() as group:
            watching = [group.create_task(self._sample(), name="leases"),
                        group.create_task(self._tick(), name="lag")]  # fmt: skip
            await asyncio.gather(*(self._spawn(w, tokens) for w in self.workers))
            await self._all_ready(telegram, discord)
            self.say(f"{self.plan.workers} worker(s) up after {time.monotonic() - self._started:.1f} s")
            watching.append(group.create_task(self._watch_orphans(telegram, discord), name="orphans"))
            await self._burst(telegram, discord, balancer, where, tokens)
            self.say(f"{len(self.seen.sent)} commands sent; waiting for every result")
            await self._settle(telegram, discord)
            self.report.listing = await self._cli("workers")
            for task in watching:
                task.cancel()

    # -- processes --------------------------------------------------------------------------------

    async def _spawn(self, worker: WorkerProcess, tokens: dict[str, str]) -> None:
        await spawn(worker, self.workdir, tokens)

    async def _ready(self, worker: WorkerProcess, within: float = 60.0) -> None:
        await ready(worker, within)

    async def _all_ready(self, telegram: TelegramFake, discord: DiscordFake) -> None:
        await asyncio.gather(*(self._ready(w) for w in self.workers))
        guilds = set(discord.guilds) - {discord.guild_id}
        await discord.wait_for(lambda: len(discord.shards_connected()) == 2
                               and all(discord.commands.get(g) for g in guilds), 30)  # fmt: skip
        await telegram.wait_until(lambda: telegram.webhook is not None, within=30)

    async def _stop_all(self) -> dict[str, int | None]:
        """SIGTERM every worker still running; their exit codes (None: killed after 30 s)."""
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.send_signal(signal.SIGTERM)
        exits: dict[str, int | None] = {}
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                async with asyncio.timeout(30):
                    exits[worker.id] = await worker.process.wait()
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
                exits[worker.id] = None
        return exits

    async def _cli(self, *args: str) -> str:
        """`imagine-bot --config <w0's> <args>`, its output."""
        done = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--config", str(self.workers[0].config), *args, cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "TELEGRAM_TOKEN": "0:" + "-" * 35, "DISCORD_TOKEN": "-.-.-",
                 "MJ_API_KEY": "-"},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        out, _ = await asyncio.wait_for(done.communicate(), 60)
        return out.decode(errors="replace")

    def _read_logs(self, *tokens: str) -> None:
        secrets = [*tokens, MJ_SECRET, webhook_secret(tokens[0])]
        for worker in self.workers:
            for log in worker.logs:
                text = log.read_text(errors="replace")
                self.report.tracebacks[log.name] = text.count("Traceback")
                self.report.secrets_in_logs += [f"{log.name}: {s[:6]}…" for s in secrets if s in text]

    # -- the burst, the kill, the spoof -----------------------------------------------------------

    async def _burst(self, telegram: TelegramFake, discord: DiscordFake, balancer: RoundRobin,
                     where: list[Place], tokens: dict[str, str]) -> None:
        plan, sent = self.plan, self.seen.sent
        gap = plan.spread / max(1, plan.jobs)
        kill_at = round(plan.jobs * plan.kill_after) if plan.kill and plan.workers > VICTIM else -1
        cycle = itertools.cycle(where)
        async with asyncio.TaskGroup() as group:
            while len(sent) < plan.jobs:
                if len(sent) == kill_at:
                    self.paused.update(shards_of(plan, VICTIM) or [])
                    group.create_task(self._kill_and_restart(telegram, discord, tokens), name="kill")
                if len(sent) == plan.jobs // 4:
                    group.create_task(self._spoof(balancer), name="spoof")
                await self._send(telegram, discord, next(p for p in cycle if p.shard not in self.paused))
                if gap or len(sent) % 20 == 0:
                    await asyncio.sleep(gap)
        self.report.first_sent = sent[0].at

    async def _send(self, telegram: TelegramFake, discord: DiscordFake, place: Place) -> None:
        n = len(self.seen.sent)
        sent = Sent(place, f"workers {n:04d} {place.platform} harbour at dusk", time.time())
        if place.platform == "telegram":
            person = FakeUser(9100 + n % 7, f"Person {n % 7}")
            text = f"/imagine {sent.prompt}"
            message = telegram.send_text(place.chat_id, person, text, chat_type=place.kind)
            sent.message_id = message.message_id
        else:
            assert place.guild_id is not None
            member = self._people[n % len(self._people)]
            sent.interaction = await discord.slash_command(place.guild_id, place.chat_id, member, "imagine",
                                                           {"prompt": sent.prompt})  # fmt: skip
        self.seen.sent.append(sent)
        self.report.sent[place.platform] += 1

    async def _kill_and_restart(self, telegram: TelegramFake, discord: DiscordFake,
                                tokens: dict[str, str]) -> None:
        """SIGKILL w1 once the interactions its shard got are acknowledged; start it again later."""
        victim, shards = self.workers[VICTIM], set(shards_of(self.plan, VICTIM) or [])
        waiting = [s.interaction for s in self.seen.sent if s.place.shard in shards and s.interaction]
        self.seen.victim_interactions = {i.id for i in waiting}
        with contextlib.suppress(TimeoutError):
            await discord.wait_for(lambda: all(i.response_type is not None for i in waiting), 10)
        held = await self._held_by(victim.id)
        assert victim.process is not None
        victim.process.kill()
        await victim.process.wait()
        self.seen.killed_at = time.time()
        self.seen.victim_chats = sorted(held)
        await self._note_orphans(telegram, discord, held)
        self.say(f"killed {victim.id} ({len(self.seen.sent)} commands sent; it held {len(held)} chat(s), "
                 f"{len(self.seen.orphans)} unfinished message(s))")  # fmt: skip
        await asyncio.sleep(self.plan.down_for)
        await self._spawn(victim, tokens)
        await self._ready(victim)
        await discord.wait_for(lambda: len(discord.shards_connected()) == 2, 30)
        self.seen.back_at = time.time()
        self.paused.clear()
        self.say(f"{victim.id} back after {time.time() - self.seen.killed_at:.1f} s")

    async def _held_by(self, worker: str) -> set[str]:
        connection = await asyncpg.connect(self.seen.url)
        try:
            rows = await connection.fetch("SELECT name FROM leases WHERE holder = $1 AND until > $2 AND "
                                          "name LIKE 'chat:%'", worker, time.time())  # fmt: skip
        finally:
            await connection.close()
        return {str(r[0]) for r in rows}

    async def _note_orphans(self, telegram: TelegramFake, discord: DiscordFake, held: set[str]) -> None:
        """The messages of the victim's chats that are not final yet: another worker must move them."""
        connection = await asyncpg.connect(self.seen.url)
        try:
            rows = await connection.fetch(
                "SELECT chat_platform, chat_id, message_id FROM jobs WHERE message_id IS NOT NULL AND "
                "'chat:' || chat_platform || ':' || chat_id = ANY($1::text[])", sorted(held))
        finally:
            await connection.close()
        for platform, chat, message in rows:
            key: Key = (str(platform), int(chat), int(message))
            if not is_final(telegram, discord, key):
                self.seen.orphans[key] = fingerprint(telegram, discord, key)

    async def _watch_orphans(self, telegram: TelegramFake, discord: DiscordFake) -> None:
        """Note when each message the victim left is changed next (by whoever shows its chat now)."""
        while True:
            for key, before in list(self.seen.orphans.items()):
                if key not in self.seen.moved and fingerprint(telegram, discord, key) != before:
                    self.seen.moved[key] = time.time() - (self.seen.killed_at or 0.0)
            await asyncio.sleep(0.05)

    async def _spoof(self, balancer: RoundRobin) -> None:
        """Updates posted to the balancer without the right secret token: each worker must refuse."""
        forged = {"update_id": SPOOF_UPDATE, "message": {
            "message_id": SPOOF_MESSAGE, "date": int(time.time()), "text": "/imagine spoofed harbour",
            "chat": {"id": 7100, "type": "private", "first_name": "Mallory"},
            "from": {"id": 7100, "is_bot": False, "first_name": "Mallory"},
            "entities": [{"type": "bot_command", "offset": 0, "length": 8}]}}  # fmt: skip
        url = f"{balancer.url}/updates/telegram"
        async with aiohttp.ClientSession() as http:
            for headers in ({SECRET_HEADER: "wrong"}, {}, {SECRET_HEADER: webhook_secret("another:token")}):
                async with http.post(url, json=forged, headers=headers) as answer:
                    self.seen.spoof_statuses.append(answer.status)

    # -- waiting and sampling ---------------------------------------------------------------------

    async def _settle(self, telegram: TelegramFake, discord: DiscordFake) -> None:
        """Until every command shows its result (or `settle_within` passes: the report says what not)."""
        deadline = time.monotonic() + self.plan.settle_within
        pending = list(self.seen.sent)
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if not shown(telegram, discord, s)]
            await asyncio.sleep(0.1)
        self.report.last_shown = time.time()

    async def _tick(self) -> None:
        """This process's event-loop lag (it serves the fakes): a 20 ms ticker's overshoot."""
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.02)
            self.seen.lags.append(time.monotonic() - before - 0.02)

    async def _sample(self) -> None:
        """Every 100 ms: the leases and their holders, the workers' heartbeats; and every event."""
        seen = self.seen
        connection = await asyncpg.connect(seen.url)
        await connection.add_listener(CHANNEL, lambda *args: seen.events.append((time.time(), str(args[-1]))))
        try:
            while True:
                with contextlib.suppress(asyncpg.UndefinedTableError):  # not migrated yet
                    at = time.time()
                    rows = await connection.fetch("SELECT name, holder, until FROM leases")
                    seen.leases.append((at, {str(n): (str(h), float(u)) for n, h, u in rows}))
                    for worker, instance, beat in await connection.fetch(
                            "SELECT id, instance, seen_at FROM workers"):
                        seen.instances[str(instance)] = str(worker)
                        seen.beats.setdefault(str(worker), set()).add(float(beat))
                await asyncio.sleep(0.1)
        finally:
            await connection.close()
