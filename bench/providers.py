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
import multiprocessing
import platform
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bot.app import build_app, running
from bot.config import parse_config
from bot.domain import Job, Owner
from tests.fakes._server import FakeServer
from tests.fakes.midapi import MidapiFake
from tests.fakes.midjourney_api import MidjourneyApiFake
from tests.fakes.mj_proxy import MjProxyFake

OWNER = Owner(platform="bench", user_id="bench", name="bench")
_MJ_PROXY_STAGES = 6  # sleeps in the mj_proxy fake's progression before SUCCESS


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
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) if lat else float("nan")
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))] if lat else float("nan")
        return [
            self.provider, self.mode, f"{self.succeeded}/{self.jobs}", f"{self.requests / self.jobs:.2f}",
            str(self.fetch_calls), f"{p50 * 1000:.0f}", f"{p99 * 1000:.0f}",
            f"{max(lat, default=0) * 1000:.0f}", f"{self.wall:.1f}",
        ]  # fmt: skip


HEADER = ["provider", "mode", "ok", "requests/job", "status calls", "p50 ms", "p99 ms", "max ms", "wall s"]


class Finished:
    """Listener: when each job was first seen terminal."""

    def __init__(self, expected: int) -> None:
        self.at: dict[str, float] = {}
        self.jobs: dict[str, Job] = {}
        self._expected = expected
        self.all_done = asyncio.Event()

    async def job_changed(self, job: Job) -> None:
        if job.terminal and job.id not in self.at:
            self.at[job.id] = time.monotonic()
            self.jobs[job.id] = job
            if len(self.at) >= self._expected:
                self.all_done.set()


class Jittered:
    """A fake's duration attribute that varies per read (x0.5 to x1.5): real jobs do not finish in
    step with the poll schedule, so completion falls anywhere inside a poll interval."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = f"_{name}_base"

    def __get__(self, obj: Any, owner: type | None = None) -> float:
        return float(getattr(obj, self._name)) * random.uniform(0.5, 1.5)

    def __set__(self, obj: Any, value: float) -> None:
        setattr(obj, self._name, value)


class JitteredMidjourneyApi(MidjourneyApiFake):
    duration = Jittered()


class JitteredMjProxy(MjProxyFake):
    step = Jittered()


class JitteredMidapi(MidapiFake):
    duration = Jittered()


def _fake(kind: str, duration: float) -> FakeServer:
    if kind == "midjourney_api":
        return JitteredMidjourneyApi(duration=duration)
    if kind == "mj_proxy":
        return JitteredMjProxy(step=duration / _MJ_PROXY_STAGES)
    return JitteredMidapi(duration=duration)


def _entry(kind: str, base_url: str, jobs: int, poll_interval: float) -> dict[str, Any]:
    key = "test-secret" if kind == "mj_proxy" else "test-key"
    entry = {"name": kind, "type": kind, "base_url": base_url, "api_key": key, "max_concurrency": jobs,
             "poll_interval": poll_interval, "request_timeout": 30, "job_timeout": 600}  # fmt: skip
    if kind == "mj_proxy":
        entry["batch_size"] = 100
    return entry


class FakeProcess:
    """The fake in its own process (its own core and event loop), so the figures are the bot's and
    not the fake's work competing with it. `time.monotonic` is system-wide on Linux, so the fake's
    completion times compare with the bot's."""

    def __init__(self, kind: str, duration: float, seed: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_fake_main, args=(kind, duration, seed, child), daemon=True)

    async def __aenter__(self) -> str:
        self._process.start()
        return str(await asyncio.to_thread(self._conn.recv))

    async def results(self) -> tuple[dict[str, float], int]:
        """Stop the fake; its task completion times and how many provider requests it received."""
        self._conn.send("stop")
        finished_at, requests = await asyncio.to_thread(self._conn.recv)
        return finished_at, requests

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._process.join, 10)


def _fake_main(kind: str, duration: float, seed: int, conn: Connection) -> None:
    random.seed(seed)
    asyncio.run(_serve_fake(kind, duration, conn))


async def _serve_fake(kind: str, duration: float, conn: Connection) -> None:
    async with _fake(kind, duration) as fake:
        conn.send(fake.base_url)
        await asyncio.to_thread(conn.recv)
        requests = sum(1 for _, path in fake.requests if "/cdn/" not in path)
        conn.send((dict(fake.finished_at), requests))  # type: ignore[attr-defined]


async def scenario(kind: str, callbacks: bool, args: argparse.Namespace) -> Row:
    fake = FakeProcess(kind, args.duration, seed=7)
    async with fake as base_url:
        with tempfile.TemporaryDirectory() as tmp:
            document: dict[str, Any] = {
                "database": str(Path(tmp) / "bench.sqlite3"),
                "default_provider": kind,
                "providers": [_entry(kind, base_url, args.jobs, args.poll_interval)],
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
                    await app.service.imagine(OWNER, f"bench lighthouse {i}")
                await asyncio.wait_for(finished.all_done.wait(), timeout=120)
                wall = time.monotonic() - start
                if app.webhooks is not None:
                    await app.webhooks.settled()
                fetch_calls = app.poller.fetch_requests
                done_at, requests = await fake.results()
    latencies = [
        finished.at[job_id] - done_at[job.provider_task_id]
        for job_id, job in finished.jobs.items()
        if job.provider_task_id in done_at
    ]
    succeeded = sum(1 for job in finished.jobs.values() if job.state.value == "succeeded")
    return Row(kind, "callbacks" if callbacks else "polling", args.jobs, succeeded, requests, fetch_calls,
               latencies, wall)  # fmt: skip


def _table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


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
    print(_table(rows))


if __name__ == "__main__":
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds each job takes in the fake")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="the providers' poll_interval")
    random.seed(7)
    asyncio.run(main(parser.parse_args()))
