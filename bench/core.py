"""Core pipeline benchmark: service -> store -> poller -> listener on the local provider.

    .venv/bin/python bench/core.py            # both scenarios, each in its own process, then a table

Scenarios (real clock, real SQLite file, the real poller loop):
  burst  2,000 jobs on a 0 s simulated duration: how fast the pipeline itself turns jobs over.
  live   1,000 jobs running at once on a 10 s simulated duration: polling cost and memory with many
         live jobs.
Figures: jobs/s (first imagine to last final notification), provider fetch requests per job,
p50/p99 latency from the provider's completion (start + duration, as encoded in the local task id)
to the listener's final notification, event-loop lag p99 (a 10 ms ticker's overshoot), peak RSS.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/core.py`: bench/providers.py must not shadow the providers package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from typing import Any

from bot.access import Caller
from bot.app import build_app, running
from bot.config import AppConfig, PollingConfig
from bot.domain import Job, Owner
from providers.local import LocalConfig, LocalProvider, _unpack

OWNER = Owner(platform="bench", user_id="bench")
SCENARIOS: dict[str, dict[str, Any]] = {
    "burst": {"jobs": 2000, "duration": 0.0, "poll_interval": 0.5},
    "live": {"jobs": 1000, "duration": 10.0, "poll_interval": 1.0},
}


class Finished:
    """The listener: notes when each job's final state arrives."""

    def __init__(self, total: int) -> None:
        self.at: dict[str, float] = {}
        self.jobs: dict[str, Job] = {}
        self.total = total
        self.all_done = asyncio.Event()

    async def job_changed(self, job: Job) -> None:
        if job.terminal and job.id not in self.at:
            self.at[job.id] = time.time()
            self.jobs[job.id] = job
            if len(self.at) == self.total:
                self.all_done.set()


async def _lag_sampler(samples: list[float], stop: asyncio.Event, period: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(period)
        samples.append(max(0.0, loop.time() - start - period))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run_scenario(name: str) -> dict[str, Any]:
    spec = SCENARIOS[name]
    with tempfile.TemporaryDirectory() as tmp:
        provider = LocalConfig(
            name="local", duration=spec["duration"], poll_interval=spec["poll_interval"],
            max_concurrency=spec["jobs"], job_timeout=600.0,
        )  # fmt: skip
        config = AppConfig(database=Path(tmp) / "bench.sqlite3", providers=[provider],
                           polling=PollingConfig(idle_interval=0.5))  # fmt: skip
        async with build_app(config) as app, running(app):
            finished = Finished(spec["jobs"])
            app.listeners.add(finished)
            lags: list[float] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(_lag_sampler(lags, stop))
            started = time.time()
            for i in range(spec["jobs"]):
                await app.service.imagine(Caller(OWNER), f"benchmark job {i} --seed {i}")
            created = time.time()
            await asyncio.wait_for(finished.all_done.wait(), timeout=110)
            ended = time.time()
            stop.set()
            await sampler
            local = app.pool.get("local")
            assert isinstance(local, LocalProvider)
            fetches = local.calls["fetch"]
    latencies = []
    for job_id, at in finished.at.items():
        task = _unpack(finished.jobs[job_id].provider_task_id or "")
        latencies.append(at - (float(task["t"]) + float(task["d"])))
    states = {job.state.value for job in finished.jobs.values()}
    return {
        "scenario": name, "jobs": spec["jobs"], "duration": spec["duration"], "poll": spec["poll_interval"],
        "states": sorted(states), "seconds": ended - started, "create_seconds": created - started,
        "jobs_per_s": spec["jobs"] / (ended - started), "fetch_per_job": fetches / spec["jobs"],
        "lat_p50_ms": _pct(latencies, 0.5) * 1000, "lat_p99_ms": _pct(latencies, 0.99) * 1000,
        "lag_p99_ms": _pct(lags, 0.99) * 1000, "lag_max_ms": max(lags) * 1000,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| scenario | jobs | sim. duration | poll interval | wall s | jobs/s | fetch req/job "
        "| completion→listener p50 / p99 ms | loop lag p99 ms | peak RSS MB |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['jobs']} | {r['duration']:g} s | {r['poll']:g} s | {r['seconds']:.1f} "
            f"| {r['jobs_per_s']:.0f} | {r['fetch_per_job']:.4f} "
            f"| {r['lat_p50_ms']:.0f} / {r['lat_p99_ms']:.0f} "
            f"| {r['lag_p99_ms']:.1f} | {r['rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--one", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    args = parser.parse_args()
    if args.one:  # a child process: one scenario, JSON out (so peak RSS is the scenario's own)
        print(json.dumps(asyncio.run(run_scenario(args.one))))
        return
    rows = []
    for name in args.scenario or list(SCENARIOS):
        out = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
        rows.append(json.loads(out.strip().splitlines()[-1]))
        states = rows[-1]["states"]
        if states != ["succeeded"]:
            print(f"warning: {name} ended with states {states}", file=sys.stderr)
    print(
        f"machine: {os.cpu_count()} cpu ({platform.machine()}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; {time.strftime('%Y-%m-%d')}"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
