"""Telegram frontend under a burst: N /imagine commands at once in one group against the fake Bot API.

    .venv/bin/python -m bench.telegram [--jobs 100] [--duration 30] [--scale 0.1]

The real bot (service, store, poller, local provider, PTB Application) against
tests/fakes/telegram_api.py, which enforces Telegram's flood limits (3 per 3 s per chat, 20 per minute
per group, 30 per second overall; edits count). Every duration (job length, poll interval, the fake's
flood windows and the bot's pacing) is multiplied by `--scale` so the run is quick; latencies are
reported divided by it again, i.e. in real Telegram seconds. Prints edits sent vs state changes, 429s,
and provider completion → final edit latency (completion = the moment the local provider's task is
done, before any poll sees it).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/telegram.py`: this file must not shadow the telegram package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from typing import Any

from bot.app import build_app, running
from bot.config import AppConfig, PollingConfig, RateLimit, TelegramConfig
from bot.domain import Job, JobState
from bot.telegram_frontend.app import TelegramFrontend
from providers.local import LocalConfig, _unpack
from tests.fakes.telegram_api import FakeUser, TelegramFake, Upload

GROUP = -1001234567890


class TimedFake(TelegramFake):
    """The fake, noting when each message got its final grid (an editMessageMedia with buttons)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.final_at: dict[int, float] = {}
        self.sent_at: dict[int, float] = {}

    def _edit_media(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        result = super()._edit_media(p, u)
        if p.get("reply_markup"):
            self.final_at.setdefault(int(p["message_id"]), time.time())
        return result

    def _send_photo(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        result = super()._send_photo(p, u)
        self.sent_at[int(result["message_id"])] = time.time()
        return result


def _config(fake: TelegramFake, database: Path, args: argparse.Namespace) -> AppConfig:
    scale, margin = args.scale, 1.1

    def rate(count: int, period: float) -> RateLimit:
        return RateLimit(count=count, period=period * scale * margin)

    return AppConfig(
        database=database,
        providers=[LocalConfig(name="local", duration=args.duration * scale, poll_interval=2.0 * scale,
                               grid_size=512, max_concurrency=args.jobs)],
        telegram=TelegramConfig(token=fake.token, base_url=f"{fake.base_url}/bot",
                                base_file_url=f"{fake.base_url}/file/bot", chat_rate=rate(1, 1.0),
                                group_rate=rate(20, 60.0), global_rate=rate(30, 1.0), poll_timeout=1.0),
        polling=PollingConfig(idle_interval=1.0 * scale),
    )  # fmt: skip


def _completed_at(job: Job) -> float:
    spec = _unpack(job.provider_task_id or "")
    return float(spec["t"]) + float(spec["d"])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Observed:
    """A listener noting when the bot learned that each job ended, and how many changes it saw."""

    def __init__(self) -> None:
        self.ended: dict[str, float] = {}
        self.changes = 0

    async def job_changed(self, job: Job) -> None:
        if job.placement and job.placement.platform == "telegram" and job.placement.message_id:
            self.changes += 1
        if job.terminal:
            self.ended.setdefault(job.id, time.time())


async def _run(fake: TimedFake, config: AppConfig, args: argparse.Namespace) -> dict[str, Any]:
    async with build_app(config) as app, running(app):
        frontend = TelegramFrontend(app, retry_after_scale=args.scale)
        observed = Observed()
        app.listeners.add(observed)
        task = asyncio.create_task(frontend.serve())
        await fake.wait_until(lambda: fake.calls("getUpdates"), 30)
        started = time.perf_counter()
        commands = [fake.send_text(GROUP, FakeUser(1000 + n, f"User {n}"), f"/imagine bench job {n}")
                    for n in range(args.jobs)]  # fmt: skip
        by_command = {c.message_id for c in commands}

        def all_final() -> bool:
            replies = [m for m in fake.bot_messages(GROUP) if m.reply_to_message_id in by_command]
            return len([m for m in replies if m.keyboard]) == args.jobs

        await fake.wait_until(all_final, within=1200)
        wall = time.perf_counter() - started
        await frontend.outbox.delivery.flush()
        replies = [m for m in fake.bot_messages(GROUP) if m.reply_to_message_id in by_command]
        jobs = [await app.service.by_message("telegram", str(GROUP), str(m.message_id)) for m in replies]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return {"jobs": jobs, "observed": observed, "wall": wall, "stats": frontend.outbox.delivery.stats,
            "commanded": {c.message_id: c.date for c in commands}}  # fmt: skip


def _report(fake: TimedFake, result: dict[str, Any], args: argparse.Namespace) -> list[tuple[str, str]]:
    jobs: list[Job] = [j for j in result["jobs"] if j is not None]
    assert len(jobs) == args.jobs and all(j.state is JobState.SUCCEEDED for j in jobs)
    observed, stats, scale = result["observed"], result["stats"], args.scale
    finals = {j.id: fake.final_at[int(j.placement.message_id or 0)] for j in jobs if j.placement}
    latencies = [(finals[j.id] - _completed_at(j)) / scale for j in jobs]
    seen_to_edit = [(finals[j.id] - observed.ended[j.id]) / scale for j in jobs]
    edits = sum(len(fake.calls(m)) for m in ("editMessageCaption", "editMessageMedia", "editMessageText"))
    retry = [r for _, _, r in fake.rate_limited]
    return [
        ("jobs (one group)", f"{args.jobs}"),
        ("job duration (Telegram s)", f"{args.duration:g}"),
        ("state changes seen (placed jobs)", f"{observed.changes}"),
        ("edits sent (caption / media / text)", f"{edits} ({len(fake.calls('editMessageCaption'))} / "
                                                f"{len(fake.calls('editMessageMedia'))} / "
                                                f"{len(fake.calls('editMessageText'))})"),
        ("  skipped as unchanged / coalesced", f"{stats.skipped} / {stats.coalesced}"),
        ("first replies (sendPhoto)", f"{len(fake.calls('sendPhoto'))}"),
        ("429s from the fake / retried by Delivery", f"{len(retry)} / {stats.retried}"),
        ("completion → final edit p50 (Telegram s)", f"{statistics.median(latencies):.1f}"),
        ("completion → final edit p99 (Telegram s)", f"{_percentile(latencies, 0.99):.1f}"),
        ("  of which seen → final edit p50 / p99", f"{statistics.median(seen_to_edit):.1f} / "
                                                   f"{_percentile(seen_to_edit, 0.99):.1f}"),
        ("wall time, scaled run (s)", f"{result['wall']:.1f} (scale {scale:g})"),
    ]


async def bench(args: argparse.Namespace) -> None:
    os.environ.setdefault("PTB_TIMEDELTA", "1")  # PTB's RetryAfter without its deprecation warning
    with tempfile.TemporaryDirectory() as tmp:
        async with TimedFake(time_scale=args.scale) as fake:
            fake.open_chat(GROUP, "supergroup", title="Bench")
            result = await _run(fake, _config(fake, Path(tmp) / "bench.sqlite3", args), args)
            assert fake.violations == [], fake.violations
            rows = _report(fake, result, args)
    width = max(len(name) for name, _ in rows)
    print(f"{'metric':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="job length in Telegram seconds")
    parser.add_argument("--scale", type=float, default=0.1, help="time scale of the run")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
