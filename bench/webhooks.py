"""Polling only vs callbacks, end to end: provider requests per job and completion → final chat edit.

    .venv/bin/python bench/webhooks.py [--jobs 500] [--rate 12.5] [--duration 10] [--channels 100]

N /imagine slash commands arrive at a steady `--rate` per second, spread round-robin over `--channels`
text channels (one user each) of a guild on the fake Discord (tests/fakes/discord_api.py, real time,
Discord's 5 edits / 5 s per channel). They run through the whole bot: the real discord.py client and
Discord frontend, service, SQLite store, poller, webhook receiver and httpx, against the midjourney_api
fake (tests/fakes/midjourney_api.py) in a process of its own, where each job takes `--duration` s
(x0.5-1.5 at random). Run once with polling only (the provider's default `poll_interval`, 3 s) and once
with a `webhooks` section (callbacks; the fallback poll at its default 60 s, longer than any job here).
Reported per mode:

- provider requests per job: every API request the provider fake received (submits + job-status
  calls) / N; the image downloads of the final edits are counted apart (the same in both modes);
- completion → final edit: from the moment the provider fake marks the task finished to the moment
  the fake Discord applies the message edit carrying the grid (p50 / p99 / max), split into
  completion → the bot sees it (a poll or a callback) and seen → final edit (render, download,
  upload, pacing).

Arrivals are spread and channels many so that Discord's limits (5 edits / 5 s per channel, the bot's
own 40 requests/s pacing) stay well clear: the comparison is about how the bot learns of completion,
not about the chat platform's queue (bench/discord.py measures that).

Real-size results (`--grid real`): the provider serves 2048x2048 PNG grids (and 1024x1024 images), as
Midjourney does, made once per run from a gradient with noise so that they weigh what real ones do
(~7.7 MB, not a flat colour that compresses to nothing). Its defaults measure one job at a time in an
idle place: 40 jobs, one every 2 s, each in a channel (or chat) of its own, callbacks only:

    .venv/bin/python bench/webhooks.py --grid real [--platform discord|telegram]

`--platform telegram` runs the same through the fake Bot API (tests/fakes/telegram_api.py, its flood
limits on, real time): /imagine in private chats, the final being the editMessageMedia that shows the
grid with its buttons.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/webhooks.py`: bench/ must not shadow the top-level packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import contextlib
import io
import multiprocessing
import os
import platform
import random
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import date
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web
from PIL import Image

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401  (discord.player imports the deprecated stdlib audioop)

from bench._provider_fake import (
    FakeProcess,
    Finished,
    JitteredMidjourneyApi,
    markdown_table,
    percentile,
    provider_entry,
)
from bot.app import App, build_app, frontend_parts, running
from bot.config import parse_config
from bot.discord_frontend.client import DiscordFrontend
from bot.domain import Job
from bot.telegram_frontend.app import TelegramFrontend
from tests.fakes.discord_api import DiscordFake, FakeInteraction, FakeMessage
from tests.fakes.telegram_api import FakeUser, TelegramFake, Upload

PROVIDER = "midjourney_api"


class TimedDiscord(DiscordFake):
    """The fake Discord, noting (`time.monotonic`) when each message first got its result attached."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.final_at: dict[int, float] = {}

    async def _edit(self, m: FakeMessage, body: dict[str, Any], uploads: list[Any]) -> FakeMessage:
        edited = await super()._edit(m, body, uploads)
        if edited.attachments:
            self.final_at.setdefault(edited.id, time.monotonic())
        return edited


class TimedTelegram(TelegramFake):
    """The fake Bot API, noting (`time.monotonic`) when each command's result was first shown: a photo
    message replying to it with buttons, by an edit or a new message. Keyed by (chat, command id)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.final_at: dict[tuple[int, int], float] = {}
        self.received_at: dict[tuple[int, int], float] = {}  # the request of the final, read, handled from

    def _shown(self, chat_id: Any, message_id: int, received: float) -> None:
        message = self.message(int(chat_id), message_id)
        key = (message.chat_id, message.reply_to_message_id or 0)
        if message.keyboard and message.photo and message.reply_to_message_id and key not in self.final_at:
            self.final_at[key], self.received_at[key] = time.monotonic(), received

    def _edit_media(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        received = time.monotonic()
        result = super()._edit_media(p, u)
        self._shown(p["chat_id"], int(p["message_id"]), received)
        return result

    def _send_photo(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        received = time.monotonic()
        result = super()._send_photo(p, u)
        self._shown(p["chat_id"], int(result["message_id"]), received)
        return result


# ------------------------------------------------------------------------------ real-size results
def noisy_png(side: int) -> bytes:
    """A `side`² RGB PNG that weighs what a generated picture does (~7.7 MB at 2048²): colour
    gradients under gaussian noise, which PNG can't squeeze the way it squeezes a flat colour."""
    gradient = Image.linear_gradient("L").resize((side, side))
    base = Image.merge("RGB", (gradient, gradient.rotate(90), gradient.rotate(180)))
    noise = Image.merge("RGB", tuple(Image.effect_noise((side, side), 64) for _ in range(3)))
    out = io.BytesIO()
    Image.blend(base, noise, 0.08).save(out, format="PNG")
    return out.getvalue()


