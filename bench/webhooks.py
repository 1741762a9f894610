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
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/webhooks.py`: bench/ must not shadow the top-level packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import contextlib
import os
import platform
import random
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import date
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401  (discord.player imports the deprecated stdlib audioop)

from bench._provider_fake import FakeProcess, Finished, markdown_table, percentile, provider_entry
from bot.app import build_app, running
from bot.config import parse_config
from bot.discord_frontend.client import DiscordFrontend
from tests.fakes.discord_api import DiscordFake, FakeInteraction, FakeMessage

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


@dataclass
class Run:
    mode: str
    jobs: int
    succeeded: int
    requests: int  # API requests the provider fake received
    status_calls: int  # job-status calls the poller made
    downloads: int  # image downloads from the provider fake
    edits: int  # bot-token message edits the Discord frontend sent
    platform_429s: int
    violations: int
    seen: list[float]  # completion → the bot knows (s)
    to_edit: list[float]  # seen → final edit applied at the fake Discord (s)
    total: list[float]  # completion → final edit (s)
    wall: float

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


HEADER = ["mode", "ok", "provider req/job", "status calls", "downloads/job", "Discord edits", "429s",
          "completion→seen p50 / p99 ms", "seen→final edit p50 / p99 ms", "completion→final edit p50 ms",
          "p99 ms", "max ms", "wall s"]  # fmt: skip


def _document(
    database: Path, base_url: str, fake: DiscordFake, guild_id: int, callbacks: bool, args: argparse.Namespace
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "database": str(database),
        "default_provider": PROVIDER,
        "providers": [provider_entry(PROVIDER, base_url, args.jobs, args.poll_interval)],
        "discord": {"token": fake.token, "guild_ids": [guild_id], "api_base": f"{fake.base_url}/api/v10",
                    "gateway_url": fake.gateway_url, "guild_ready_timeout": 0.05},
    }  # fmt: skip
    if callbacks:
        document["webhooks"] = {"listen": "127.0.0.1:0", "public_url": "http://x",
                                "poll_interval": args.fallback_poll}  # fmt: skip
    return document


async def _arrive(
    fake: DiscordFake, guild_id: int, channels: list[int], users: list[Any], args: argparse.Namespace
) -> list[FakeInteraction]:
    """The commands, at a steady rate, round-robin over the channels (each with its own user)."""
    start, interactions = time.monotonic(), []
    for n in range(args.jobs):
        await asyncio.sleep(max(0.0, start + n / args.rate - time.monotonic()))
        slot = n % len(channels)
        interactions.append(
            await fake.slash_command(
                guild_id, channels[slot], users[slot], "imagine", {"prompt": f"bench lighthouse {n}"}
            )
        )
    return interactions


async def scenario(callbacks: bool, args: argparse.Namespace) -> Run:
    provider = FakeProcess(PROVIDER, args.duration, seed=7)
    async with provider as base_url, TimedDiscord() as fake:
        guild_id, channels = fake.add_guild("Bench", tuple(f"bench-{i}" for i in range(args.channels)))
        users = [fake.add_user(f"user{i}") for i in range(args.channels)]
        with tempfile.TemporaryDirectory() as tmp:
            document = _document(Path(tmp) / "bench.sqlite3", base_url, fake, guild_id, callbacks, args)
            async with build_app(parse_config(document, {})) as app, running(app):
                if app.webhooks is not None:
                    app.webhooks.public_url = f"http://127.0.0.1:{app.webhooks.port}"
                finished = Finished(args.jobs)
                app.listeners.add(finished)
                frontend = DiscordFrontend(app)
                serving = asyncio.create_task(frontend.serve())
                await asyncio.wait_for(frontend.client.ready.wait(), 30)
                await fake.wait_for(lambda: fake.commands.get(guild_id), 30)
                started = time.monotonic()
                interactions = await _arrive(fake, guild_id, channels, users, args)
                await fake.wait_for(lambda: len(fake.final_at) >= args.jobs, timeout=args.duration * 2 + 300)
                wall = time.monotonic() - started
                jobs = [await app.service.by_message("discord", str(i.channel_id), str(i.response_message_id))
                        for i in interactions]  # fmt: skip
                if app.webhooks is not None:
                    await app.webhooks.settled()
                status_calls, stats = app.poller.fetch_requests, frontend.outbox.delivery.stats
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
            got = await provider.results()
    seen, to_edit, total = [], [], []
    for interaction, job in zip(interactions, jobs, strict=True):
        if job is None or job.provider_task_id not in got.finished_at:
            continue
        done = got.finished_at[job.provider_task_id]
        final = fake.final_at[interaction.response_message_id or 0]
        seen.append(finished.at[job.id] - done)
        to_edit.append(final - finished.at[job.id])
        total.append(final - done)
    succeeded = sum(1 for job in jobs if job is not None and job.state.value == "succeeded")
    mode = "callbacks" if callbacks else "polling only"
    return Run(
        mode,
        args.jobs,
        succeeded,
        got.requests,
        status_calls,
        got.downloads,
        stats.sent,
        fake.sent_429,
        len(fake.violations),
        seen,
        to_edit,
        total,
        wall,
    )


async def main(args: argparse.Namespace) -> None:
    runs = []
    for callbacks in (False, True):
        run = await scenario(callbacks, args)
        print(f"  {run.mode:<12} done in {run.wall:.1f} s", file=sys.stderr, flush=True)
        runs.append(run)
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(
        f"{date.today()}, nproc {os.cpu_count()}, {python}; {args.jobs} jobs at {args.rate:g}/s over"
        f" {args.channels} Discord channels; {PROVIDER} jobs of {args.duration:g} s (x0.5-1.5),"
        f" poll_interval {args.poll_interval:g} s, fallback poll with callbacks {args.fallback_poll:g} s"
    )
    print(markdown_table(HEADER, [run.cells() for run in runs]))
    if any(run.violations for run in runs):
        print("fake Discord reported request violations:", [run.violations for run in runs])


if __name__ == "__main__":
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--rate", type=float, default=12.5, help="commands per second")
    parser.add_argument("--channels", type=int, default=100, help="Discord channels the jobs are spread over")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds each job takes in the fake")
    parser.add_argument("--poll-interval", type=float, default=3.0, help="the provider's poll_interval")
    parser.add_argument("--fallback-poll", type=float, default=60.0, help="webhooks.poll_interval")
    random.seed(7)
    asyncio.run(main(parser.parse_args()))
