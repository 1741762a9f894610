"""Every benchmark script starts the way RESULTS.md says to run it: `python bench/<name>.py`.

Run as a file, bench/ is first on sys.path, where bench/providers.py, bench/telegram.py and
bench/discord.py would shadow the packages of those names; each script must guard against that.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (ROOT / "bench").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_script_runs_as_a_file(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script.relative_to(ROOT)), "--help"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")


def quick(script: str, within: float) -> str:
    """`python bench/<script> --quick`: what it printed, once it ended well."""
    done = subprocess.run([sys.executable, f"bench/{script}", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=within)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_store_benchmark_runs_every_scenario_on_both_engines() -> None:
    """At tiny sizes (figures mean nothing here): every scenario ends and the table has each row."""
    table = quick("store.py", within=300)
    assert "| metric | sqlite | postgresql |" in table
    for row in ("jobs/s", "apply_snapshot p50 / p99", "after: blobs, changed columns", "live: peak RSS"):
        assert row in table, (row, table)
    after = next(line for line in table.splitlines() if "after: blobs" in line)
    for cell in after.split("|")[2:4]:  # a blend's progress no longer writes nor reads its inputs (MBs)
        assert re.search(r", [\d.]+ k?B written, [\d.]+ k?B read", cell), after


def test_the_workers_benchmark_runs_every_scenario() -> None:
    """At tiny sizes (one and two workers, a takeover, a few events): every table is printed, every
    command is shown once."""
    table = quick("workers.py", within=120)
    assert "| metric | 1 worker | 2 workers |" in table
    assert "| results shown exactly once | 24/24 | 24/24 |" in table
    for row in ("provider status requests per job", "kill → every one changed (max)",
                "change → listener on the other worker, one at a time", "| changes heard | 40/40 |"):
        assert row in table, (row, table)


def tiny(script: str, *arguments: str, within: float = 120) -> str:
    """`python bench/<script> <arguments>`: what it printed, once it ended well."""
    done = subprocess.run([sys.executable, f"bench/{script}", *arguments], cwd=ROOT, capture_output=True,
                          text=True, timeout=within)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_discord_benchmark_runs_jobs_finishing_together() -> None:
    """A few jobs at a small scale (figures mean nothing here): every grid shown, the table complete."""
    table = tiny("discord.py", "--scenario", "finish-together", "--jobs", "3", "--duration", "1",
                 "--scale", "0.2")  # fmt: skip
    for row in ("completion → final grid shown p50 / p99 / max", "**429s from the fake**",
                "**REST requests per job**", "| requests the fake refused (violations) | 0 |"):
        assert row in table, (row, table)


def test_the_telegram_benchmark_runs_both_scenarios() -> None:
    table = tiny("telegram.py", "--jobs", "3", "--duration", "3", "--scale", "0.05")
    for row in ("**commands → every result shown (Telegram s)**",
                "**messages sent per job** (sends + edits)"):
        assert row in table, (row, table)
    table = tiny("telegram.py", "--scenario", "reply-while-progress", "--commands", "2", "--every", "1",
                 "--scale", "0.3")  # fmt: skip
    assert "**command → reply p50 / p99 / max (Telegram s)**" in table, table


def test_the_webhooks_benchmark_runs_with_real_size_grids() -> None:
    table = tiny("webhooks.py", "--grid", "real", "--jobs", "2", "--rate", "4", "--duration", "1")
    assert "2048x2048 PNG grids" in table and "| callbacks, discord, 2048² grids | 2/2 |" in table, table
