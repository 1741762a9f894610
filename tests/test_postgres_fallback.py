"""On a machine where no PostgreSQL answers, the tests start their own (tests/postgres.py): that path
works too, here forced: a throwaway cluster from initdb/pg_ctl, a store migrated into it, a job kept."""

from __future__ import annotations

import asyncpg

from bot.store import JobStore
from tests import postgres


async def test_a_throwaway_cluster_serves_a_store() -> None:
    url = postgres._throwaway()  # stopped and removed at exit
    admin = await asyncpg.connect(url)
    try:
        await admin.execute("CREATE DATABASE imagine_fallback")
    finally:
        await admin.close()
    store = await JobStore.open(url.rsplit("/", 1)[0] + "/imagine_fallback")
    try:
        await store.put_setting("telegram", "1", "speed", "fast")
        assert await store.settings("telegram", "1") == {"speed": "fast"}
        assert await store.ping()
    finally:
        await store.close()
