"""One connection per process: a statement of one task never joins another task's open transaction.

Found by the crash harness (tests/crash): the poller claimed a job while a /imagine was inside its
transaction, sent the submit, and the process died before that transaction committed; the claim went
with it, so the next process claimed the job again and the provider got it twice.
"""

from __future__ import annotations

import asyncio

from bot.domain import JobState
from bot.store import JobStore
from tests.core.test_store import make


async def test_a_claim_made_while_another_task_is_inside_a_transaction_outlives_its_rollback(
    store: JobStore,
) -> None:
    await store.insert(make("a1"))
    inside, release = asyncio.Event(), asyncio.Event()

    async def refused_command() -> None:  # e.g. a /imagine over its quota: checked, then rolled back
        try:
            async with store.transaction():
                await store.insert(make("b1"))
                inside.set()
                await release.wait()
                raise LookupError("over quota")
        except LookupError:
            pass

    command = asyncio.create_task(refused_command())
    await inside.wait()
    claim = asyncio.create_task(store.claim_queued("local", 200.0, 30.0, capacity=5))
    await asyncio.sleep(0.05)
    release.set()
    [claimed] = await claim
    await command
    assert claimed.id == "a1"
    stored = await store.get("a1")
    assert stored is not None and stored.state is JobState.SUBMITTING  # the claim holds: sent once
    assert stored.submit_key == claimed.submit_key
    assert await store.get("b1") is None  # what the refused command wrote is gone


async def test_statements_of_the_task_holding_the_transaction_run_inside_it(store: JobStore) -> None:
    async with store.transaction():
        await store.insert(make("a1"))
        assert await store.get("a1") is not None  # its own reads see its writes, without waiting
        [claimed] = await store.claim_queued("local", 200.0, 30.0, capacity=5)
    assert claimed.id == "a1"
    stored = await store.get("a1")
    assert stored is not None and stored.state is JobState.SUBMITTING
