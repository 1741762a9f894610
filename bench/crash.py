"""Crash safety at scale: `imagine-bot run` SIGKILLed again and again while /imagine commands arrive.

    .venv/bin/python bench/crash.py [--jobs 200] [--kills 30] [--hangs 6] [--provider both|mj_proxy|local]

The harness of tests/crash (tests/crash/harness.py) with more of everything: a real `imagine-bot run`
process against the fake Telegram Bot API and a provider fake served from this process on 127.0.0.1
(mj_proxy, which can be asked what an unanswered submit created; and the built-in local provider).
Two thirds of the kills fall at the fault points of bot/faults.py, round-robin (a Telegram update
committed but not processed, a job stored but not replied to, a reply sent but not recorded, a submit
claimed but not sent, a submit answered but not recorded), the rest at random moments; `--hangs`
mj_proxy submits create their task and never answer (the bot's 1 s request_timeout runs out); its task
list (how an unanswered submit is looked up) holds the newest 100 tasks, as trueai's does. A last
life without faults runs until every command shows its result. Then the chats, the SQLite file and the
provider's tasks are compared: one table, one column per provider. Exits 1 if a promise broke.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/crash.py`: bench/providers.py must not shadow `providers`
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import tempfile

from tests.crash.harness import FAULT_POINTS, Plan, Provider, Report, crash_run, markdown


def plan(provider: Provider, args: argparse.Namespace) -> Plan:
    at_points = args.kills * 2 // 3
    faults = tuple(FAULT_POINTS[n % len(FAULT_POINTS)] for n in range(at_points))
    return Plan(provider=provider, jobs=args.jobs, random_kills=args.kills - at_points, faults=faults,
                hangs=args.hangs if provider == "mj_proxy" else 0, seed=args.seed,
                list_limit=args.list_limit or None,
                settle_within=max(120.0, args.jobs * 1.0))  # fmt: skip


def broken(report: Report) -> list[str]:
    """The promises a report shows broken, in words (empty: all held)."""
    problems = {
        "lost commands": report.lost,
        "commands with two jobs": report.duplicated_jobs,
        "jobs not succeeded": [f"{p}: {s}" for p, s in report.not_succeeded.items()],
        "results never shown": report.never_shown,
        "results shown twice": report.shown_twice,
        "grid on a message the store does not know": report.wrong_message,
        "first reply sent twice by one process": report.replied_twice_in_one_life,
        "duplicated provider submits": report.duplicated_submits or [],
        "jobs without a charge": report.uncharged,
        "succeeded jobs refunded": report.refunded_successes,
        "armed faults never reached": report.unfired,
    }
    lines = [f"{what}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
             for what, items in problems.items() if items]  # fmt: skip
    if report.double_charges:
        lines.append(f"double charges: {report.double_charges}")
    if report.integrity != "ok":
        lines.append(f"integrity_check: {report.integrity}")
    if report.final_exit != 0:
        lines.append(f"the last life exited with {report.final_exit}")
    return lines


async def bench(args: argparse.Namespace) -> int:
    providers: list[Provider] = ["mj_proxy", "local"] if args.provider == "both" else [args.provider]
    reports = []
    say = print if args.verbose else None
    for provider in providers:
        if args.keep:  # the logs of every life, the config and the database, to look at afterwards
            workdir = Path(args.keep) / provider
            workdir.mkdir(parents=True, exist_ok=False)
            reports.append(await crash_run(plan(provider, args), workdir, say))
            continue
        with tempfile.TemporaryDirectory(prefix=f"crash-{provider}-") as temporary:
            reports.append(await crash_run(plan(provider, args), Path(temporary), say))
    print(markdown(reports))
    failed = False
    for report in reports:
        for line in broken(report):
            print(f"{report.provider}: {line}")
            failed = True
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="/imagine commands (each its own prompt)")
    parser.add_argument("--kills", type=int, default=30, help="SIGKILLs (2/3 at fault points, 1/3 random)")
    parser.add_argument("--hangs", type=int, default=6, help="mj_proxy submits that never answer")
    parser.add_argument("--provider", choices=("both", "mj_proxy", "local"), default="both")
    parser.add_argument("--list-limit", type=int, default=100,
                        help="tasks in mj_proxy's task list: trueai's newest 100, or 0 for all (novicezk)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="a line per process life")
    parser.add_argument("--keep", metavar="DIR", help="keep each run's logs and database in DIR/<provider>")
    sys.exit(asyncio.run(bench(parser.parse_args())))


if __name__ == "__main__":
    main()
