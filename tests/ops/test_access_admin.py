"""Access lists, bans, and the admin commands: who may run them and what they change."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import i18n
from bot.access import Caller
from bot.domain import JobState, Owner, Placement
from bot.errors import NotAllowed, ProviderPaused, QuotaExceeded, UserError
from tests.ops.conftest import ADA, BOB, GROUP, Ops, build, local

CAROL = Owner(platform="discord", user_id="303", name="Carol")


async def test_allow_and_block_lists(tmp_path: Path, database: Path | str) -> None:
    access = {"allow_chats": [-1001, "discord:555"], "block_users": ["telegram:202"]}
    async with build(tmp_path, access=access, database=database) as ops:
        await ops.imagine(ADA)
        with pytest.raises(NotAllowed, match="not allowed to use this bot"):
            await ops.imagine(BOB)
        with pytest.raises(NotAllowed, match="not enabled in this chat"):
            await ops.imagine(ADA, scope="-1009")
        # Discord: the guild is the scope, the channel is the placement's chat
        placement = Placement(platform="discord", chat_id="777")
        await ops.imagine(CAROL, scope="555", placement=placement)
        with pytest.raises(NotAllowed):
            await ops.imagine(CAROL, scope="556", placement=placement)
        with pytest.raises(NotAllowed):  # a DM, outside every allowed chat
            await ops.service.imagine(Caller(CAROL), "hi",
                                      placement=Placement(platform="discord", chat_id="888"))


async def test_a_non_admin_cannot_run_admin_commands(ops: Ops) -> None:
    member = ops.caller(BOB)
    assert not ops.admin.is_admin(member)
    attempts = [
        ops.admin.ban(member, "telegram:101"),
        ops.admin.unban(member, "telegram:101"),
        ops.admin.bans(member),
        ops.admin.limits(member),
        ops.admin.set_limit(member, "user_per_hour", "0"),
        ops.admin.pause(member, "local"),
        ops.admin.resume(member, "local"),
        ops.admin.stats(member),
    ]
    for attempt in attempts:
        with pytest.raises(NotAllowed):
            await attempt
    assert await ops.service.access.bans.list() == []
    assert not ops.pool.held("local")
    await ops.imagine(ADA)  # nothing changed for anyone


async def test_chat_admins_ban_in_their_chat_operators_everywhere(tmp_path: Path,
                                                                  database: Path | str) -> None:
    async with build(tmp_path, admins={"users": ["telegram:999"]}, database=database) as ops:
        chat_admin = ops.caller(ADA, chat_admin=True)
        ban = await ops.admin.ban(chat_admin, "202", "spam")  # a bare id: the admin's platform
        assert (ban.platform, ban.user_id, ban.scope) == ("telegram", "202", f"telegram:{GROUP}")
        with pytest.raises(NotAllowed, match=r"^You are banned here \(spam\)"):
            await ops.imagine(BOB)
        await ops.imagine(BOB, scope="-1002")  # elsewhere Bob is fine
        with pytest.raises(NotAllowed, match="operators"):
            await ops.admin.ban(chat_admin, "202", everywhere=True)
        with pytest.raises(NotAllowed, match="operator of this bot"):
            await ops.admin.ban(chat_admin, "telegram:999")
        with pytest.raises(NotAllowed, match="Run this in the server or group"):
            await ops.admin.ban(ops.caller(ADA, chat_admin=True, scope=None), "202")
        with pytest.raises(UserError, match="yourself"):
            await ops.admin.ban(chat_admin, "101")
        operator = Caller(Owner(platform="telegram", user_id="999"), scope=None)
        await ops.admin.ban(operator, "telegram:202", "everywhere now")
        with pytest.raises(NotAllowed, match=r"banned from this bot \(everywhere now\)"):
            await ops.imagine(BOB, scope="-1002")
        assert await ops.admin.unban(operator, "telegram:202")
        assert await ops.admin.unban(chat_admin, "202")
        assert not await ops.admin.unban(chat_admin, "202")
        assert (await ops.imagine(BOB)).state is JobState.SUCCEEDED


async def test_a_banned_user_cannot_press_buttons(ops: Ops) -> None:
    grid = await ops.imagine(BOB)
    await ops.admin.ban(ops.caller(ADA, chat_admin=True), "telegram:202")
    with pytest.raises(NotAllowed):
        await ops.service.act(ops.caller(BOB), grid.id, "upscale", 1)


async def test_limits_shown_and_set_by_admins(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, limits={"user_per_hour": 10}, database=database) as ops:
        chat_admin = ops.caller(ADA, chat_admin=True)
        assert (await ops.admin.limits(chat_admin))["user_per_hour"] == 10
        await ops.admin.set_limit(chat_admin, "user_per_hour", "1")
        await ops.admin.set_limit(chat_admin, "chat_per_day", "none")
        shown = await ops.admin.limits(chat_admin)
        assert (shown["user_per_hour"], shown["chat_per_day"]) == (1, None)
        await ops.imagine(BOB)
        with pytest.raises(QuotaExceeded, match="1 of 1 jobs this hour"):
            await ops.imagine(BOB)
        await ops.imagine(BOB, scope="-1002")  # the override is this chat's only
        with pytest.raises(UserError, match="There is no limit"):
            await ops.admin.set_limit(chat_admin, "per_minute", "3")
        with pytest.raises(UserError, match="A limit is a number"):
            await ops.admin.set_limit(chat_admin, "user_per_hour", "lots")
        await ops.admin.set_limit(chat_admin, "user_per_hour", "default")
        assert (await ops.admin.limits(chat_admin))["user_per_hour"] == 10


async def test_pause_and_resume_a_provider(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local("local"), local("spare")], admins={"users": ["telegram:999"]},
                     database=database) as ops:
        operator = Caller(Owner(platform="telegram", user_id="999"))
        queued = await ops.service.imagine(ops.caller(ADA), "queued before the pause")
        await ops.admin.pause(operator, "local")
        with pytest.raises(NotAllowed):
            await ops.admin.pause(ops.caller(ADA, chat_admin=True), "spare")  # chat admins cannot
        with pytest.raises(ProviderPaused, match=r"^Provider 'local' is paused by an admin\. Try: spare\.$"):
            await ops.service.imagine(ops.caller(ADA), "new")
        for _ in range(3):
            await ops.poller.tick()
            ops.clock.advance(1)
        assert (await ops.service.get(queued.id)).state is JobState.QUEUED  # the poller respects it
        status = {s.name: s.paused for s in await ops.service.provider_status()}
        assert status == {"local": True, "spare": False}
        ops.pool.release("local")  # as if the bot restarted: the stored pause comes back
        assert await ops.admin.restore() == ["local"] and ops.pool.held("local")
        await ops.admin.resume(operator, "local")
        (done,) = await ops.settle(queued.id)
        assert done.state is JobState.SUCCEEDED
        assert await ops.admin.restore() == []


async def test_stats_per_provider_over_a_period(tmp_path: Path, database: Path | str) -> None:
    providers = [local("local", fail_word="kaboom"), local("spare")]
    async with build(tmp_path, providers, admins={"users": ["telegram:999"]}, database=database) as ops:
        await ops.imagine(ADA)
        ops.clock.advance(7200)
        await ops.imagine(ADA)
        await ops.imagine(ADA, "kaboom")
        await ops.imagine(BOB, provider="spare", scope="-1002")
        operator = Caller(Owner(platform="telegram", user_id="999"))
        stats = await ops.admin.stats(operator, 3600)
        rows = [(p.provider, p.jobs, p.succeeded, p.failed, p.refunded, p.spend) for p in stats.providers]
        assert rows == [("local", 2, 1, 1, 1, 1.0), ("spare", 1, 1, 0, 0, 1.0)]
        everything = await ops.admin.stats(operator, 86400)
        assert everything.providers[0].jobs == 3
        in_group = await ops.admin.stats(ops.caller(ADA, chat_admin=True), 86400)
        assert [(p.provider, p.jobs) for p in in_group.providers] == [("local", 3)]
        header = ["provider", "jobs", "ok", "failed", "active", "refunds", "spend"]
        assert in_group.lines()[0].split() == header
        with i18n.use("ru"):  # the header in the reader's language; each column as wide as its word
            russian, row = in_group.lines()
        words = [i18n.translate("ru", word) for word in header]
        assert words != header and all(word in russian for word in words)
        assert len(row) == len(russian) and row.split() == ["local", "3", "2", "1", "0", "1", "2"]
