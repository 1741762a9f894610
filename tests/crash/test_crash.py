"""`imagine-bot run` SIGKILLed at every window a command passes and at random moments, then restarted:
nothing is lost, nothing is done twice, every result is shown once (see tests/crash/harness.py).

bench/crash.py runs the same harness with 200 jobs and more; its figures are in bench/RESULTS.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import postgres
from tests.crash.harness import FAULT_POINTS, Plan, Report, crash_run, markdown

# aiohttp's multipart reader (the fake Telegram's, reading an upload) calls its own deprecated
# `unread_data()` when a chunk splits a certain way; as an error (pyproject: filterwarnings) the fake
# would answer that upload 500 and the bot's log would show a traceback that is none of its own.
# Uploads cut off by a kill leave aiohttp's spooled temporary files unclosed; the harness collects
# them before it returns, under this filter (they are the fake's, not the bot's).
pytestmark = [
    pytest.mark.filterwarnings("ignore:unread_data:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Unclosed file <tempfile.SpooledTemporaryFile:ResourceWarning"),
]

PLANS = {
    # reconcile through the proxy's task list; two submits that create their task and never answer
    "mj_proxy": Plan(provider="mj_proxy", jobs=48, random_kills=5, hangs=2, seed=11),
    # the built-in provider: nothing charged at the provider, an unknown submit is sent again
    "local": Plan(provider="local", jobs=30, random_kills=3, hangs=0, seed=12),
}


def check(report: Report, plan: Plan) -> None:
    """Everything the README promises across crashes, from the chats, the store and the provider."""
    print(markdown([report]))  # the figures, with -s or on failure
    assert report.unfired == [] and report.other_deaths == []
    assert report.kill_count == plan.kills
    assert all(report.kills[point] == 1 for point in plan.faults), report.kills  # each window was hit
    assert report.lost == []  # every /imagine has its job ...
    assert report.duplicated_jobs == []  # ... exactly one
    assert report.not_succeeded == {}
    assert report.shown_once == plan.jobs, (report.never_shown, report.shown_twice)
    assert report.wrong_message == []  # the message showing the grid is the one the store knows
    assert report.wrong_language == []  # each result in its asker's language (one of them Russian)
    assert report.double_charges == 0 and report.uncharged == [] and report.refunded_successes == []
    assert report.integrity == "ok"
    assert report.unconfirmed_updates == 0 and report.final_exit == 0
    assert report.tracebacks == 0  # nothing on the way (a lock, a lost answer) escaped as an error
    # A first reply can go out twice only when a kill falls between Telegram's answer and the store
    # write (Telegram has no idempotency key): one process life never sends one twice, and the extra
    # message is left as it was: a placeholder, or the result when the first reply was the result
    # itself (a job that ended before its reply's turn). Those are the only extra grids (shown_once).
    assert report.replied_twice_in_one_life == []
    assert report.duplicate_first_replies <= report.kill_count * plan.chats
    assert report.orphaned_results <= report.duplicate_first_replies


@pytest.mark.parametrize("name", list(PLANS))
async def test_sigkill_at_every_window_loses_and_repeats_nothing(name: str, tmp_path: Path) -> None:
    plan = PLANS[name]
    assert set(plan.faults) == set(FAULT_POINTS)
    report = await crash_run(plan, tmp_path)
    check(report, plan)
    if plan.provider == "mj_proxy":
        assert report.duplicated_submits == [] and report.provider_tasks == plan.jobs  # one task each
        assert report.hangs >= 1  # a submit timed out with its task created, and was reconciled


async def test_sigkill_during_postgresql_writes_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """The same lives on a PostgreSQL store: killed at every window and at random moments while it writes."""
    plan = PLANS["local"]
    async with postgres.database() as url:
        report = await crash_run(plan, tmp_path, database=url)
    check(report, plan)

