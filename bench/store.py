"""Store benchmark: the JobStore on SQLite and on PostgreSQL, through the real core.

    .venv/bin/python bench/store.py                       # both engines, every scenario, then a table
    .venv/bin/python bench/store.py --engine sqlite --quick

Each (scenario, engine) runs in its own process (so peak RSS is that scenario's own); PostgreSQL runs
get a fresh database on the test server (tests/postgres.py: $IMAGINE_BOT_TEST_PG, else 127.0.0.1:5432,
else a throwaway cluster), dropped after. Scenarios:

  throughput  --jobs /imagine jobs (distinct owners) through JobService.imagine → store → the real
              poller (running) → the local provider at 0 s duration → a listener; jobs/s from the
              first imagine to the last job a listener sees terminal.
  snapshot    p50/p99 of JobStore.apply_snapshot: progress reports on running jobs (one at a time).
  blend       one 5-image blend (5 × ~4 MB images), 10 progress updates, three ways: "before" (inputs
              inline in the row, as before the blobs table, every column saved), "inline, changed
              columns" (such an old row under today's save), "after" (inputs stored as blobs, the row
              names them, only changed columns saved). Bytes written = the size of the parameters of
              the UPDATE statements; bytes read = the size of the rows the statements return.
  live        --live jobs created through JobService.imagine (all live at once, queued), then the real
              poller runs them to the end on the local provider at a 10 s simulated duration: peak RSS
              and event-loop lag p99 (a 15 ms ticker's overshoot) over the whole run.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/store.py`: bench/providers.py must not shadow `providers`
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import resource
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from PIL import Image

from bot.access import Caller
from bot.app import build_app, running
from bot.config import AppConfig, MediaConfig, PollingConfig
from bot.domain import Job, JobState, Owner, merge_snapshot, new_job_id
from bot.store import JobStore, sql
from bot.store.rows import from_row
from providers.base import Action, GenerationRequest, ImageInput, TaskSnapshot, TaskStatus
from providers.local import LocalConfig, LocalProvider

ENGINES = ("sqlite", "postgresql")
SCENARIOS = ("throughput", "snapshot", "blend", "live")
TARGETS = {"jobs_per_s": 500.0, "rss_mb": 200.0, "lag_p99_ms": 50.0}  # jobs/s: SQLite's target
LAG_PERIOD = 0.015


def sizes(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick:
        return {"jobs": 50, "live": 200, "duration": 1.0, "snap_jobs": 50, "snap_rounds": 2,
                "image_bytes": 200_000, "images": 5, "updates": 3}  # fmt: skip
    return {"jobs": args.jobs, "live": args.live, "duration": 10.0, "snap_jobs": 1000, "snap_rounds": 5,
            "image_bytes": 4_000_000, "images": 5, "updates": 10}  # fmt: skip


# -- shared pieces ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(engine: str) -> AsyncIterator[str]:
    """A fresh database of `engine`: a SQLite file in a temp dir, or a new PostgreSQL database."""
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield str(Path(tmp) / "bench.sqlite3")
        return
    from tests.postgres import database as pg_database

    async with pg_database() as url:
        yield url


def config_for(url: str, provider: LocalConfig, media_dir: str) -> AppConfig:
    db: Path | str = url if url.startswith("postgresql") else Path(url)
    return AppConfig(database=db, providers=[provider], polling=PollingConfig(idle_interval=0.5),
                     media=MediaConfig(cache_dir=Path(media_dir)))  # fmt: skip


class Finished:
    """The listener: counts jobs seen terminal, and how many were at the provider at once."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.state: dict[str, JobState] = {}
        self.done = 0
        self.at_provider = 0
        self.peak_at_provider = 0
        self.outcomes: dict[str, int] = {}
        self.all_done = asyncio.Event()

    async def job_changed(self, job: Job) -> None:
        before = self.state.get(job.id)
        if before is not None and before.terminal:
            return
        live = (JobState.SUBMITTED, JobState.RUNNING)
        self.at_provider += (job.state in live) - (before in live)
        self.peak_at_provider = max(self.peak_at_provider, self.at_provider)
        self.state[job.id] = job.state
        if job.terminal:
            self.done += 1
            self.outcomes[job.state.value] = self.outcomes.get(job.state.value, 0) + 1
            if self.done == self.total:
                self.all_done.set()