class RealSizeMidjourneyApi(JitteredMidjourneyApi):
    """The midjourney_api fake serving real-size results: a 2048x2048 grid and four 1024x1024 images."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.grid, self.image = noisy_png(2048), noisy_png(1024)

    async def _image(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["task"])
        name = request.match_info["name"]
        if job is None or job.status != 1 or not name.endswith(".png"):
            raise web.HTTPNotFound()
        return web.Response(body=self.grid if name == "grid.png" else self.image, content_type="image/png")


class RealSizeProcess(FakeProcess):
    """FakeProcess, running RealSizeMidjourneyApi."""

    def __init__(self, duration: float, seed: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_real_size_main, args=(duration, seed, child), daemon=True)


def _real_size_main(duration: float, seed: int, conn: Connection) -> None:
    random.seed(seed)
    asyncio.run(_serve_real_size(duration, conn))


async def _serve_real_size(duration: float, conn: Connection) -> None:
    async with RealSizeMidjourneyApi(duration=duration) as fake:
        conn.send(fake.base_url)
        await asyncio.to_thread(conn.recv)
        downloads = sum(1 for _, path in fake.requests if "/cdn/" in path)
        conn.send((dict(fake.finished_at), len(fake.requests) - downloads, downloads))


# ----------------------------------------------------------------------------------------- a run
@dataclass
class Run:
    mode: str
    jobs: int
    succeeded: int
    requests: int  # API requests the provider fake received
    status_calls: int  # job-status calls the poller made
    downloads: int  # image downloads from the provider fake
    edits: int  # message edits the frontend sent (after the first message)
    platform_429s: int
    violations: int
    seen: list[float]  # completion → the bot knows (s)
    to_edit: list[float]  # seen → final edit applied at the fake platform (s)
    total: list[float]  # completion → final edit (s)
    wall: float
    fake_work: list[float]  # the fake Bot API's own handling of each final (decoding the photo...), s

    def cells(self) -> list[str]:
        def ms(values: list[float], q: float) -> str:
            return f"{(statistics.median(values) if q == 0.5 else percentile(values, q)) * 1000:.0f}"

        return [
            self.mode, f"{self.succeeded}/{self.jobs}", f"{self.requests / self.jobs:.3f}",
            str(self.status_calls), f"{self.downloads / self.jobs:.2f}", str(self.edits),
            str(self.platform_429s), f"{ms(self.seen, 0.5)} / {ms(self.seen, 0.99)}",
            f"{ms(self.to_edit, 0.5)} / {ms(self.to_edit, 0.99)}", ms(self.total, 0.5), ms(self.total, 0.99),
            ms(self.total, 1.0), f"{self.wall:.1f}",
        ]  # fmt: skip


HEADER = ["mode", "ok", "provider req/job", "status calls", "downloads/job", "edits", "429s",
          "completion→seen p50 / p99 ms", "seen→final edit p50 / p99 ms", "completion→final edit p50 ms",
          "p99 ms", "max ms", "wall s"]  # fmt: skip


@dataclass
class Placed:
    """What a platform run hands back: each command's job and when its final edit landed."""

    jobs: list[Job | None]
    final_at: list[float | None]
    received_at: list[float | None]  # Telegram: when the fake began handling the final (upload read)
    edits: int
    platform_429s: int
    violations: int
    wall: float


def _document(database: Path, base_url: str, platform: dict[str, Any], callbacks: bool,
              args: argparse.Namespace) -> dict[str, Any]:
    document: dict[str, Any] = {
        "database": str(database),
        "default_provider": PROVIDER,
        "providers": [provider_entry(PROVIDER, base_url, args.jobs, args.poll_interval)],
        **platform,
    }
    if callbacks:
        document["webhooks"] = {"listen": "127.0.0.1:0", "public_url": "http://x",
                                "poll_interval": args.fallback_poll}  # fmt: skip
    return document


