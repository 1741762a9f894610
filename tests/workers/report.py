"""What a run of several workers left behind, as a person, an operator and the provider would see it:
the chats (the fakes), the store (asyncpg: jobs, quota_ledger, inbox) and the provider fake's tasks and
requests, read against what the run observed while it went (`Observed`). Nothing here tidies up after
the bot: a lost command or a duplicated task shows up in the `Report`.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from tests.discord_frontend.conftest import is_final as discord_final
from tests.fakes.discord_api import DiscordFake
from tests.fakes.mj_proxy import MjProxyFake
from tests.fakes.telegram_api import TelegramFake
from tests.net import RoundRobin
from tests.workers.chats import (
    Key,
    Senders,
    Sent,
    discord_finals_sent,
    discord_messages,
    is_final,
    telegram_final,
    telegram_finals_sent,
    telegram_replies,
)

SPOOF_UPDATE = 999_000_001  # the update_id of the forged Telegram update
SPOOF_MESSAGE = 424242


@dataclass
class Observed:
    """What the run saw while it went (the report reads the rest afterwards)."""

    url: str = ""  # the database
    victim: str = ""  # the worker a kill took
    sent: list[Sent] = field(default_factory=list)
    backends: dict[str, str] = field(default_factory=dict)  # webhook URL -> worker id
    leases: list[tuple[float, dict[str, tuple[str, float]]]] = field(default_factory=list)  # sampled
    events: list[tuple[float, str]] = field(default_factory=list)  # every NOTIFY: (at, payload)
    instances: dict[str, str] = field(default_factory=dict)  # a process's instance (in events) -> id
    beats: dict[str, set[float]] = field(default_factory=dict)  # worker -> heartbeats seen (seen_at)
    orphans: dict[Key, str] = field(default_factory=dict)  # the victim's unfinished messages -> looks
    moved: dict[Key, float] = field(default_factory=dict)  # -> seconds from the kill to its next change
    killed_at: float | None = None
    back_at: float | None = None  # the victim healthy again
    victim_chats: list[str] = field(default_factory=list)  # leases it held at its death
    victim_interactions: set[int] = field(default_factory=set)  # Discord interactions it took
    spoof_statuses: list[int] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # the fakes' process: event-loop lag, every 20 ms

    def holder_at(self, lease: str, at: float) -> str | None:
        """Who held `lease` at `at`: a sample taken before showed a holder whose lease ran past `at` (a
        lease changes hands only once it lapsed, or when its holder stops cleanly, which no worker
        does before the end). None: unknown."""
        for sampled, rows in reversed(self.leases):
            if sampled <= at:
                holder, until = rows.get(lease, ("", 0.0))
                return holder if until > at else None
        return None

    def taken_over(self, lease: str) -> float:
        """When a chat the victim held at its death was taken by another worker, or by the victim's
        next life (0: the victim did not hold it)."""
        if self.killed_at is None or lease not in self.victim_chats:
            return 0.0
        for sampled, rows in self.leases:
            holder = rows.get(lease, ("", 0.0))[0]
            again = self.back_at is not None and sampled > self.back_at
            if sampled > self.killed_at and holder and (holder != self.victim or again):
                return sampled
        return float("inf")


@dataclass
class Report:
    """What the chats, the store and the provider hold after the run."""

    workers: int
    lease: float
    sent: Counter[str] = field(default_factory=Counter)  # commands by platform
    lost: list[str] = field(default_factory=list)  # prompts without a job
    duplicated_jobs: list[str] = field(default_factory=list)
    not_succeeded: dict[str, str] = field(default_factory=dict)  # prompt -> state
    shown_once: int = 0
    never_shown: list[str] = field(default_factory=list)
    shown_twice: list[str] = field(default_factory=list)  # two messages show the result
    orphaned_results: int = 0  # results also on a first reply the killed worker sent, never stored
    wrong_message: list[str] = field(default_factory=list)  # the result is not on the stored message
    #: prompt -> the workers that gave its message its result, when more than once (None: unknown)
    results_sent_twice: dict[str, list[str | None]] = field(default_factory=dict)
    duplicate_first_replies: dict[str, str] = field(default_factory=dict)  # prompt -> its chat's lease
    replied_twice_by_one_worker: dict[str, list[str | None]] = field(default_factory=dict)  # -> senders
    #: prompts of the jobs in the chats the victim held, created before another worker (or its next
    #: life) took the chat: the only ones a kill may show twice (sent, the kill before it was recorded)
    left_by_victim: set[str] = field(default_factory=set)
    #: per chat (its lease), the workers that sent or edited its messages, in turn (see Senders)
    chat_turns: dict[str, list[str | None]] = field(default_factory=dict)
    duplicated_submits: list[str] = field(default_factory=list)
    provider_tasks: int = 0
    uncharged: list[str] = field(default_factory=list)
    double_charges: list[str] = field(default_factory=list)  # prompts charged more than once
    charges_without_job: list[str] = field(default_factory=list)  # ledger rows of jobs never stored
    telegram_429: list[str] = field(default_factory=list)
    discord_429: int = 0
    telegram_violations: list[str] = field(default_factory=list)
    discord_violations: list[str] = field(default_factory=list)  # but for the double-acks:
    #: interactions acknowledged again, by the killed worker's next life, which handles again what it
    #: had committed but not finished (Discord answers 40060; the bot takes it as deferred)
    double_acks: list[int] = field(default_factory=list)
    victim_interactions: set[int] = field(default_factory=set)  # those the killed worker took
    identify_violations: int = 0
    identifies: int = 0
    callbacks_by_worker: Counter[str] = field(default_factory=Counter)  # accepted, through the balancer
    #: jobs whose result came only by a callback (the task was never polled) taken by a worker that did
    #: not show the job's chat, and whose message shows the result all the same
    results_by_other_worker: list[str] = field(default_factory=list)
    status_requests: int = 0  # list-by-condition / fetch requests the provider got
    status_ids: int = 0  # task ids those asked about
    updates_by_worker: Counter[str] = field(default_factory=Counter)  # Telegram webhook posts taken
    spoof_statuses: list[int] = field(default_factory=list)
    spoof_traces: list[str] = field(default_factory=list)  # what a spoofed update left (none, we hope)
    killed_at: float | None = None
    victim_chats: list[str] = field(default_factory=list)
    moved: list[float] = field(default_factory=list)  # per message the victim showed: kill -> next change
    unmoved: list[str] = field(default_factory=list)
    beat_gaps: dict[str, float] = field(default_factory=dict)  # worker -> longest time between beats
    exits: dict[str, int | None] = field(default_factory=dict)  # worker -> exit code after SIGTERM
    listing: str = ""  # `imagine-bot workers` while all ran
    tracebacks: dict[str, int] = field(default_factory=dict)  # log file -> count
    secrets_in_logs: list[str] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    first_sent: float = 0.0
    last_shown: float = 0.0
    wall: float = 0.0

    @property
    def jobs(self) -> int:
        return sum(self.sent.values())

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / max(1e-9, self.last_shown - self.first_sent)

    @property
    def callbacks(self) -> int:
        return sum(self.callbacks_by_worker.values())

    def per_job(self, count: int) -> str:
        return f"{count / max(1, self.jobs):.2f}"

    def rows(self) -> list[tuple[str, str]]:
        """The figures as (metric, value), for a table."""
        moved = f"p50 {statistics.median(self.moved or [0]):.1f} s, max {max(self.moved, default=0):.1f} s"
        lag = f"{_quantile(self.lags, 0.99) * 1000:.0f} / {max(self.lags, default=0) * 1000:.0f} ms"
        left = self.left_by_victim
        return [
            ("workers", str(self.workers)),
            ("jobs (telegram + discord)", f"{self.jobs} ({self.sent['telegram']} + {self.sent['discord']})"),
            ("jobs/s (first command to last result shown)", f"{self.jobs_per_s:.1f}"),
            ("results shown exactly once", f"{self.shown_once}/{self.jobs}"),
            ("lost / duplicated / failed jobs",
             f"{len(self.lost)} / {len(self.duplicated_jobs)} / {len(self.not_succeeded)}"),
            ("duplicated provider submits", str(len(self.duplicated_submits))),
            ("double charges / charges of jobs never stored",
             f"{len(self.double_charges)} / {len(self.charges_without_job)}"),
            ("duplicate first replies (of jobs the killed worker left)",
             f"{len(self.duplicate_first_replies)} ({len(left & set(self.duplicate_first_replies))})"),
            ("results sent twice to a message (of jobs the killed worker left)",
             f"{len(self.results_sent_twice)} ({len(left & set(self.results_sent_twice))})"),
            ("platform 429s (telegram / discord)", f"{len(self.telegram_429)} / {self.discord_429}"),
            ("provider status requests per job", self.per_job(self.status_requests)),
            ("task ids polled per job", self.per_job(self.status_ids)),
            ("callbacks per job", self.per_job(self.callbacks)),
            ("results by a callback to a worker not showing the chat",
             str(len(self.results_by_other_worker))),
            ("killed worker's messages moved (kill -> next change)",
             f"{len(self.moved)} moved, {len(self.unmoved)} not; {moved}" if self.killed_at else "-"),
            ("longest heartbeat gap",
             f"{max(self.beat_gaps.values(), default=0):.1f} s (lease {self.lease:g} s)"),
            ("tracebacks in the logs", str(sum(self.tracebacks.values()))),
            ("event-loop lag of the fakes' process p99 / max", lag),
            ("wall time", f"{self.wall:.1f} s"),
        ]  # fmt: skip


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def markdown(reports: list[Report]) -> str:
    """The reports side by side, one column each."""
    header = ["metric", *(f"{r.workers} worker(s)" for r in reports)]
    rows = [[name, *(dict(r.rows())[name] for r in reports)] for name, _ in reports[0].rows()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# -- reading it ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredJob:
    id: str
    prompt: str
    state: str
    platform: str | None
    chat_id: str | None
    message_id: str | None
    task_id: str | None
    created_at: float

    @property
    def lease(self) -> str:
        return f"chat:{self.platform}:{self.chat_id}"


_JOBS = ("SELECT id, request::jsonb #>> '{prompt,text}', state, chat_platform, chat_id, message_id,"
         " provider_task_id, created_at FROM jobs")  # fmt: skip


async def read_store(url: str) -> tuple[list[StoredJob], list[tuple[str, float | None]], list[str]]:
    """Jobs, ledger rows (job id, refunded at) and the inbox keys, straight from the database."""
    connection = await asyncpg.connect(url)
    try:
        jobs = [StoredJob(*row) for row in await connection.fetch(_JOBS)]
        rows = await connection.fetch("SELECT job_id, refunded_at FROM quota_ledger")
        ledger = [(str(j), r) for j, r in rows]
        inbox = [f"{s}:{k}" for s, k in await connection.fetch("SELECT source, key FROM inbox")]
    finally:
        await connection.close()
    return jobs, ledger, inbox


async def analyse(report: Report, seen: Observed, senders: Senders, telegram: TelegramFake,
                  discord: DiscordFake, mj: MjProxyFake, balancer: RoundRobin) -> None:
    jobs, ledger, inbox = await read_store(seen.url)
    by_prompt: dict[str, list[StoredJob]] = {}
    for job in jobs:
        by_prompt.setdefault(job.prompt, []).append(job)
    charges = Counter(job_id for job_id, refunded in ledger if refunded is None)
    report.charges_without_job = sorted({job_id for job_id, _ in ledger} - {job.id for job in jobs})
    for sent in seen.sent:
        mine = by_prompt.get(sent.prompt, [])
        if not mine:
            report.lost.append(sent.prompt)
        elif len(mine) > 1:
            report.duplicated_jobs.append(sent.prompt)
        for job in mine:
            if job.state != "succeeded":
                report.not_succeeded[sent.prompt] = job.state
            if job.id not in {job_id for job_id, _ in ledger}:
                report.uncharged.append(job.id)
        if sum(charges[job.id] for job in mine) > 1:
            report.double_charges.append(sent.prompt)
        _chat_outcome(report, telegram, discord, sent, mine, senders.created, seen.victim)
    _provider_outcome(report, seen, mj, balancer, {j.id: j for j in jobs}, telegram, discord)
    _platforms(report, seen, telegram, discord, balancer)
    report.spoof_traces = [f"job {j.id}" for j in jobs if "spoofed" in j.prompt]
    report.spoof_traces += [key for key in inbox if key.endswith(str(SPOOF_UPDATE))]
    report.spoof_traces += [f"reply {m.message_id}" for s in seen.sent if s.place.platform == "telegram"
                            for m in telegram.bot_messages(s.place.chat_id)
                            if m.reply_to_message_id == SPOOF_MESSAGE]  # fmt: skip
    report.left_by_victim = {job.prompt for job in jobs if job.created_at < seen.taken_over(job.lease)}
    report.chat_turns = senders.chat_turns()
    _kill_outcome(report, seen)


def _chat_outcome(report: Report, telegram: TelegramFake, discord: DiscordFake, sent: Sent,
                  mine: list[StoredJob], created: dict[tuple[int, int], str | None], victim: str) -> None:
    stored = {(job.chat_id, job.message_id) for job in mine}
    chat = sent.place.chat_id
    if sent.place.platform == "telegram":
        answers: list[Any] = telegram_replies(telegram, sent)
        ids = [m.message_id for m in answers]
        # a first reply that was the result itself, sent by the killed worker before the store had its
        # id: the one gap Telegram leaves (README "Crash safety"), not a second showing by a live worker
        orphans = {m.message_id for m in answers if telegram_final(m) and m.edit_date is None
                   and created.get((chat, m.message_id)) == victim
                   and (str(chat), str(m.message_id)) not in stored}  # fmt: skip
        report.orphaned_results += len(orphans)
        finals = [m.message_id for m in answers if telegram_final(m) and m.message_id not in orphans]
        twice = [w for i in finals if len(by := telegram_finals_sent(telegram, chat, i)) > 1 for w in by]
    else:
        answers = discord_messages(discord, sent, mine[0].id if len(mine) == 1 else None)
        ids = [m.id for m in answers]
        finals = [m.id for m in answers if discord_final(m)]
        twice = [None for m in answers if discord_final(m) and discord_finals_sent(m) > 1]
    if len(finals) == 1:
        report.shown_once += 1
        if (str(chat), str(finals[0])) not in stored:
            report.wrong_message.append(sent.prompt)
    elif not finals:
        report.never_shown.append(sent.prompt)
    else:
        report.shown_twice.append(sent.prompt)
    if twice:
        report.results_sent_twice[sent.prompt] = twice
    if len(answers) > 1:
        report.duplicate_first_replies[sent.prompt] = sent.place.lease
        by_whom = [created.get((chat, i)) for i in ids]
        if len(set(by_whom)) < len(by_whom):
            report.replied_twice_by_one_worker[sent.prompt] = by_whom


def _provider_outcome(report: Report, seen: Observed, mj: MjProxyFake, balancer: RoundRobin,
                      jobs: dict[str, StoredJob], telegram: TelegramFake, discord: DiscordFake) -> None:
    tasks = Counter(t.data["prompt"] for t in mj.tasks.values() if t.data["action"] == "IMAGINE")
    submits = Counter(r.body.get("prompt") for r in mj.submitted("imagine") if isinstance(r.body, dict))
    report.provider_tasks = sum(tasks.values())
    report.duplicated_submits = sorted(str(p) for p in tasks.keys() | submits.keys()
                                       if max(tasks[p], submits[p]) > 1)  # fmt: skip
    polled: set[str] = set()
    for request in mj.received:
        if request.path.endswith("/mj/task/list-by-condition") and isinstance(request.body, dict):
            ids = [str(i) for i in request.body.get("ids") or []]
        elif request.path.endswith("/fetch"):
            ids = [request.path.split("/")[-2]]
        else:
            continue
        report.status_requests += 1
        report.status_ids += len(ids)
        polled.update(ids)
    for forwarded in balancer.forwarded:
        if not forwarded.path.startswith("/hooks/") or forwarded.status != 200:
            continue
        worker = seen.backends[forwarded.backend]
        report.callbacks_by_worker[worker] += 1
        job = jobs.get(forwarded.path.split("/")[2])
        if job is None or job.task_id in polled or job.message_id is None or job.chat_id is None:
            continue
        if json.loads(forwarded.body or b"{}").get("status") != "SUCCESS":
            continue
        holder = seen.holder_at(job.lease, forwarded.at)
        key = (str(job.platform), int(job.chat_id), int(job.message_id))
        if holder not in (None, worker) and is_final(telegram, discord, key):
            report.results_by_other_worker.append(job.id)


def _platforms(report: Report, seen: Observed, telegram: TelegramFake, discord: DiscordFake,
               balancer: RoundRobin) -> None:
    report.telegram_429 = [f"{method} in {chat}" for method, chat, _ in telegram.rate_limited]
    report.discord_429 = discord.sent_429
    report.telegram_violations = list(telegram.violations)
    report.discord_violations = [f"{v.method} {v.path}: {v.kind} {v.detail}" for v in discord.violations
                                 if v.kind != "double-ack"]  # fmt: skip
    report.double_acks = [int(v.path.split("/")[2]) for v in discord.violations if v.kind == "double-ack"]
    report.victim_interactions = set(seen.victim_interactions)
    report.identify_violations = len(discord.identify_violations)
    report.identifies = len(discord.identifies)
    report.updates_by_worker = Counter(seen.backends[f.backend] for f in balancer.forwarded
                                       if f.path == "/updates/telegram" and f.status == 200)  # fmt: skip
    report.spoof_statuses = list(seen.spoof_statuses)
    report.lags = list(seen.lags)


def _kill_outcome(report: Report, seen: Observed) -> None:
    report.killed_at, report.victim_chats = seen.killed_at, list(seen.victim_chats)
    report.moved = sorted(seen.moved.values())
    report.unmoved = [f"{p}:{c}/{m}" for p, c, m in seen.orphans if (p, c, m) not in seen.moved]
    for worker, beats in seen.beats.items():
        gaps = [b - a for a, b in itertools.pairwise(sorted(beats))
                if not (seen.killed_at and a < seen.killed_at < b and worker == seen.victim)]  # fmt: skip
        report.beat_gaps[worker] = round(max(gaps, default=0.0), 2)


def transcript(path: Path, seen: Observed, senders: Senders, zero: float) -> None:
    """Every Telegram call and Discord bot-token message request that named a chat, per chat, with its
    worker and time (from `zero`: the kill, if any), then every event the workers sent each other."""
    lines = senders.telegram_lines(zero)
    for at, sender, method, where in senders.discord:
        if "/channels/" in where and "/messages" in where:
            lines.setdefault(f"discord {where.split('/')[4]}", []).append(
                f"  {at - zero:+8.3f} {sender} {method} {where}")
    for at, payload in seen.events:
        origin, _, rest = payload.partition(" ")
        who = seen.instances.get(origin, origin)
        lines.setdefault("events", []).append(f"  {at - zero:+8.3f} {who} {rest}")
    path.write_text("".join(f"{chat}\n" + "\n".join(calls) + "\n" for chat, calls in lines.items()),
                    encoding="utf-8")
