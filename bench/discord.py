"""Discord frontend under a burst: N concurrent /imagine jobs in one channel against the fake Discord.

    .venv/bin/python bench/discord.py [--scenario burst] [--jobs 100] [--duration 30] [--scale 0.1]
    .venv/bin/python bench/discord.py --scenario finish-together [--jobs 100] [--duration 10] [--scale 1]

The real bot (service, store, poller, local provider, discord.py client) against tests/fakes/discord_api.py,
which models Discord's rate limits (DESIGN.md §5): bot-token message edits share the channel's bucket
(5 per 5 s) and the bot's global limit (50/s); the interaction's own webhook (`@original` and follow-up
edits) has a bucket per interaction token and is outside both; a token dies after 15 minutes. The
fake runs at `--scale` (every duration of Discord's, of the provider's and of the bot's pacing is
multiplied by it) and latencies are reported divided by it again, i.e. in real Discord seconds. Only
the interaction ack deadline stays 3 s of wall time: the bot's own work is not scaled.

Scenarios (N /imagine commands at once in one channel, the local provider, every job the same length,
so they all finish within the moment it took to start them):

- burst: edits sent vs state changes, 429s, and provider completion → final edit latency.
- finish-together: completion → final grid shown (the message edit carrying the result attachment)
  p50 / p99 / max, the time until every grid is shown, the 429s the fake sent (by bucket) and the REST
  requests per job by route. Run it at `--scale 1` (its default): the target is seconds, and at a smaller
  scale the bot's own milliseconds (render, upload) would be reported multiplied by 1/scale. The
  provider is polled every 0.25 s (burst: 2 s), so that the figure is the delivery's rather than the
  poll's (bench/webhooks.py measures how the bot learns of completion).

Completion = the moment the local provider's task is done, before any poll sees it.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/discord.py`: this file must not shadow the discord package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import contextlib
import contextvars
import statistics
import tempfile
import time
import warnings
from collections import Counter
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord  # noqa: F401  (discord.player imports the deprecated stdlib audioop)

from bench._provider_fake import header, markdown_table, percentile
from bot.app import build_app, frontend_parts, running
from bot.config import AppConfig, DiscordConfig, PollingConfig
from bot.discord_frontend.client import DiscordFrontend
from bot.domain import Job, JobState
from providers.local import LocalConfig, _unpack
from tests.fakes.discord_api import DiscordFake, FakeInteraction, FakeMessage

#: default (duration, scale, the provider's poll interval) of each scenario, in Discord seconds
SCENARIOS = {"burst": (30.0, 0.1, 2.0), "finish-together": (10.0, 1.0, 0.25)}
_route: contextvars.ContextVar[str] = contextvars.ContextVar("route", default="other")


class TimedDiscord(DiscordFake):
    """The fake, noting (`time.time`) when each message first showed an attachment and which route
    the request that attached it came by."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.final_at: dict[int, float] = {}
        self.final_via: dict[int, str] = {}

    async def _edit(self, m: FakeMessage, body: dict[str, Any], uploads: list[Any]) -> FakeMessage:
        had = bool(m.attachments)
        edited = await super()._edit(m, body, uploads)
        if edited.attachments and not had and edited.id not in self.final_at:
            self.final_at[edited.id] = time.time()
            self.final_via[edited.id] = _route.get()
        return edited

    async def _channel_message(self, r: Any) -> Any:
        _route.set("bot-token edit")
        return await super()._channel_message(r)

    async def _webhook_message(self, r: Any) -> Any:
        _route.set("interaction webhook edit")
        return await super()._webhook_message(r)

    async def _followup(self, r: Any) -> Any:
        _route.set("interaction follow-up")
        return await super()._followup(r)