async def _paced(args: argparse.Namespace, send: Any) -> list[Any]:
    """`send(n)` for n in 0..jobs-1 at a steady `--rate`; what each returned."""
    start, sent = time.monotonic(), []
    for n in range(args.jobs):
        await asyncio.sleep(max(0.0, start + n / args.rate - time.monotonic()))
        sent.append(await send(n))
    return sent


async def _on_discord(fake: TimedDiscord, app: App, args: argparse.Namespace,
                      where: tuple[int, list[int], list[Any]]) -> Placed:
    guild_id, channels, users = where  # one user per channel
    frontend = DiscordFrontend(frontend_parts(app))
    serving = asyncio.create_task(frontend.serve())
    await asyncio.wait_for(frontend.client.ready.wait(), 30)
    await fake.wait_for(lambda: fake.commands.get(guild_id), 30)
    started = time.monotonic()

    async def command(n: int) -> FakeInteraction:
        slot = n % len(channels)
        return await fake.slash_command(guild_id, channels[slot], users[slot], "imagine",
                                        {"prompt": f"bench lighthouse {n}"})  # fmt: skip

    interactions: list[FakeInteraction] = await _paced(args, command)
    await fake.wait_for(lambda: len(fake.final_at) >= args.jobs, timeout=args.duration * 2 + 300)
    wall = time.monotonic() - started
    jobs = [await app.service.by_message("discord", str(i.channel_id), str(i.response_message_id))
            for i in interactions]  # fmt: skip
    edits = frontend.outbox.delivery.stats.sent
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    finals = [fake.final_at.get(i.response_message_id or 0) for i in interactions]
    return Placed(jobs, finals, [None] * len(finals), edits, fake.sent_429, len(fake.violations), wall)


async def _on_telegram(fake: TimedTelegram, app: App, args: argparse.Namespace) -> Placed:
    users = [FakeUser(5000 + i, f"User {i}") for i in range(args.channels)]  # private chat id = user id
    frontend = TelegramFrontend(frontend_parts(app))
    serving = asyncio.create_task(frontend.serve())
    await fake.wait_until(lambda: fake.calls("getUpdates"), 30)
    started = time.monotonic()

    async def command(n: int) -> tuple[int, int]:
        user = users[n % len(users)]
        return user.id, fake.send_text(user.id, user, f"/imagine bench lighthouse {n}").message_id

    commands: list[tuple[int, int]] = await _paced(args, command)
    await fake.wait_until(lambda: set(commands) <= fake.final_at.keys(), within=args.duration * 2 + 300)
    wall = time.monotonic() - started
    jobs: list[Job | None] = []
    for chat, command_id in commands:
        shown = next(m for m in fake.bot_messages(chat) if m.reply_to_message_id == command_id and m.keyboard)
        jobs.append(await app.service.by_message("telegram", str(chat), str(shown.message_id)))
    edits = sum(len(fake.calls(m)) for m in ("editMessageCaption", "editMessageMedia", "editMessageText"))
    serving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await serving
    finals: list[float | None] = [fake.final_at.get(c) for c in commands]
    received: list[float | None] = [fake.received_at.get(c) for c in commands]
    return Placed(jobs, finals, received, edits, len(fake.rate_limited), len(fake.violations), wall)