class LagTicker:
    """Event-loop lag: how late a `LAG_PERIOD` sleep wakes up, sampled for the block."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_PERIOD)
            self.samples.append(max(0.0, loop.time() - start - LAG_PERIOD))

    def __enter__(self) -> LagTicker:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def rss_mb() -> float:
    """Current resident set size (MB) from /proc, or nan where there is none."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def owner(i: int) -> Owner:
    return Owner(platform="bench", user_id=f"u{i}")


# -- 1. throughput ---------------------------------------------------------------------------------


async def throughput(engine: str, size: dict[str, Any]) -> dict[str, Any]:
    jobs = size["jobs"]
    provider = LocalConfig(name="local", duration=0.0, poll_interval=0.5, max_concurrency=jobs,
                           job_timeout=600.0, grid_size=256)  # fmt: skip
    with tempfile.TemporaryDirectory() as media:
        async with database(engine) as url, build_app(config_for(url, provider, media)) as app:
            finished = Finished(jobs)
            app.listeners.add(finished)
            trips = RoundTrips(app.store)
            async with running(app):
                with LagTicker() as lag:
                    started, cpu = time.perf_counter(), time.process_time()
                    for i in range(jobs):
                        await app.service.imagine(Caller(owner(i)), f"store benchmark {i} --seed {i}")
                    created = time.perf_counter()
                    await asyncio.wait_for(finished.all_done.wait(), timeout=900)
                    ended, cpu = time.perf_counter(), time.process_time() - cpu
    return {"jobs": jobs, "seconds": ended - started, "create_seconds": created - started,
            "jobs_per_s": jobs / (ended - started), "outcomes": finished.outcomes,
            "cpu_ms_per_job": cpu / jobs * 1000, "statements_per_job": trips.statements / jobs,
            "transactions_per_job": trips.transactions / jobs,
            "throughput_lag_p99_ms": pct(lag.samples, 0.99) * 1000}  # fmt: skip


class RoundTrips:
    """Counts the statements the store sends and the transactions it opens (each transaction adds its
    BEGIN and COMMIT: two more trips to the database)."""

    def __init__(self, store: JobStore) -> None:
        self.statements = self.transactions = 0
        engine = store.engine
        rows, execute, transaction = engine.rows, engine.execute, engine.transaction

        async def counted_rows(statement: str, params: Sequence[Any] = ()) -> Any:
            self.statements += 1
            return await rows(statement, params)

        async def counted_execute(statement: str, params: Sequence[Any] = ()) -> Any:
            self.statements += 1
            return await execute(statement, params)

        def counted_transaction() -> Any:
            self.transactions += 1
            return transaction()

        engine.rows = counted_rows  # type: ignore[method-assign]
        engine.execute = counted_execute  # type: ignore[method-assign]
        engine.transaction = counted_transaction  # type: ignore[method-assign]


# -- 2. apply_snapshot latency ---------------------------------------------------------------------


async def running_jobs(store: JobStore, provider: str, jobs: list[Job], now: float) -> list[Job]:
    """`jobs` (inserted, queued) claimed and submitted, each with a task id of its own."""
    claimed = await store.claim_queued(provider, now, 60.0, len(jobs) + 1)
    submitted = []
    for job in claimed:
        stored = await store.record_submit(job, f"task-{job.id}", now + 1.0, now)
        assert stored is not None
        submitted.append(stored)
    return submitted


async def snapshot_latency(engine: str, size: dict[str, Any]) -> dict[str, Any]:
    provider = LocalConfig(name="local", duration=0.0, max_concurrency=100_000, job_timeout=3600.0)
    with tempfile.TemporaryDirectory() as media:
        async with database(engine) as url, build_app(config_for(url, provider, media)) as app:
            created = [await app.service.imagine(Caller(owner(i)), f"snapshot benchmark {i}")
                       for i in range(size["snap_jobs"])]  # fmt: skip
            now = time.time()
            jobs = await running_jobs(app.store, "local", created, now)
            assert len(jobs) == len(created)
            timings: list[float] = []
            rounds = size["snap_rounds"]
            for r in range(rounds):
                progress = int(90 * (r + 1) / rounds)
                for job in jobs:
                    report = TaskSnapshot(task_id=job.provider_task_id or "", status=TaskStatus.RUNNING,
                                          progress=progress, preview_url=f"http://p/{job.id}/{progress}.jpg")
                    now = time.time()
                    start = time.perf_counter()
                    changed = await app.store.apply_snapshot("local", report, now, now + 1.0)
                    timings.append(time.perf_counter() - start)
                    assert changed is not None and changed.progress == progress
    return {"snapshots": len(timings), "snap_p50_ms": pct(timings, 0.5) * 1000,
            "snap_p99_ms": pct(timings, 0.99) * 1000, "snap_mean_ms": sum(timings) / len(timings) * 1000}