def _config(fake: DiscordFake, database: Path, args: argparse.Namespace) -> AppConfig:
    scale = args.scale
    return AppConfig(
        database=database,
        providers=[LocalConfig(name="local", duration=args.duration * scale,
                               poll_interval=args.poll_interval * scale, grid_size=512,
                               max_concurrency=args.jobs)],
        discord=DiscordConfig(token=fake.token, guild_ids=[fake.guild_id],
                              api_base=f"{fake.base_url}/api/v10", gateway_url=fake.gateway_url,
                              channel_edits=5, channel_period=5.0 * scale,
                              global_per_second=max(1, round(40 / scale)), guild_ready_timeout=0.05),
        polling=PollingConfig(idle_interval=1.0 * scale),
    )  # fmt: skip


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


def _route_of(method: str, path: str) -> str | None:
    """The kind of REST request, for the per-job counts; None for what is not REST (the CDN)."""
    if not path.startswith("/api/v10/"):
        return None
    if path.startswith("/api/v10/interactions/"):
        return "interaction callback"
    if path.startswith("/api/v10/webhooks/"):
        return f"interaction webhook {method}"
    if method == "PATCH" and "/messages/" in path:
        return "bot-token edit"
    return f"bot-token other {method}"


async def _run(fake: TimedDiscord, config: AppConfig, args: argparse.Namespace) -> dict[str, Any]:
    async with build_app(config) as app, running(app):
        frontend = DiscordFrontend(frontend_parts(app))
        observed = Observed()
        app.listeners.add(observed)
        task = asyncio.create_task(frontend.serve())
        await asyncio.wait_for(frontend.client.ready.wait(), 10)
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id), 10)
        before = len(fake.requests)
        started = time.perf_counter()
        interactions: list[FakeInteraction] = await asyncio.gather(*(
            fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine",
                               {"prompt": f"bench job {n}"}) for n in range(args.jobs)))
        budget = (args.duration + 5 * args.jobs) * args.scale + 120
        await fake.wait_for(lambda: len(fake.final_at) >= args.jobs, timeout=budget)
        wall = time.perf_counter() - started
        await frontend.outbox.delivery.flush()
        jobs = [await app.service.by_message("discord", str(fake.channel_id), str(i.response_message_id))
                for i in interactions]  # fmt: skip
        stats = frontend.outbox.delivery.stats
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert all(j is not None and j.state is JobState.SUCCEEDED for j in jobs), "a job did not succeed"
    routes = Counter(r for m, p in fake.requests[before:] if (r := _route_of(m, p)) is not None)
    return {"jobs": [j for j in jobs if j is not None], "observed": observed, "wall": wall, "stats": stats,
            "routes": routes}


def _burst_rows(fake: TimedDiscord, result: dict[str, Any], args: argparse.Namespace) -> list[list[str]]:
    jobs, observed, stats, scale = result["jobs"], result["observed"], result["stats"], args.scale
    placed = [(j, fake.final_at[int(j.placement.message_id or 0)]) for j in jobs if j.placement]
    latencies = [(final - _completed_at(j)) / scale for j, final in placed]
    seen_to_edit = [(final - observed.at[j.id]) / scale for j, final in placed]
    polled = [(observed.at[j.id] - _completed_at(j)) / scale for j, _ in placed]
    return [
        ["jobs (one channel)", f"{args.jobs}"],
        ["job duration (Discord s)", f"{args.duration:g}"],
        ["state changes seen (listener pushes)", f"{stats.pushed}"],
        ["edits sent after the first", f"{stats.sent}"],
        ["skipped as unchanged / coalesced", f"{stats.skipped} / {stats.coalesced}"],
        ["first responses (interaction)", f"{args.jobs}"],
        ["429s from the fake / retried by Delivery", f"{fake.sent_429} / {stats.retried}"],
        ["completion → final edit p50 (Discord s)", f"{statistics.median(latencies):.2f}"],
        ["completion → final edit p99 (Discord s)", f"{percentile(latencies, 0.99):.2f}"],
        ["completion → final edit max (Discord s)", f"{max(latencies):.2f}"],
        ["of which completion → seen by a poll p50", f"{statistics.median(polled):.2f}"],
        ["of which seen → final edit p50 / p99", f"{statistics.median(seen_to_edit):.2f} / "
                                                 f"{percentile(seen_to_edit, 0.99):.2f}"],
        ["wall time, scaled run (s)", f"{result['wall']:.1f} (scale {scale:g})"],
    ]  # fmt: skip


