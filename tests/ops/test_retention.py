"""Finished jobs past `retention.keep_days` are pruned in the background by `run`, with what only they
used (charges, callback secrets, stored inputs), on each engine; newer jobs and their inputs stay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.access import Caller
from bot.app import build_app, running
from bot.config import AppConfig
from tests.core.conftest import OWNER, build, image_input, local, png
from tests.harness import FakeClock

DAY = 86400.0


async def test_finished_jobs_past_the_retention_age_go_in_the_background(tmp_path: Path,
                                                                         database: Path | str) -> None:
    async with build(tmp_path, clock=FakeClock(time.time() - 100 * DAY), database=database) as old:
        blend = await old.done(await old.service.blend(Caller(OWNER), [image_input(png(color=(1, 2, 3))),
                                                               image_input(png(color=(4, 5, 6)))]))
        imagined = await old.imagine("an old lighthouse")
    async with build(tmp_path, clock=FakeClock(time.time()), database=database) as new:
        kept = await new.done(await new.service.blend(Caller(OWNER), [image_input(png(color=(4, 5, 6))),
                                                              image_input(png(color=(7, 8, 9)))]))
    config = AppConfig.model_validate({"database": database, "providers": [local()],
                                       "default_provider": "local", "retention": {"keep_days": 30}})
    async with build_app(config, serve_http=False) as app, running(app):
        for _ in range(250):
            if await app.store.get(imagined.id) is None:
                break
            await asyncio.sleep(0.02)
        store = app.store
        assert await store.get(imagined.id) is None and await store.get(blend.id) is None
        assert await store.ledger.get(imagined.id) is None and await store.ledger.get(blend.id) is None
        assert await store.get(kept.id) is not None and await store.ledger.get(kept.id) is not None
        # the old blend's inputs: the one the new blend shares stays, the other went
        shared, new_only = png(color=(4, 5, 6)), png(color=(7, 8, 9))
        assert [i.data for i in await app.service.inputs(kept)] == [shared, new_only]
        assert not await store.inputs.exists(blend.request.images[0].sha256 or "")
        assert await store.inputs.exists(blend.request.images[1].sha256 or "")
