"""The web pages' server time with a big store, and the thumbnail cache's hit rate.

    .venv/bin/python bench/web.py [--jobs 10000] [--members 100] [--requests 200] [--quick]

A SQLite store holds `--jobs` finished jobs of `--members` people in one Telegram group (made from a
few real jobs of the built-in local provider, copied with their own ids, owners and ledger rows). The
real aiohttp application (the webhooks server's, with the pages mounted as `imagine-bot run` mounts
them) serves on loopback; a signed-in member's client asks for their gallery, the group's page (as its
admin: usage by member, limits, bans, providers) and the gallery's thumbnails, as a browser showing
the first 24 does. Reported: server time per page (p50 / p99 / max over `--requests`, measured around
the request on the client, on loopback) and the thumbnail cache's hits / requests.
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python bench/web.py`: bench/ must not shadow the top-level packages
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from datetime import date

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.access import Caller
from bot.app import App, build_app, running
from bot.config import AppConfig, MediaConfig, PollingConfig, WebConfig, WebhooksConfig
from bot.domain import Job, Owner, Placement, new_job_id
from bot.metrics import add_routes
from bot.web.auth import Grant
from bot.web.site import mount
from providers.local import LocalConfig

GROUP = "-100123"
THUMBS_SHOWN = 24  # thumbnails a browser loads first (the rest are lazy)


def _config(tmp: Path) -> AppConfig:
    return AppConfig(
        database=tmp / "jobs.sqlite3", providers=[LocalConfig(name="local", duration=0.0, poll_interval=0.05,
                                                              grid_size=1024)],
        media=MediaConfig(cache_dir=tmp / "media"), polling=PollingConfig(idle_interval=0.05),
        webhooks=WebhooksConfig(listen="127.0.0.1:0", public_url="http://127.0.0.1:1"),
        web=WebConfig(enabled=True),
    )  # fmt: skip


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1000:8.1f} {p99 * 1000:8.1f} {ordered[-1] * 1000:8.1f}"


async def _timed(client: TestClient, path: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        async with client.get(path) as response:
            await response.read()
            assert response.status == 200, (path, response.status)
        samples.append(time.perf_counter() - started)
    return samples


async def _seeds(app: App, owner: Owner, count: int = 4) -> list[Job]:
    """A few real jobs of the local provider (real grids in the media cache) to copy from."""
    jobs = [await app.service.imagine(Caller(owner, scope=GROUP), f"a lighthouse {i}",
                                      placement=Placement(platform="telegram", chat_id=GROUP))
            for i in range(count)]  # fmt: skip
    for _ in range(500):
        jobs = [await app.service.get(job.id) for job in jobs]
        if all(job.terminal for job in jobs):
            return jobs
        await asyncio.sleep(0.02)  # the poller owns the jobs; this only looks
    raise RuntimeError("the seed jobs did not finish")


async def _fill(app: App, people: list[Owner], jobs: int) -> float:
    """`jobs` finished jobs of `people` in the group, copied from real ones; the seconds it took."""
    seeds = await _seeds(app, people[0])
    started, now = time.perf_counter(), time.time()
    async with app.store.transaction():
        for n in range(jobs - len(seeds)):
            copy = seeds[n % len(seeds)].model_copy(update={
                "id": new_job_id(), "owner": people[n % len(people)], "created_at": now - n,
                "updated_at": now - n, "provider_task_id": None, "origin": None})  # fmt: skip
            await app.store.insert(copy)
            await app.store.ledger.charge(copy, f"telegram:{GROUP}", 1.0, False, now - n)
    return time.perf_counter() - started


async def _measure(app: App, owner: Owner, requests: int) -> dict[str, list[float]]:
    assert app.webhooks is not None and app.web is not None
    application: web.Application = app.webhooks.build_application()
    add_routes(application, app.metrics, app.health, app.store, app.pool.last_success)
    mount(application, app.web)
    async with TestServer(application, host="127.0.0.1") as server, TestClient(server) as client:
        link = app.web.auth.link(Grant(owner, GROUP, None, chat_admin=True))
        async with client.post("/web/login", data={"t": link.split("t=")[1]}) as response:
            html = await response.text()
        ids = [part.split("/thumb")[0] for part in html.split('src="/web/jobs/')[1:]]
        gallery = await _timed(client, "/web/", requests)
        chat = await _timed(client, f"/web/chats/telegram:{GROUP}", max(1, requests // 4))
        thumbs: list[float] = []
        for _ in range(max(1, requests // 20)):  # page views: each loads its first thumbnails
            for job_id in ids[:THUMBS_SHOWN]:
                thumbs += await _timed(client, f"/web/jobs/{job_id}/thumb", 1)
    return {f"gallery (/web/, {len(ids)} shown)": gallery, "group page (admin)": chat, "thumbnail": thumbs}


async def bench(jobs: int, members: int, requests: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with build_app(_config(Path(folder))) as app, running(app):
            people = [Owner(platform="telegram", user_id=str(1000 + i), name=f"member {i}")
                      for i in range(members)]  # fmt: skip
            filled = await _fill(app, people, jobs)
            pages = await _measure(app, people[0], requests)
            assert app.web is not None
            cache = app.web.thumbs
    print(f"web pages: {jobs} jobs of {members} members in one group (filled in {filled:.1f} s); "
          f"{platform.node()}, {platform.python_version()}, {date.today()}")
    print(f"{'page':<34}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, samples in pages.items():
        print(f"{name:<34}{len(samples):>6} {_percentiles(samples)}")
    total = cache.hits + cache.misses
    print(f"thumbnail cache: {cache.hits} hits / {total} requests ({cache.hits / max(1, total):.1%}); "
          f"{cache.misses} made")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.members, args.requests = 200, 10, 20
    asyncio.run(bench(args.jobs, args.members, args.requests))


if __name__ == "__main__":
    main()