def _finish_together_rows(fake: TimedDiscord, result: dict[str, Any],
                          args: argparse.Namespace) -> list[list[str]]:
    jobs, observed, stats, scale = result["jobs"], result["observed"], result["stats"], args.scale
    done = {j.id: _completed_at(j) for j in jobs}
    final = {j.id: fake.final_at[int(j.placement.message_id or 0)] for j in jobs if j.placement}
    total = [(final[j] - done[j]) / scale for j in final]
    seen = [(observed.at[j] - done[j]) / scale for j in final]
    to_final = [(final[j] - observed.at[j]) / scale for j in final]
    n, routes = len(jobs), result["routes"]

    def ms3(values: list[float]) -> str:
        return (f"{statistics.median(values):.2f} / {percentile(values, 0.99):.2f} / "
                f"{max(values):.2f}")  # fmt: skip

    per_route = ", ".join(f"{name} {count / n:.2f}" for name, count in sorted(routes.items()))
    via = Counter(fake.final_via.values())
    limited = ", ".join(f"{scope} {count}" for scope, count in sorted(fake.limited.items())) or "none"
    return [
        ["jobs (one channel, all started at once)", f"{n}"],
        ["job duration (Discord s)", f"{args.duration:g}"],
        ["completions spread, first → last job done (Discord s)",
         f"{(max(done.values()) - min(done.values())) / scale:.2f}"],
        ["**completion → final grid shown p50 / p99 / max (Discord s)**", f"**{ms3(total)}**"],
        ["of which completion → seen by the bot p50 / p99 / max", ms3(seen)],
        ["of which seen → final grid shown p50 / p99 / max", ms3(to_final)],
        ["last completion → every grid shown (Discord s)",
         f"{(max(final.values()) - max(done.values())) / scale:.2f}"],
        ["**429s from the fake** (by bucket) / retried by Delivery",
         f"**{fake.sent_429}** ({limited}) / {stats.retried}"],
        ["**REST requests per job**", f"**{sum(routes.values()) / n:.2f}**"],
        ["of which by route, per job", per_route],
        ["final grids attached by", ", ".join(f"{name} {count}" for name, count in sorted(via.items()))],
        ["state changes pushed / edits sent / coalesced / skipped",
         f"{stats.pushed} / {stats.sent} / {stats.coalesced} / {stats.skipped}"],
        ["requests the fake refused (violations)", f"{len(fake.violations)}"],
        ["wall time, scaled run (s)", f"{result['wall']:.1f} (scale {scale:g})"],
    ]  # fmt: skip


async def bench(args: argparse.Namespace) -> tuple[list[list[str]], TimedDiscord]:
    with tempfile.TemporaryDirectory() as tmp:
        # the ack deadline is the bot's own (unscaled) work: 3 s of wall time whatever the scale
        async with TimedDiscord(time_scale=args.scale, ack_deadline=3.0 / args.scale) as fake:
            result = await _run(fake, _config(fake, Path(tmp) / "bench.sqlite3", args), args)
    rows = (_burst_rows if args.scenario == "burst" else _finish_together_rows)(fake, result, args)
    return rows, fake


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="burst")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--duration", type=float, help="job length in Discord seconds "
                        "(default: 30 for burst, 10 for finish-together)")
    parser.add_argument("--scale", type=float, help="time scale of the run (default: 0.1 for burst, "
                        "1 for finish-together)")
    args = parser.parse_args()
    duration, scale, args.poll_interval = SCENARIOS[args.scenario]
    args.duration = duration if args.duration is None else args.duration
    args.scale = scale if args.scale is None else args.scale
    rows, fake = asyncio.run(bench(args))
    print(header(f"bench/discord.py --scenario {args.scenario} --jobs {args.jobs} "
                 f"--duration {args.duration:g} --scale {args.scale:g}"))
    print(markdown_table(["metric", "value"], rows))
    if fake.violations:
        print("the fake refused:", sorted({(v.kind, v.method) for v in fake.violations}))


if __name__ == "__main__":
    main()
