"""Discord frontend under a burst: N concurrent /imagine jobs in one channel against the fake Discord.

    .venv/bin/python -m bench.discord [--jobs 100] [--duration 30] [--scale 0.1]

The real bot (service, store, poller, local provider, discord.py client) against tests/fakes/discord_api.py,
with Discord's per-channel edit limit (5 per 5 s). Every duration (job length, edit window, poll interval)
is multiplied by `--scale` so the run is quick; the latencies are reported divided by it again, i.e.
in real Discord seconds. Prints edits sent vs state changes, 429s, and provider completion → final edit
latency (completion = the moment the local provider's task is done, before any poll sees it).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/discord.py`: this file must not shadow the discord package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401  (discord.player imports the deprecated stdlib audioop)

from bot.app import build_app, running
from bot.config import AppConfig, DiscordConfig, PollingConfig
from bot.discord_frontend.client import DiscordFrontend
from bot.domain import Job, JobState
from providers.local import LocalConfig, _unpack
from tests.fakes.discord_api import DiscordFake, FakeInteraction


def _config(fake: DiscordFake, database: Path, args: argparse.Namespace) -> AppConfig:
    scale = args.scale
    return AppConfig(
        database=database,
        providers=[LocalConfig(name="local", duration=args.duration * scale, poll_interval=2.0 * scale,
                               grid_size=512, max_concurrency=args.jobs)],
        discord=DiscordConfig(token=fake.token, guild_ids=[fake.guild_id],
                              api_base=f"{fake.base_url}/api/v10", gateway_url=fake.gateway_url,
                              channel_edits=5, channel_period=5.0 * scale, guild_ready_timeout=0.05),
        polling=PollingConfig(idle_interval=1.0 * scale),
    )


class Observed:
    """A listener noting when the bot first learned that each job ended."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def job_changed(self, job: Job) -> None:
        if job.terminal:
            self.at.setdefault(job.id, time.time())


def _completed_at(job: Job) -> float:
    spec = _unpack(job.provider_task_id or "")
    return float(spec["t"]) + float(spec["d"])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _final_edit_times(fake: DiscordFake, interactions: list[FakeInteraction]) -> dict[int, float]:
    """Message id -> wall-clock time its final (grid) edit landed."""
    def done() -> bool:
        return all(i.response_message_id and fake.message(fake.channel_id, i.response_message_id).attachments
                   for i in interactions)

    await fake.wait_for(done, timeout=600)
    times = {}
    for i in interactions:
        message = fake.message(fake.channel_id, i.response_message_id or 0)
        assert message.edited_at is not None
        times[message.id] = message.edited_at.timestamp()
    return times


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with DiscordFake(edit_limit=(5, 5.0 * args.scale)) as fake:
            config = _config(fake, Path(tmp) / "bench.sqlite3", args)
            async with build_app(config) as app, running(app):
                frontend = DiscordFrontend(app)
                observed = Observed()
                app.listeners.add(observed)
                task = asyncio.create_task(frontend.serve())
                await asyncio.wait_for(frontend.client.ready.wait(), 10)
                await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
                started = time.perf_counter()
                interactions = await asyncio.gather(*(
                    fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine",
                                       {"prompt": f"bench job {n}"}) for n in range(args.jobs)))
                finals = await _final_edit_times(fake, interactions)
                wall = time.perf_counter() - started
                jobs = [await app.service.by_message("discord", str(fake.channel_id), str(m)) for m in finals]
                stats = frontend.outbox.delivery.stats
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    assert all(j is not None and j.state is JobState.SUCCEEDED for j in jobs)
    placed = [(j, finals[int(j.placement.message_id or 0)]) for j in jobs if j and j.placement]
    latencies = [(final - _completed_at(j)) / args.scale for j, final in placed]
    seen_to_edit = [(final - observed.at[j.id]) / args.scale for j, final in placed]
    polled = [(observed.at[j.id] - _completed_at(j)) / args.scale for j, _ in placed]
    rows = [
        ("jobs (one channel)", f"{args.jobs}"),
        ("job duration (Discord s)", f"{args.duration:g}"),
        ("state changes seen (listener pushes)", f"{stats.pushed}"),
        ("edits sent after the first (bot token)", f"{stats.sent}"),
        ("  skipped as unchanged / coalesced", f"{stats.skipped} / {stats.coalesced}"),
        ("first responses (interaction)", f"{args.jobs}"),
        ("429s from the fake / retried by Delivery", f"{fake.sent_429} / {stats.retried}"),
        ("completion → final edit p50 (Discord s)", f"{statistics.median(latencies):.2f}"),
        ("completion → final edit p99 (Discord s)", f"{_percentile(latencies, 0.99):.2f}"),
        ("completion → final edit max (Discord s)", f"{max(latencies):.2f}"),
        ("  of which completion → seen by a poll p50", f"{statistics.median(polled):.2f}"),
        ("  of which seen → final edit p50 / p99", f"{statistics.median(seen_to_edit):.2f} / "
                                                   f"{_percentile(seen_to_edit, 0.99):.2f}"),
        ("wall time, scaled run (s)", f"{wall:.1f} (scale {args.scale:g})"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'metric':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="job length in Discord seconds")
    parser.add_argument("--scale", type=float, default=0.1, help="time scale of the run")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