# -- 3. a 5-image blend's progress updates, before and after the blobs table ----------------------


def noise_png(target_bytes: int, seed: int) -> bytes:
    """A PNG of random pixels (which don't compress) of about `target_bytes`."""
    side = int((target_bytes / 3) ** 0.5)
    pixels = (seed.to_bytes(4, "big") + os.urandom(side * side * 3))[: side * side * 3]
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, "PNG", compress_level=1)
    return out.getvalue()


class Counted:
    """Keeps each statement's parameters and rows (references only: sized after the timed part)."""

    def __init__(self, store: JobStore) -> None:
        self.calls: list[tuple[str, Sequence[Any], Any]] = []
        engine = store.engine
        rows, execute = engine.rows, engine.execute

        async def counted_rows(statement: str, params: Sequence[Any] = ()) -> Any:
            result = await rows(statement, params)
            self.calls.append((statement, params, result))
            return result

        async def counted_execute(statement: str, params: Sequence[Any] = ()) -> Any:
            result = await execute(statement, params)
            self.calls.append((statement, params, None))
            return result

        engine.rows = counted_rows  # type: ignore[method-assign]
        engine.execute = counted_execute  # type: ignore[method-assign]

    def take(self) -> tuple[int, int]:
        """(bytes written by UPDATEs, bytes read) since the last call."""
        written = sum(_size(p) for statement, params, _ in self.calls
                      if statement.lstrip().upper().startswith("UPDATE") for p in params)  # fmt: skip
        read = sum(_size(value) for _, _, result in self.calls for row in result or () for value in row)
        self.calls.clear()
        return written, read


def _size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool | int | float):
        return 8
    return len(str(value).encode())


async def apply_inline_all_columns(store: JobStore, provider: str, snapshot: TaskSnapshot, now: float,
                                   next_poll_at: float) -> Job | None:
    """apply_snapshot as it was before the blobs table: the row read, merged, every column written."""
    async with store.transaction():
        rows = await store.engine.rows(sql.GET_BY_TASK + "{for_update}", (provider, snapshot.task_id))
        job = from_row(rows[0])
        updated = merge_snapshot(job, snapshot, now)
        assert updated is not None
        return await store.save(updated.model_copy(update={"next_poll_at": next_poll_at}))


