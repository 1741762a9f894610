"""Three `imagine-bot run` workers on one PostgreSQL behind a round-robin balancer, against the fake
Discord (two shards), the fake Telegram (webhook mode) and the midjourney-proxy fake (callbacks): 300
/imagine commands across 16 Telegram chats and 4 Discord channels in 12 s, w1 SIGKILLed in the middle
and started again a few seconds later.

Every command ends as one job that succeeds and shows its result once, on the message the store has; no
task is submitted twice and no job charged twice; neither platform answers 429; each chat is shown by
one worker at a time; a callback taken by a worker that does not show the job's chat still brings its
message to the result; an update without the webhook's secret token is refused and leaves nothing
behind. See tests/workers/harness.py (the run) and tests/workers/report.py (what is counted).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.workers.harness import Cluster, Plan
from tests.workers.report import Report

pytestmark = pytest.mark.filterwarnings("ignore:unread_data:DeprecationWarning")  # see test_crash.py

#: A lease of 5 s: on two cores running the whole suite, a live worker's loop can stall for seconds.
PLAN = Plan(workers=3, jobs=300, spread=12.0, kill=True, lease=5.0, down_for=6.5)
#: First replies a kill may show twice: sent by w1 just before it died, before the store had their
#: message id, and sent again by the worker that took the chat over (as tests/crash/harness.py has it
#: for one process); a Discord command w1 acknowledged ("thinking…") but did not answer is answered by
#: a new channel message instead. Only jobs of w1's chats from before the takeover, a few in flight.
DUPLICATE_BOUND = 6


def problems(report: Report) -> list[str]:
    """Every promise the run broke, in words (empty: all held)."""
    left = report.left_by_victim
    twice = {**report.duplicate_first_replies, **report.results_sent_twice}
    turns = {chat: t for chat, t in report.chat_turns.items()
             if len(t) > (2 if chat in report.victim_chats else 1)}  # fmt: skip
    acked_again = sorted(set(report.double_acks) - report.victim_interactions)
    gaps = {worker: gap for worker, gap in report.beat_gaps.items() if gap >= PLAN.lease}
    checks: dict[str, object] = {
        # every command: one job, succeeded, its result shown once on the message the store has
        "lost commands": report.lost,
        "commands with two jobs": report.duplicated_jobs,
        "jobs not succeeded": report.not_succeeded,
        "results never shown": report.never_shown,
        "results shown by two messages": report.shown_twice,
        "results on a message the store does not have": report.wrong_message,
        # ... its first reply (and its result) sent once by any one worker; twice only across a kill
        "first replies sent twice by one worker": report.replied_twice_by_one_worker,
        "sent twice, not left by the killed worker": sorted(set(twice) - left),
        f"sent twice, more than {DUPLICATE_BOUND}": len(twice) > DUPLICATE_BOUND and sorted(twice),
        # the provider: one task per command; the ledger: one charge per job, none for anything else
        "duplicated provider submits": report.duplicated_submits,
        "jobs without a charge": report.uncharged,
        "commands charged twice": report.double_charges,
        "charges of jobs never stored": report.charges_without_job,
        # the platforms: paced, valid; Discord shards identified in turn (w1 twice)
        "Telegram 429s": report.telegram_429,
        "Discord 429s": report.discord_429,
        "Telegram violations": report.telegram_violations,
        "Discord violations": report.discord_violations,
        "acknowledged twice, not by w1's next life": acked_again,
        "identify violations": report.identify_violations,
        # one worker at a time shows a chat: a live worker keeps its leases; w1's chats move once
        f"heartbeat gaps of {PLAN.lease:g} s or more": gaps,
        "chats shown by more workers than the kill explains": turns,
        # callbacks and updates land on any worker; one taken by another worker still shows the result
        "workers that got no callback": 3 - len(report.callbacks_by_worker),
        "workers that got no update": 3 - len(report.updates_by_worker),
        "no result came by a callback to a worker not showing the chat": not report.results_by_other_worker,
        # the spoofed update: refused by whichever worker got it, and nothing came of it
        "spoofed updates not refused": [s for s in report.spoof_statuses if s != 403],
        "what the spoofed update left": report.spoof_traces,
        # the kill: w1's unfinished messages moved on (how soon is bench/workers.py's figure); w1 came back
        "w1's messages never moved": report.unmoved,
        "workers not listed live": [w for w in ("w0", "w1", "w2")
                                    if not re.search(rf"^{w}\s+live\b", report.listing, re.MULTILINE)],
        "exits after SIGTERM": {w: code for w, code in report.exits.items() if code != 0},
        "tracebacks in the logs": {log: n for log, n in report.tracebacks.items() if n},
        "secrets in the logs": report.secrets_in_logs,
    }  # fmt: skip
    return [f"{what}: {found}" for what, found in checks.items() if found]


async def test_three_workers_share_a_burst_while_one_is_killed(tmp_path: Path) -> None:
    report = await Cluster(PLAN, tmp_path, say=print).execute()
    print(*(f"{name}: {value}" for name, value in report.rows()), sep="\n")
    assert report.jobs == PLAN.jobs and report.sent["discord"] > 0 and report.sent["telegram"] > 0
    assert report.killed_at is not None and report.victim_chats, "w1 held no chat when it was killed"
    assert report.identifies >= 3 and len(report.exits) == 3 and report.tracebacks  # the run happened
    broken = problems(report)
    assert not broken, "\n".join([*broken, f"(every call per chat: {tmp_path / 'chats.txt'})"])