async def scenario(callbacks: bool, args: argparse.Namespace) -> Run:
    real = args.grid == "real"
    provider = RealSizeProcess(args.duration, 7) if real else FakeProcess(PROVIDER, args.duration, seed=7)
    chat: TimedDiscord | TimedTelegram = TimedTelegram() if args.platform == "telegram" else TimedDiscord()
    async with provider as base_url, chat as fake:
        where: tuple[int, list[int], list[Any]] = (0, [], [])
        if isinstance(fake, TimedTelegram):
            platform = {"telegram": {"token": fake.token, "base_url": f"{fake.base_url}/bot",
                                     "base_file_url": f"{fake.base_url}/file/bot", "poll_timeout": 1.0}}
        else:
            guild_id, channels = fake.add_guild("Bench", tuple(f"bench-{i}" for i in range(args.channels)))
            where = (guild_id, channels, [fake.add_user(f"user{i}") for i in range(args.channels)])
            platform = {"discord": {"token": fake.token, "guild_ids": [guild_id],
                                    "api_base": f"{fake.base_url}/api/v10", "gateway_url": fake.gateway_url,
                                    "guild_ready_timeout": 0.05}}
        with tempfile.TemporaryDirectory() as tmp:
            document = _document(Path(tmp) / "bench.sqlite3", base_url, platform, callbacks, args)
            async with build_app(parse_config(document, {})) as app, running(app):
                if app.webhooks is not None:
                    app.webhooks.public_url = f"http://127.0.0.1:{app.webhooks.port}"
                finished = Finished(args.jobs)
                app.listeners.add(finished)
                if isinstance(fake, TimedTelegram):
                    placed = await _on_telegram(fake, app, args)
                else:
                    placed = await _on_discord(fake, app, args, where)
                if app.webhooks is not None:
                    await app.webhooks.settled()
                status_calls = app.poller.fetch_requests
            got = await provider.results()
    seen, to_edit, total, fake_work = [], [], [], []
    for job, final, received in zip(placed.jobs, placed.final_at, placed.received_at, strict=True):
        if job is None or final is None or job.provider_task_id not in got.finished_at:
            continue
        done = got.finished_at[job.provider_task_id]
        seen.append(finished.at[job.id] - done)
        to_edit.append(final - finished.at[job.id])
        total.append(final - done)
        if received is not None:
            fake_work.append(final - received)
    succeeded = sum(1 for job in placed.jobs if job is not None and job.state.value == "succeeded")
    mode = "callbacks" if callbacks else "polling only"
    if real or args.platform != "discord":
        mode += f", {args.platform}" + (", 2048² grids" if real else "")
    return Run(mode, args.jobs, succeeded, got.requests, status_calls, got.downloads, placed.edits,
               placed.platform_429s, placed.violations, seen, to_edit, total, placed.wall,
               fake_work)  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    runs = []
    for callbacks in {"both": (False, True), "polling": (False,), "callbacks": (True,)}[args.mode]:
        run = await scenario(callbacks, args)
        print(f"  {run.mode:<12} done in {run.wall:.1f} s", file=sys.stderr, flush=True)
        runs.append(run)
    python = f"{platform.python_implementation()} {platform.python_version()}"
    grid = "2048x2048 PNG grids (~7.7 MB)" if args.grid == "real" else "128x128 grids"
    print(
        f"{date.today()}, nproc {os.cpu_count()}, {python}; {args.jobs} jobs at {args.rate:g}/s over"
        f" {args.channels} {args.platform} {'chats' if args.platform == 'telegram' else 'channels'};"
        f" {PROVIDER} jobs of {args.duration:g} s (x0.5-1.5), {grid}, poll_interval {args.poll_interval:g} s,"
        f" fallback poll with callbacks {args.fallback_poll:g} s"
    )
    print(markdown_table(HEADER, [run.cells() for run in runs]))
    for run in runs:
        if run.fake_work:  # Telegram's own work on an upload, done here on the bench's cores
            work = [1000 * w for w in run.fake_work]
            print(f"{run.mode}: of completion → final edit, the fake Bot API's own handling of the final"
                  f" (decoding the photo, making its 320/1280 px sizes, in the bot's process) p50 / p99:"
                  f" {statistics.median(work):.0f} / {percentile(work, 0.99):.0f} ms")
    if any(run.violations for run in runs):
        print("the fake platform reported request violations:", [run.violations for run in runs])


if __name__ == "__main__":
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--grid", choices=("small", "real"), default="small",
                        help="the provider's results: 128x128 PNGs, or real-size 2048x2048 grids")
    parser.add_argument("--platform", choices=("discord", "telegram"), default="discord")
    parser.add_argument("--mode", choices=("both", "polling", "callbacks"),
                        help="default: both; callbacks with --grid real")
    parser.add_argument("--jobs", type=int, help="default 500; 40 with --grid real")
    parser.add_argument("--rate", type=float, help="commands per second (default 12.5; 0.5 with --grid real)")
    parser.add_argument("--channels", type=int, help="channels (or chats) the jobs are spread over "
                        "(default 100; one per job with --grid real)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds each job takes in the fake")
    parser.add_argument("--poll-interval", type=float, default=3.0, help="the provider's poll_interval")
    parser.add_argument("--fallback-poll", type=float, default=60.0, help="webhooks.poll_interval")
    parsed = parser.parse_args()
    real = parsed.grid == "real"
    parsed.mode = parsed.mode or ("callbacks" if real else "both")
    parsed.jobs = parsed.jobs or (40 if real else 500)
    parsed.rate = parsed.rate or (0.5 if real else 12.5)
    parsed.channels = parsed.channels or (parsed.jobs if real else 100)
    random.seed(7)
    asyncio.run(main(parsed))