async def blend_updates(engine: str, size: dict[str, Any]) -> dict[str, Any]:
    provider = LocalConfig(name="local", duration=0.0, max_concurrency=100, job_timeout=3600.0)
    images = [noise_png(size["image_bytes"], i) for i in range(size["images"])]
    out: dict[str, Any] = {"image_mb": [round(len(i) / 1e6, 2) for i in images]}
    with tempfile.TemporaryDirectory() as media:
        async with database(engine) as url, build_app(config_for(url, provider, media)) as app:
            store, now = app.store, time.time()
            inline = GenerationRequest(kind=Action.BLEND, images=tuple(
                ImageInput(data=data, mime="image/png", filename=f"{i}.png")
                for i, data in enumerate(images)))
            ids = {}
            for way in ("before", "inline_changed"):  # the old form: the bytes inline, no sha256
                job = Job(id=new_job_id(), kind=Action.BLEND, provider="local", request=inline,
                          owner=owner(0), created_at=now, updated_at=now, deadline=now + 3600)  # fmt: skip
                await store.insert(job)
                ids[way] = job.id
            blended = await app.service.blend(Caller(owner(1)), [ImageInput(data=d, filename=f"{i}.png")
                                                         for i, d in enumerate(images)])  # fmt: skip
            assert all(image.sha256 for image in blended.request.images)
            ids["after"] = blended.id
            queued = await store.queued("local", now + 1, 10)
            submitted = {job.id: job for job in await running_jobs(store, "local", queued, now)}
            tasks = {way: submitted[job_id] for way, job_id in ids.items()}
            counted = Counted(store)
            ways: dict[str, Callable[..., Awaitable[Job | None]]] = {
                "before": lambda *a: apply_inline_all_columns(store, *a),
                "inline_changed": store.apply_snapshot,
                "after": store.apply_snapshot,
            }
            for way, apply in ways.items():
                job, timings, written, read = tasks[way], [], [], []
                counted.take()
                for u in range(size["updates"]):
                    progress = 5 + u * 90 // size["updates"]
                    report = TaskSnapshot(task_id=job.provider_task_id or "", status=TaskStatus.RUNNING,
                                          progress=progress, preview_url=f"http://p/{job.id}/{progress}.jpg")
                    start = time.perf_counter()
                    stored = await apply("local", report, time.time(), time.time() + 1.0)
                    timings.append(time.perf_counter() - start)
                    assert stored is not None and stored.progress == progress
                    w, r = counted.take()
                    written.append(w)
                    read.append(r)
                out[way] = {"ms_p50": pct(timings, 0.5) * 1000, "ms_mean": sum(timings) / len(timings) * 1000,
                            "written": sum(written) / len(written), "read": sum(read) / len(read)}
    return out


# -- 4. many live jobs -----------------------------------------------------------------------------


async def live(engine: str, size: dict[str, Any]) -> dict[str, Any]:
    jobs = size["live"]
    provider = LocalConfig(name="local", duration=size["duration"], poll_interval=1.0,
                           max_concurrency=jobs, job_timeout=3600.0, grid_size=256)  # fmt: skip
    with tempfile.TemporaryDirectory() as media:
        async with database(engine) as url, build_app(config_for(url, provider, media)) as app:
            finished = Finished(jobs)
            app.listeners.add(finished)
            rss_start = rss_mb()
            with LagTicker() as lag:
                started = time.perf_counter()
                for i in range(jobs):  # all live at once: queued, the poller not yet running
                    await app.service.imagine(Caller(owner(i)), f"live benchmark {i} --seed {i}")
                created = time.perf_counter()
                creating = len(lag.samples)
                async with running(app):
                    await asyncio.wait_for(finished.all_done.wait(), timeout=1800)
                ended = time.perf_counter()
            local = app.pool.get("local")
            assert isinstance(local, LocalProvider)
            fetches = local.calls["fetch"]
    running_lag = lag.samples[creating:]
    return {"live": jobs, "duration": size["duration"], "live_create_seconds": created - started,
            "run_seconds": ended - created, "peak_at_provider": finished.peak_at_provider,
            "live_outcomes": finished.outcomes, "fetch_per_job": fetches / jobs,
            "rss_start_mb": rss_start, "rss_mb": peak_rss_mb(),
            "lag_p99_ms": pct(lag.samples, 0.99) * 1000, "lag_max_ms": max(lag.samples) * 1000,
            "run_lag_p99_ms": pct(running_lag, 0.99) * 1000}  # fmt: skip


RUNS = {"throughput": throughput, "snapshot": snapshot_latency, "blend": blend_updates, "live": live}


# -- the report ------------------------------------------------------------------------------------


def _mb(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n:.0f} B"


