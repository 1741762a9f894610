"""Telegram frontend at the flood limits: jobs finishing together in a group; answers during progress.

    .venv/bin/python bench/telegram.py [--scenario finish-together] [--jobs 100] [--duration 30] [--scale 0.1]
    .venv/bin/python bench/telegram.py --scenario reply-while-progress [--chat private] [--commands 20]
        [--every 3] [--scale 1]

The real bot (service, store, poller, local provider, PTB Application) against
tests/fakes/telegram_api.py, which enforces Telegram's flood limits (3 per 3 s per chat, i.e. ~1/s with
a short burst, 20 per minute per group, 30 per second overall; edits count). Every duration (job length,
poll interval, the fake's flood windows and the bot's pacing) is multiplied by `--scale` so the run is
quick; latencies are reported divided by it again, i.e. in real Telegram seconds.

Scenarios:

- finish-together: N /imagine commands at once in one group, every job the same length, so they all
  finish within the moment it took to start them. Reports completion → final result shown (the message
  showing the grid with its buttons, whichever call put it there) per job, the time until every result
  is shown (from the commands and from the last completion), 429s, and the messages sent per job
  (sends and edits, by method). Completion = the moment the local provider's task is done.
- reply-while-progress: one long job whose progress is edited in a chat (`--chat private` or `group`),
  and meanwhile `--commands` commands sent `--every` seconds, alternating /info and an /imagine with a
  bad flag (answered with an error). Reports command → reply latency (from the moment the command is
  queued for getUpdates to the moment the fake stored the reply). Run it at `--scale 1` (its default):
  the target is about a second, and at a smaller scale the bot's own milliseconds would be reported
  multiplied by 1/scale.
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
from collections import Counter
from typing import Any

from bench._provider_fake import header, markdown_table, percentile
from bot.app import build_app, frontend_parts, running
from bot.config import AppConfig, PollingConfig, RateLimit, TelegramConfig
from bot.domain import Job, JobState
from bot.telegram_frontend.app import TelegramFrontend
from providers.local import LocalConfig, _unpack
from tests.fakes.telegram_api import FakeUser, TelegramFake, Upload

GROUP = -1001234567890
PRIVATE = 4242
SENDS = ("sendPhoto", "sendMessage", "sendDocument", "sendMediaGroup")
EDITS = ("editMessageCaption", "editMessageMedia", "editMessageText")
SCENARIOS = {"finish-together": 0.1, "reply-while-progress": 1.0}  # default scale of each


class TimedFake(TelegramFake):
    """The fake, noting (`time.time`) when each command's result was first shown (a photo message
    replying to it that carries buttons, by an edit or a new message) and when each command got a
    text reply."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.final_at: dict[int, float] = {}  # command message id -> result shown
        self.replied_at: dict[int, float] = {}  # command message id -> first text reply

    def _shown(self, chat_id: Any, message_id: int) -> None:
        message = self.message(int(chat_id), message_id)
        if message.keyboard and message.photo and message.reply_to_message_id is not None:
            self.final_at.setdefault(message.reply_to_message_id, time.time())

    def _edit_media(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        result = super()._edit_media(p, u)
        self._shown(p["chat_id"], int(p["message_id"]))
        return result

    def _send_photo(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        result = super()._send_photo(p, u)
        self._shown(p["chat_id"], int(result["message_id"]))
        return result

    def _send_message(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        result = super()._send_message(p, u)
        reply_to = self.message(int(p["chat_id"]), int(result["message_id"])).reply_to_message_id
        if reply_to is not None:
            self.replied_at.setdefault(reply_to, time.time())
        return result


def _config(fake: TelegramFake, database: Path, args: argparse.Namespace) -> AppConfig:
    scale, margin = args.scale, 1.1

    def rate(count: int, period: float) -> RateLimit:
        return RateLimit(count=count, period=period * scale * margin)

    return AppConfig(
        database=database,
        providers=[LocalConfig(name="local", duration=args.duration * scale,
                               poll_interval=args.poll_interval * scale, grid_size=512,
                               max_concurrency=max(args.jobs, 1))],
        telegram=TelegramConfig(token=fake.token, base_url=f"{fake.base_url}/bot",
                                base_file_url=f"{fake.base_url}/file/bot", chat_rate=rate(1, 1.0),
                                group_rate=rate(20, 60.0), global_rate=rate(30, 1.0), poll_timeout=1.0),
        polling=PollingConfig(idle_interval=1.0 * scale),
    )  # fmt: skip


def _completed_at(job: Job) -> float:
    spec = _unpack(job.provider_task_id or "")
    return float(spec["t"]) + float(spec["d"])


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


def _sent(fake: TelegramFake) -> Counter[str]:
    return Counter({method: len(fake.calls(method)) for method in (*SENDS, *EDITS) if fake.calls(method)})


async def _finish_together(fake: TimedFake, config: AppConfig, args: argparse.Namespace) -> dict[str, Any]:
    async with build_app(config) as app, running(app):
        frontend = TelegramFrontend(frontend_parts(app), retry_after_scale=args.scale)
        observed = Observed()
        app.listeners.add(observed)
        task = asyncio.create_task(frontend.serve())
        await fake.wait_until(lambda: fake.calls("getUpdates"), 30)
        sent_before = _sent(fake)
        started = time.time()
        commands = [fake.send_text(GROUP, FakeUser(1000 + n, f"User {n}"), f"/imagine bench job {n}")
                    for n in range(args.jobs)]  # fmt: skip
        by_command = {c.message_id for c in commands}
        await fake.wait_until(lambda: by_command <= fake.final_at.keys(), within=1200)
        wall = time.time() - started
        await frontend.outbox.delivery.flush()
        shown = {m.reply_to_message_id: m for m in fake.bot_messages(GROUP)
                 if m.reply_to_message_id in by_command and m.keyboard}  # fmt: skip
        jobs = {c: await app.service.by_message("telegram", str(GROUP), str(shown[c].message_id))
                for c in by_command}  # fmt: skip
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    sent = _sent(fake) - sent_before
    return {"jobs": jobs, "observed": observed, "wall": wall, "stats": frontend.outbox.delivery.stats,
            "started": started, "sent": sent}  # fmt: skip


def _finish_together_rows(fake: TimedFake, result: dict[str, Any],
                          args: argparse.Namespace) -> list[list[str]]:
    jobs: dict[int, Job | None] = result["jobs"]
    assert all(j is not None and j.state is JobState.SUCCEEDED for j in jobs.values()), "a job failed"
    observed, stats, scale, sent = result["observed"], result["stats"], args.scale, result["sent"]
    done = {c: _completed_at(j) for c, j in jobs.items() if j is not None}
    total = [(fake.final_at[c] - done[c]) / scale for c in done]
    seen = [(fake.final_at[c] - observed.ended[j.id]) / scale for c, j in jobs.items() if j is not None]
    n = len(jobs)

    def three(values: list[float]) -> str:
        return f"{statistics.median(values):.1f} / {percentile(values, 0.99):.1f} / {max(values):.1f}"

    every = max(fake.final_at[c] for c in done)
    by_method = ", ".join(f"{method} {count / n:.2f}" for method, count in sorted(sent.items()))
    retry = [r for _, _, r in fake.rate_limited]
    return [
        ["jobs (one group, all started at once)", f"{n}"],
        ["job duration (Telegram s)", f"{args.duration:g}"],
        ["completions spread, first → last job done (Telegram s)",
         f"{(max(done.values()) - min(done.values())) / scale:.1f}"],
        ["**commands → every result shown (Telegram s)**", f"**{(every - result['started']) / scale:.1f}**"],
        ["**last completion → every result shown (Telegram s)**",
         f"**{(every - max(done.values())) / scale:.1f}**"],
        ["completion → result shown p50 / p99 / max (Telegram s)", three(total)],
        ["of which seen by the bot → result shown p50 / p99 / max", three(seen)],
        ["**429s from the fake** / retried by Delivery", f"**{len(retry)}** / {stats.retried}"],
        ["**messages sent per job** (sends + edits)", f"**{sum(sent.values()) / n:.2f}**"],
        ["of which by method, per job", by_method],
        ["state changes seen (placed jobs) / coalesced / skipped as unchanged",
         f"{observed.changes} / {stats.coalesced} / {stats.skipped}"],
        ["wall time, scaled run (s)", f"{result['wall']:.1f} (scale {scale:g})"],
    ]  # fmt: skip


async def _reply_while_progress(fake: TimedFake, config: AppConfig,
                                args: argparse.Namespace) -> dict[str, Any]:
    chat = PRIVATE if args.chat == "private" else GROUP
    user = FakeUser(PRIVATE, "Asker")
    async with build_app(config) as app, running(app):
        frontend = TelegramFrontend(frontend_parts(app), retry_after_scale=args.scale)
        task = asyncio.create_task(frontend.serve())
        await fake.wait_until(lambda: fake.calls("getUpdates"), 30)
        job_command = fake.send_text(chat, user, "/imagine a long job whose progress is being edited")
        # its first edit (progress) is under way once the placeholder is out and a poll reported
        await fake.wait_until(lambda: fake.calls("editMessageCaption") or fake.calls("editMessageMedia"),
                              within=60)  # fmt: skip
        edits_before = sum(len(fake.calls(m)) for m in EDITS)
        asked: dict[int, tuple[str, float]] = {}  # command message id -> (kind, sent at)
        for n in range(args.commands):
            if n:
                await asyncio.sleep(args.every * args.scale)
            kind, text = ("/info", "/info") if n % 2 == 0 else ("bad flag", "/imagine a cat --ar wide")
            command = fake.send_text(chat, user, text)
            asked[command.message_id] = (kind, time.time())
        await fake.wait_until(lambda: asked.keys() <= fake.replied_at.keys(), within=120)
        edits = sum(len(fake.calls(m)) for m in EDITS) - edits_before
        shown = next(m for m in fake.bot_messages(chat) if m.reply_to_message_id == job_command.message_id)
        job = await app.service.by_message("telegram", str(chat), str(shown.message_id))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    last = max(at for _, at in asked.values())
    assert job is not None and _completed_at(job) > last, "the long job ended before the last command"
    latency = {c: (fake.replied_at[c] - at) / args.scale for c, (_, at) in asked.items()}
    return {"asked": asked, "latency": latency, "edits": edits, "stats": frontend.outbox.delivery.stats}


def _reply_rows(fake: TimedFake, result: dict[str, Any], args: argparse.Namespace) -> list[list[str]]:
    asked, latency = result["asked"], result["latency"]

    def three(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} / {percentile(values, 0.99):.2f} / {max(values):.2f}"

    kinds = sorted({kind for kind, _ in asked.values()})
    window = args.commands * args.every
    return [
        ["chat", f"{args.chat} (~1 msg/s per chat{', 20/min per group' if args.chat == 'group' else ''})"],
        ["one job running, progress edited meanwhile (Telegram s)", f"{args.duration:g}"],
        ["commands (alternating /info, /imagine with a bad flag) every (Telegram s)",
         f"{args.commands} every {args.every:g}"],
        ["**command → reply p50 / p99 / max (Telegram s)**", f"**{three(list(latency.values()))}**"],
        *[[f"of which {kind} p50 / max", f"{statistics.median(v):.2f} / {max(v):.2f}"]
          for kind in kinds if (v := [latency[c] for c, (k, _) in asked.items() if k == kind])],
        ["progress edits / replies while the commands ran (sends per Telegram s)",
         f"{result['edits']} / {len(asked)} ({(result['edits'] + len(asked)) / window:.2f}/s)"],
        ["429s from the fake / retried by Delivery", f"{len(fake.rate_limited)} / {result['stats'].retried}"],
        ["scale", f"{args.scale:g}"],
    ]  # fmt: skip


async def bench(args: argparse.Namespace) -> tuple[list[list[str]], TimedFake]:
    os.environ.setdefault("PTB_TIMEDELTA", "1")  # PTB's RetryAfter without its deprecation warning
    with tempfile.TemporaryDirectory() as tmp:
        async with TimedFake(time_scale=args.scale) as fake:
            fake.open_chat(GROUP, "supergroup", title="Bench")
            config = _config(fake, Path(tmp) / "bench.sqlite3", args)
            if args.scenario == "finish-together":
                rows = _finish_together_rows(fake, await _finish_together(fake, config, args), args)
            else:
                rows = _reply_rows(fake, await _reply_while_progress(fake, config, args), args)
            assert fake.violations == [], fake.violations
    return rows, fake


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="finish-together")
    parser.add_argument("--jobs", type=int, default=100, help="finish-together: jobs in the group")
    parser.add_argument("--duration", type=float, help="job length in Telegram seconds (default: 30 for "
                        "finish-together; for reply-while-progress, long enough to outlast the commands)")
    parser.add_argument("--chat", choices=("private", "group"), default="private",
                        help="reply-while-progress: where the job and the commands are")
    parser.add_argument("--commands", type=int, default=20, help="reply-while-progress: commands sent")
    parser.add_argument("--every", type=float, default=3.0, help="reply-while-progress: Telegram seconds "
                        "between two commands")
    parser.add_argument("--scale", type=float, help="time scale of the run (default: 0.1 for "
                        "finish-together, 1 for reply-while-progress)")
    args = parser.parse_args()
    args.scale = SCENARIOS[args.scenario] if args.scale is None else args.scale
    if args.scenario == "finish-together":
        args.duration = 30.0 if args.duration is None else args.duration
        args.poll_interval = 2.0
    else:
        args.jobs = 1
        args.duration = args.commands * args.every + 30 if args.duration is None else args.duration
        args.poll_interval = 0.5  # progress changes about every second: the chat's window stays busy
    rows, _ = asyncio.run(bench(args))
    if args.scenario == "finish-together":
        shape = f"--jobs {args.jobs} --duration {args.duration:g}"
    else:
        shape = f"--chat {args.chat} --commands {args.commands} --every {args.every:g}"
    print(header(f"bench/telegram.py --scenario {args.scenario} {shape} --scale {args.scale:g}"))
    print(markdown_table(["metric", "value"], rows))


if __name__ == "__main__":
    main()
