"""Several workers on one PostgreSQL: throughput, provider polls, takeover time, cross-worker events.

    .venv/bin/python bench/workers.py [--jobs 300] [--workers 1 2 3] [--events 500]
    .venv/bin/python bench/workers.py --quick            # a smoke test: tiny sizes, figures mean nothing

Real `imagine-bot run` processes (tests/workers/harness.py), against the fakes served from this process:
Telegram in webhook mode, Discord with two shards (w0 shard 0, w1 shard 1, a lone worker both), the
midjourney-proxy fake (tasks of six changes `--step` s apart, a callback on each), and a round-robin
balancer in front of every worker's webhook port. Scenarios:

  pipeline  for 1, 2 and 3 workers: the same burst on the built-in `local` provider with 0 s per job
            (no callbacks: each job polled once): jobs/s through the whole pipeline.
  scale     for 1, 2 and 3 workers: `--jobs` /imagine commands at once over many chats (`--chats`
            private chats, a few groups, 4 Discord channels): jobs/s from the first command to the last
            result shown; provider status requests (list-by-condition / fetch) and task ids asked per
            job, with the fallback poll for callback jobs at `--fallback-poll` s so polls happen at all
            (they must not grow with workers: a due poll is claimed by one worker); callbacks per job;
            429s; results shown exactly once.
  takeover  3 workers, the commands at 25 a second, w1 SIGKILLed when 40% of them are in (started
            again `--lease` + 3 s later): from the kill until each message w1 had shown and not
            finished changes next, edited by the worker that took its chat (p50 / max), with
            `workers.lease` at `--lease` s.
  events    in this process: two JobStores on one PostgreSQL database, the second with a SharedEvents;
            a job change stored through the first reaches a listener of the second (the database's
            trigger NOTIFYs, the listener reads the job): p50 / p99, one change at a time and
            `--events` changes at once.

This process serves the fakes for every worker, so on a small machine it is part of what is measured
(its event-loop lag is in the table). Nothing is written to bench/RESULTS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/workers.py`: bench/ must not shadow the top-level packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bot.domain import Job, JobState, Placement
from bot.events import Listeners, SharedEvents
from bot.store import JobStore
from tests import postgres
from tests.core.test_store import make
from tests.workers.harness import Cluster, Plan
from tests.workers.report import Report, markdown


def say(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


async def cluster(plan: Plan) -> Report:
    with tempfile.TemporaryDirectory(prefix=f"workers-{plan.workers}-") as workdir:
        return await Cluster(plan, Path(workdir), say).execute()


def plan(args: argparse.Namespace, workers: int, kill: bool, provider: str = "mj") -> Plan:
    """All commands at once; with a kill, 25 a second, so that w1 dies with work in flight."""
    spread = args.jobs / 25 if kill else 0.0
    return Plan(workers=workers, jobs=args.jobs, groups=4, privates=args.chats, channels=2, spread=spread,
                kill=kill, down_for=args.lease + 3.0, job_step=args.step, heartbeat=min(0.5, args.lease / 3),
                lease=args.lease, callback_poll=args.fallback_poll, settle_within=max(60.0, args.jobs * 0.5),
                provider=provider)


def broken(report: Report) -> list[str]:
    """The promises a run broke, in words (the bench's figures are only worth as much)."""
    problems = {
        "lost": report.lost, "two jobs": report.duplicated_jobs, "not succeeded": list(report.not_succeeded),
        "never shown": report.never_shown, "shown by two messages": report.shown_twice,
        "duplicated submits": report.duplicated_submits, "charged twice": report.double_charges,
        "charges of jobs never stored": report.charges_without_job, "Telegram 429s": report.telegram_429,
    }  # fmt: skip
    lines = [f"{what}: {len(found)}" for what, found in problems.items() if found]
    if report.discord_429:
        lines.append(f"Discord 429s: {report.discord_429}")
    return lines


# -- events between workers, in this process -----------------------------------------------------


class Arrivals:
    """A listener noting when each job's change arrived (time.perf_counter())."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.changed = asyncio.Event()

    async def job_changed(self, job: Job) -> None:
        self.at.setdefault(job.id, time.perf_counter())
        self.changed.set()


async def wait_for_all(heard: Arrivals, count: int) -> None:
    """Until `count` jobs were heard of (or nothing more came for 30 s)."""
    with contextlib.suppress(TimeoutError):
        while len(heard.at) < count:
            heard.changed.clear()
            await asyncio.wait_for(heard.changed.wait(), 30)


def quantiles(values: list[float]) -> str:
    if not values:
        return "–"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{statistics.median(ordered) * 1000:.1f} / {p99 * 1000:.1f} ms"


async def events(count: int) -> dict[str, Any]:
    """Latency of a change on one worker's store to a listener of another's, one at a time and at once."""
    async with postgres.database() as url:
        one, two = await JobStore.open(url), await JobStore.open(url)
        try:
            there, heard = Listeners(), Arrivals()
            there.add(heard)
            tasks = [asyncio.create_task(SharedEvents(two, there).run())]
            await asyncio.sleep(1.0)  # both listening
            placement = Placement(platform="telegram", chat_id="-1", message_id="1")
            jobs = [make(f"e{n:05d}", state=JobState.RUNNING, placement=placement) for n in range(2 * count)]
            for job in jobs:
                await one.insert(job)
            await wait_for_all(heard, len(jobs))  # each insert is an event too: heard, then forgotten
            heard.at.clear()

            async def change(job: Job) -> None:  # a progress report stored by the sending worker
                sent[job.id] = time.perf_counter()
                await one.save(job.model_copy(update={"progress": 50, "updated_at": time.time()}), job)

            sent: dict[str, float] = {}
            for job in jobs[:count]:  # one at a time
                heard.changed.clear()
                await change(job)
                await asyncio.wait_for(heard.changed.wait(), 10)
            one_by_one = [heard.at[j.id] - sent[j.id] for j in jobs[:count]]
            await asyncio.gather(*(change(job) for job in jobs[count:]))  # all at once
            await wait_for_all(heard, len(jobs))
            burst = [heard.at[j.id] - sent[j.id] for j in jobs[count:] if j.id in heard.at]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await one.close()
            await two.close()
    return {"one at a time": quantiles(one_by_one), f"{count} at once": quantiles(burst),
            "heard": f"{len(heard.at)}/{len(jobs)}"}


# -- the tables ----------------------------------------------------------------------------------


SCALE_ROWS: list[tuple[str, Callable[[Report], str]]] = [
    ("jobs (telegram + discord)", lambda r: f"{r.jobs} ({r.sent['telegram']} + {r.sent['discord']})"),
    ("jobs/s (first command to last result shown)", lambda r: f"{r.jobs_per_s:.1f}"),
    ("provider status requests per job", lambda r: r.per_job(r.status_requests)),
    ("task ids polled per job", lambda r: r.per_job(r.status_ids)),
    ("callbacks per job", lambda r: r.per_job(r.callbacks)),
    ("results shown exactly once", lambda r: f"{r.shown_once}/{r.jobs}"),
    ("platform 429s (telegram / discord)", lambda r: f"{len(r.telegram_429)} / {r.discord_429}"),
    ("event-loop lag of the fakes' process p99 / max", lambda r: dict(r.rows())[
        "event-loop lag of the fakes' process p99 / max"]),
    ("wall time", lambda r: f"{r.wall:.1f} s"),
]


_PROVIDER_FAKE_ONLY = ("provider", "callbacks", "task ids")  # counted at the mj_proxy fake
PIPELINE_ROWS = [row for row in SCALE_ROWS if not any(word in row[0] for word in _PROVIDER_FAKE_ONLY)]


def scale_table(reports: list[Report], rows: list[tuple[str, Callable[[Report], str]]] = SCALE_ROWS) -> str:
    header = ["metric", *(f"{r.workers} worker{'s' if r.workers > 1 else ''}" for r in reports)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += [f"| {label} | " + " | ".join(cell(r) for r in reports) + " |" for label, cell in rows]
    return "\n".join(lines)


def takeover_table(report: Report, lease: float) -> str:
    moved = report.moved
    rows = [
        ("workers.lease / heartbeat", f"{lease:g} s / {min(0.5, lease / 3):g} s"),
        ("chats w1 held at its death", str(len(report.victim_chats))),
        ("its unfinished messages moved / not", f"{len(moved)} / {len(report.unmoved)}"),
        ("kill → next change, p50", f"{statistics.median(moved):.1f} s" if moved else "–"),
        ("kill → every one changed (max)", f"{max(moved):.1f} s" if moved else "–"),
        ("longest heartbeat gap of a live worker", f"{max(report.beat_gaps.values(), default=0):.1f} s"),
    ]
    return "\n".join(["| metric | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])


async def bench(args: argparse.Namespace) -> int:
    failed = False
    piped: list[Report] = []
    for workers in args.workers:
        say(f"pipeline: {workers} worker(s), {args.jobs} jobs on the local provider")
        piped.append(await cluster(plan(args, workers, kill=False, provider="local")))
    scaled: list[Report] = []
    for workers in args.workers:
        say(f"scale: {workers} worker(s), {args.jobs} jobs")
        scaled.append(await cluster(plan(args, workers, kill=False)))
    say(f"takeover: 3 workers, {args.jobs} jobs, w1 killed")
    takeover = await cluster(plan(args, 3, kill=True))
    say(f"events: {args.events} changes")
    latency = await events(args.events)
    print(f"machine: {os.cpu_count()} cpu ({platform.machine()}), Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}; {time.strftime('%Y-%m-%d')}")  # fmt: skip
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"provider: mj_proxy fake, tasks of 6 changes {args.step:g} s apart, fallback poll "
          f"{args.fallback_poll:g} s; {args.chats} private chats, 4 groups, 4 Discord channels\n")
    print("### pipeline (the local provider, 0 s per job)\n")
    print(scale_table(piped, PIPELINE_ROWS))
    print("\n### scale (the mj_proxy fake)\n")
    print(scale_table(scaled))
    print("\n### takeover (3 workers, w1 SIGKILLed)\n")
    print(takeover_table(takeover, args.lease))
    print(f"\n### events between workers (PostgreSQL NOTIFY, {args.events} changes)\n")
    print("| metric | value |\n|---|---|")
    for name, value in latency.items():
        print(f"| change → listener on the other worker, {name} | {value} |" if name != "heard"
              else f"| changes heard | {value} |")
    runs = [*((r, f"pipeline, {r.workers} worker(s)") for r in piped),
            *((r, f"{r.workers} worker(s)") for r in scaled), (takeover, "takeover")]
    for report, name in runs:
        for line in broken(report):
            print(f"{name}: {line}", file=sys.stderr)
            failed = True
    if args.full:
        print("\n### takeover run, every figure\n")
        print(markdown([takeover]))
    return 1 if failed else 0


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--jobs", type=int, default=300, help="/imagine commands per run (default 300)")
    parser.add_argument("--workers", type=int, nargs="+", choices=(1, 2, 3), default=[1, 2, 3])
    parser.add_argument("--chats", type=int, default=60, help="Telegram private chats (default 60)")
    parser.add_argument("--step", type=float, default=0.3, help="seconds between a task's changes")
    parser.add_argument("--fallback-poll", type=float, default=1.0, help="webhooks.poll_interval (default 1)")
    parser.add_argument("--lease", type=float, default=3.0, help="workers.lease in seconds (default 3)")
    parser.add_argument("--events", type=int, default=500, help="changes in the events scenario")
    parser.add_argument("--full", action="store_true", help="also every figure of the takeover run")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (a smoke test; figures mean nothing)")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.workers, args.chats, args.events, args.step = 24, [1, 2], 8, 20, 0.05
        args.lease = 1.5
    sys.exit(asyncio.run(bench(args)))


if __name__ == "__main__":
    main()