def table(results: dict[str, dict[str, Any]]) -> str:
    engines = list(results)
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("jobs/s, service → store → poller → listener (0 s jobs)",
         lambda r: f"{r['jobs_per_s']:.0f} ({r['jobs']} jobs, {r['seconds']:.1f} s)"),
        ("of which creating the jobs (imagine calls)", lambda r: f"{r['create_seconds']:.1f} s"),
        ("per job: statements + transactions (each adds BEGIN, COMMIT); process CPU",
         lambda r: f"{r['statements_per_job']:.1f} + {r['transactions_per_job']:.1f}; "
                   f"{r['cpu_ms_per_job']:.2f} ms"),
        ("apply_snapshot p50 / p99 (progress, running job)",
         lambda r: f"{r['snap_p50_ms']:.2f} / {r['snap_p99_ms']:.2f} ms ({r['snapshots']} calls)"),
        ("blend progress update, before: inline inputs, every column",
         lambda r: f"{r['before']['ms_mean']:.1f} ms, {_mb(r['before']['written'])} written, "
                   f"{_mb(r['before']['read'])} read"),
        ("blend progress update, inline inputs, changed columns",
         lambda r: f"{r['inline_changed']['ms_mean']:.1f} ms, {_mb(r['inline_changed']['written'])} written, "
                   f"{_mb(r['inline_changed']['read'])} read"),
        ("blend progress update, after: blobs, changed columns",
         lambda r: f"{r['after']['ms_mean']:.2f} ms, {_mb(r['after']['written'])} written, "
                   f"{_mb(r['after']['read'])} read"),
        ("live jobs (all live at once) / peak at the provider at once",
         lambda r: f"{r['live']} / {r['peak_at_provider']} ({r['duration']:g} s jobs)"),
        ("live: creating / running to the end",
         lambda r: f"{r['live_create_seconds']:.1f} s / {r['run_seconds']:.1f} s"),
        ("live: peak RSS (start)", lambda r: f"{r['rss_mb']:.0f} MB ({r['rss_start_mb']:.0f} MB)"),
        ("live: event-loop lag p99 (max); p99 while running",
         lambda r: f"{r['lag_p99_ms']:.1f} ms ({r['lag_max_ms']:.0f} ms); {r['run_lag_p99_ms']:.1f} ms"),
    ]  # fmt: skip
    lines = ["| metric | " + " | ".join(engines) + " |", "|---|" + "---|" * len(engines)]
    for label, cell in rows:
        cells = []
        for engine in engines:
            try:
                cells.append(cell(results[engine]))
            except KeyError:
                cells.append("–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(results: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for engine, r in results.items():
        checks = []
        if "jobs_per_s" in r:
            goal = "target" if engine == "sqlite" else "SQLite's target"
            met = r["jobs_per_s"] >= TARGETS["jobs_per_s"]
            checks.append(f"jobs/s ≥ 500 ({goal}): {'met' if met else 'missed'} ({r['jobs_per_s']:.0f})")
        if "rss_mb" in r:
            checks.append(f"peak RSS ≤ 200 MB: {'met' if r['rss_mb'] <= TARGETS['rss_mb'] else 'missed'} "
                          f"({r['rss_mb']:.0f} MB)")
            met = r["lag_p99_ms"] <= TARGETS["lag_p99_ms"]
            checks.append(f"loop lag p99 ≤ 50 ms: {'met' if met else 'missed'} ({r['lag_p99_ms']:.1f} ms)")
        out.append(f"{engine}: " + "; ".join(checks))
    return out


def child(scenario: str, engine: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--one", scenario, "--engine", engine, "--jobs", str(args.jobs),
               "--live", str(args.live), *(["--quick"] if args.quick else [])]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{scenario} on {engine} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=[*ENGINES, "both"], default="both")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs in the throughput run (default 2000)")
    parser.add_argument("--live", type=int, default=10_000, help="jobs live at once (default 10000)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (a smoke test; figures mean nothing)")
    parser.add_argument("--scenario", choices=SCENARIOS, action="append", help="only these (repeatable)")
    parser.add_argument("--one", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = sizes(args)
    if args.one:  # a child process: one scenario on one engine, JSON out
        assert args.engine in ENGINES
        print(json.dumps(asyncio.run(RUNS[args.one](args.engine, size))))
        return
    engines = ENGINES if args.engine == "both" else (args.engine,)
    results: dict[str, dict[str, Any]] = {engine: {} for engine in engines}
    for engine in engines:
        for scenario in args.scenario or SCENARIOS:
            results[engine].update(child(scenario, engine, args))
    for engine, r in results.items():
        for key in ("outcomes", "live_outcomes"):
            if key in r and set(r[key]) != {"succeeded"}:
                print(f"warning: {engine}: jobs ended {r[key]}", file=sys.stderr)
    print(f"machine: {os.cpu_count()} cpu ({platform.machine()}), Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}; {time.strftime('%Y-%m-%d')}")  # fmt: skip
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(table(results))
    for line in verdicts(results):
        print(line)


if __name__ == "__main__":
    main()
