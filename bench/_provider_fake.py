"""Shared by the benchmarks: a provider fake in a process of its own, with jittered job lengths, and the
listener, percentile, table and header line they report with."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import platform
import random
import subprocess
import time
from dataclasses import dataclass
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bot.domain import Job
from tests.fakes._server import FakeServer
from tests.fakes.midapi import MidapiFake
from tests.fakes.midjourney_api import MidjourneyApiFake
from tests.fakes.mj_proxy import MjProxyFake

_MJ_PROXY_STAGES = 6  # sleeps in the mj_proxy fake's progression before SUCCESS


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile (0..1); NaN for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def header(script: str) -> str:
    """Date, commit (of the tree the script runs from) and Python, for the results' "before/after" rows."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1]).stdout.strip() or "?"  # fmt: skip
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{script}: {date.today()}, commit {commit}, {python}, nproc {os.cpu_count()}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


class Finished:
    """Listener: when each job was first seen terminal (`time.monotonic`)."""

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


def provider_entry(kind: str, base_url: str, jobs: int, poll_interval: float) -> dict[str, Any]:
    """The `providers:` entry pointing the bot at the fake (no concurrency cap below `jobs`)."""
    key = "test-secret" if kind == "mj_proxy" else "test-key"
    entry = {"name": kind, "type": kind, "base_url": base_url, "api_key": key, "max_concurrency": jobs,
             "poll_interval": poll_interval, "request_timeout": 30, "job_timeout": 600}  # fmt: skip
    if kind == "mj_proxy":
        entry["batch_size"] = 100
    return entry


@dataclass
class FakeResults:
    finished_at: dict[str, float]  # provider task id -> time.monotonic() the fake finished it
    requests: int  # API requests the fake received (submits, status calls; not image downloads)
    downloads: int  # image downloads (`/cdn/...`)


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

    async def results(self) -> FakeResults:
        """Stop the fake; its task completion times and how many requests it received."""
        self._conn.send("stop")
        finished_at, requests, downloads = await asyncio.to_thread(self._conn.recv)
        return FakeResults(finished_at, requests, downloads)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._process.join, 10)


def _fake_main(kind: str, duration: float, seed: int, conn: Connection) -> None:
    random.seed(seed)
    asyncio.run(_serve_fake(kind, duration, conn))


async def _serve_fake(kind: str, duration: float, conn: Connection) -> None:
    async with _fake(kind, duration) as fake:
        conn.send(fake.base_url)
        await asyncio.to_thread(conn.recv)
        downloads = sum(1 for _, path in fake.requests if "/cdn/" in path)
        finished_at = dict(fake.finished_at)  # type: ignore[attr-defined]
        conn.send((finished_at, len(fake.requests) - downloads, downloads))
