"""Provider HTTP requests per job and completion → listener latency, polling vs callbacks.

    .venv/bin/python bench/providers.py [--jobs 500] [--duration 2.0] [--poll-interval 1.0]

For each of midjourney_api and mj_proxy (batched status: job-status / list-by-condition) and midapi
(one record-info per task), N concurrent /imagine jobs go through the real bot (service, store,
poller, webhook receiver, httpx) against the loopback fake, once with polling only and once with
callbacks (the fallback poll set far out, so callbacks alone finish the jobs). Every job takes
`--duration` seconds inside the fake, x0.5-1.5 at random. Reported:

- provider requests per job: every request the fake received (submits + status calls), divided by N
  (image downloads are not made: nothing here fetches results);
- completion → listener: from the moment the fake marks the task finished to the moment a listener
  of the bot sees the job terminal (p50 / p99 / max).

The fake runs in a process of its own (its own event loop and core); the bot under test is this
process. The poll cadence (1 s) and job length (2 s) are scaled down from real values (3-30 s polls,
30-60 s jobs): requests per job scale with job length / poll interval, latencies with the interval.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/providers.py`: this file must not shadow the providers package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import platform
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from bench._provider_fake import FakeProcess, Finished, markdown_table, percentile, provider_entry
from bot.access import Caller
from bot.app import build_app, running
from bot.config import parse_config
from bot.domain import Owner

OWNER = Owner(platform="bench", user_id="bench", name="bench")


@dataclass
class Row:
    provider: str
    mode: str
    jobs: int
    succeeded: int
    requests: int
    fetch_calls: int
    latencies: list[float]
    wall: float

    def cells(self) -> list[str]:
        lat = self.latencies
        p50 = statistics.median(lat) if lat else float("nan")
        return [
            self.provider, self.mode, f"{self.succeeded}/{self.jobs}", f"{self.requests / self.jobs:.2f}",
            str(self.fetch_calls), f"{p50 * 1000:.0f}", f"{percentile(lat, 0.99) * 1000:.0f}",
            f"{max(lat, default=0) * 1000:.0f}", f"{self.wall:.1f}",
        ]  # fmt: skip


HEADER = ["provider", "mode", "ok", "requests/job", "status calls", "p50 ms", "p99 ms", "max ms", "wall s"]


async def scenario(kind: str, callbacks: bool, args: argparse.Namespace) -> Row:
    fake = FakeProcess(kind, args.duration, seed=7)
    async with fake as base_url:
        with tempfile.TemporaryDirectory() as tmp:
            document: dict[str, Any] = {
                "database": str(Path(tmp) / "bench.sqlite3"),
                "default_provider": kind,
                "providers": [provider_entry(kind, base_url, args.jobs, args.poll_interval)],
                "polling": {"idle_interval": 0.2},
            }
            if callbacks:
                hooks = {"listen": "127.0.0.1:0", "public_url": "http://x", "poll_interval": 600}
                document["webhooks"] = hooks
            async with build_app(parse_config(document, {})) as app, running(app):
                if app.webhooks is not None:
                    app.webhooks.public_url = f"http://127.0.0.1:{app.webhooks.port}"
                finished = Finished(args.jobs)
                app.listeners.add(finished)
                start = time.monotonic()
                for i in range(args.jobs):
                    await app.service.imagine(Caller(OWNER), f"bench lighthouse {i}")
                await asyncio.wait_for(finished.all_done.wait(), timeout=120)
                wall = time.monotonic() - start
                if app.webhooks is not None:
                    await app.webhooks.settled()
                fetch_calls = app.poller.fetch_requests
                got = await fake.results()
    done_at, requests = got.finished_at, got.requests
    latencies = [
        finished.at[job_id] - done_at[job.provider_task_id]
        for job_id, job in finished.jobs.items()
        if job.provider_task_id in done_at
    ]
    succeeded = sum(1 for job in finished.jobs.values() if job.state.value == "succeeded")
    return Row(kind, "callbacks" if callbacks else "polling", args.jobs, succeeded, requests, fetch_calls,
               latencies, wall)  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    rows = []
    for kind in ("midjourney_api", "mj_proxy", "midapi"):
        for callbacks in (False, True):
            row = await scenario(kind, callbacks, args)
            print(f"  {kind:<15} {row.mode:<9} done in {row.wall:.1f} s", file=sys.stderr, flush=True)
            rows.append(row)
    python = f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}"
    print(f"{args.jobs} jobs per run, {args.duration} s per job in the fake (x0.5-1.5),"
          f" poll_interval {args.poll_interval} s; {python}")  # fmt: skip
    print(markdown_table(HEADER, [row.cells() for row in rows]))


if __name__ == "__main__":
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds each job takes in the fake")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="the providers' poll_interval")
    random.seed(7)
    asyncio.run(main(parser.parse_args()))
