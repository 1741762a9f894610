"""Quotas and credits: limits per user and per chat, refunds, no double charge, admins exempt."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain import JobState, Owner
from bot.errors import QuotaExceeded
from providers.base import Action
from tests.ops.conftest import ADA, BOB, build, local


async def test_the_hourly_limit_says_when_the_next_job_frees_up(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, limits={"user_per_hour": 2}, database=database) as ops:
        await ops.imagine()
        ops.clock.advance(60)
        await ops.imagine()
        ops.clock.advance(47 * 60)  # the first job was charged 48 min ago
        with pytest.raises(QuotaExceeded) as refused:
            await ops.service.imagine(ops.caller(ADA), "one more")
        assert refused.value.message == (
            "You have used 2 of 2 jobs this hour; the next one frees up in 12 min."
        )
        assert len(await ops.service.recent(ADA)) == 2  # the refused job was never stored
        assert ops.providers["local"].calls["submit"] == 2
        await ops.imagine(BOB)  # another user is not affected
        ops.clock.advance(12 * 60)
        await ops.imagine()  # the first charge left the window
        usage = await ops.service.usage(ops.caller(ADA))
        assert (usage.user[0].used, usage.user[0].left) == (2, 0)
        assert usage.lines()[0].startswith(
            "Your usage: 2 of 2 jobs this hour (0 left); 3 jobs today (no limit)")


async def test_daily_and_chat_limits(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, limits={"user_per_day": 3, "chat_per_hour": 2}, database=database) as ops:
        await ops.imagine(ADA)
        await ops.imagine(BOB)
        chat_full = r"^This chat has used 2 of 2 jobs this hour; the next one frees up in 1 h\.$"
        with pytest.raises(QuotaExceeded, match=chat_full):
            await ops.imagine(ADA)
        await ops.imagine(ADA, scope="-1002")  # another chat has its own allowance
        ops.clock.advance(3600)
        await ops.imagine(ADA)
        day_full = r"^You have used 3 of 3 jobs today; the next one frees up in 23 h\.$"
        with pytest.raises(QuotaExceeded, match=day_full):
            await ops.imagine(ADA)
        usage = await ops.service.usage(ops.caller(ADA))
        assert usage.chat is not None and usage.chat[0].used == 1
        assert usage.lines()[1] == "This chat: 1 of 2 jobs this hour (1 left); 3 jobs today (no limit)."


async def test_concurrent_jobs_per_user(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local(duration=30.0)], limits={"user_concurrent": 1},
                     database=database) as ops:
        first = await ops.service.imagine(ops.caller(ADA), "slow one")
        with pytest.raises(QuotaExceeded, match=r"You already have 1 job\(s\) in progress \(at most 1\)"):
            await ops.service.imagine(ops.caller(ADA), "another")
        await ops.settle(first.id, step=5.0)
        await ops.imagine(ADA)


async def test_a_provider_failure_is_refunded(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local(fail_word="kaboom")], limits={"user_per_hour": 1},
                     database=database) as ops:
        failed = await ops.imagine(ADA, "kaboom castle")
        assert failed.state is JobState.FAILED
        charge = await ops.service.quotas.ledger.get(failed.id)
        assert charge is not None and (charge.cost, charge.refund_reason) == (1.0, "failed")
        assert (await ops.service.usage(ops.caller(ADA))).user[0].used == 0
        assert (await ops.imagine(ADA)).state is JobState.SUCCEEDED  # the refund freed the slot


async def test_a_refused_submit_is_refunded(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local(submit_error="auth")], limits={"user_per_hour": 1},
                     database=database) as ops:
        failed = await ops.imagine(ADA)
        assert failed.state is JobState.FAILED
        assert (await ops.service.usage(ops.caller(ADA))).user[0].used == 0


async def test_a_timed_out_job_is_refunded(tmp_path: Path, database: Path | str) -> None:
    slow = local(duration=600.0, job_timeout=120.0)
    async with build(tmp_path, [slow], limits={"user_per_hour": 1}, database=database) as ops:
        job = await ops.service.imagine(ops.caller(ADA), "a long wait")
        with pytest.raises(QuotaExceeded):
            await ops.service.imagine(ops.caller(ADA), "meanwhile")
        (ended,) = await ops.settle(job.id, step=30.0)
        assert ended.state is JobState.TIMED_OUT
        charge = await ops.service.quotas.ledger.get(job.id)
        assert charge is not None and charge.refund_reason == "timed_out"
        assert (await ops.service.usage(ops.caller(ADA))).user[0].used == 0
        await ops.service.imagine(ops.caller(ADA), "now it fits")


async def test_a_duplicate_press_is_charged_once(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, limits={"user_per_hour": 2}, database=database) as ops:
        grid = await ops.imagine(ADA)
        first, created = await ops.service.act(ops.caller(ADA), grid.id, Action.UPSCALE.value, 1)
        assert created
        again, created_again = await ops.service.act(ops.caller(ADA), grid.id, Action.UPSCALE.value, 1)
        assert (again.id, created_again) == (first.id, False)
        await ops.settle(first.id)
        # At the limit now, a press of the same button still answers with its job instead of refusing.
        third, created_third = await ops.service.act(ops.caller(ADA), grid.id, Action.UPSCALE.value, 1)
        assert (third.id, created_third) == (first.id, False)
        with pytest.raises(QuotaExceeded):
            await ops.service.act(ops.caller(ADA), grid.id, Action.UPSCALE.value, 2)
        assert (await ops.service.usage(ops.caller(ADA))).user[0].used == 2
        assert ops.providers["local"].calls["act"] == 1


async def test_costs_per_kind(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, limits={"user_per_hour": 2, "costs": {"upscale": 0, "variation": 2}},
                     database=database) as ops:
        grid = await ops.imagine(ADA)
        for index in (1, 2, 3, 4):  # upscales are free
            await ops.service.act(ops.caller(ADA), grid.id, Action.UPSCALE.value, index)
        with pytest.raises(QuotaExceeded, match=r"^You have used 1 of 2 credits this hour"):
            await ops.service.act(ops.caller(ADA), grid.id, Action.VARIATION.value, 1)
        assert (await ops.service.usage(ops.caller(ADA))).unit == "credits"


async def test_admins_are_exempt_but_their_jobs_are_recorded(tmp_path: Path, database: Path | str) -> None:
    operator = Owner(platform="discord", user_id="900", name="Op")
    async with build(tmp_path, limits={"user_per_hour": 1}, admins={"users": ["discord:900"]},
                     database=database) as ops:
        for _ in range(3):
            await ops.imagine(ADA, admin=True)  # the frontend says Ada administers this chat
            await ops.imagine(operator)
        assert (await ops.service.usage(ops.caller(ADA, chat_admin=True))).lines() == [
            "You are an admin here: no limits apply to you."]
        await ops.imagine(ADA)  # as a member her own allowance is untouched
        with pytest.raises(QuotaExceeded):
            await ops.imagine(ADA)
        stats = await ops.admin.stats(ops.caller(operator, scope=None), 3600)
        assert [(p.provider, p.jobs, p.spend) for p in stats.providers] == [("local", 7, 7.0)]


async def test_chat_admins_can_be_made_to_count(tmp_path: Path, database: Path | str) -> None:
    limits = {"user_per_hour": 1, "exempt_chat_admins": False}
    async with build(tmp_path, limits=limits, database=database) as ops:
        await ops.imagine(ADA, admin=True)
        with pytest.raises(QuotaExceeded):
            await ops.imagine(ADA, admin=True)


async def test_refunds_missed_during_a_crash_are_made_at_start(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local(fail_word="kaboom")], limits={"user_per_hour": 1},
                     database=database) as ops:
        job = await ops.service.imagine(ops.caller(ADA), "kaboom")
        ended = job.model_copy(update={"state": JobState.FAILED, "error": "lost", "updated_at": ops.clock()})
        await ops.store.save(ended)  # stored, but no listener heard of it
        assert (await ops.service.usage(ops.caller(ADA))).user[0].used == 1
        assert await ops.service.quotas.ledger.reconcile(ops.clock()) == 1
        assert (await ops.service.usage(ops.caller(ADA))).user[0].used == 0


async def test_cancelling_a_queued_job_refunds_it(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, limits={"user_per_hour": 1}, database=database) as ops:
        job = await ops.service.imagine(ops.caller(ADA), "never mind")
        await ops.service.cancel(ops.caller(ADA), job.id)
        assert (await ops.service.usage(ops.caller(ADA))).user[0].used == 0
