"""One access policy for every platform: the same rules, run once for Telegram and once for Discord,
through the real service (store, ledger, local provider) and bot.access.AccessPolicy.

Who may do what, as decided here:

| action                         | owner | chat admin | operator | anyone else              |
|--------------------------------|-------|------------|----------|--------------------------|
| press a job's buttons          | yes   | no (1)     | no (1)   | only with owner-only off |
| /cancel a job                  | yes   | yes        | yes      | only with owner-only off |

(1) With `access.owner_only_buttons` on (the default) admins start their own jobs like everyone; the one
exception is a job an anonymous Telegram admin asked for: it belongs to the group itself, so the group's
admins (and operators) press its buttons. Chat allow/block lists, user lists and bans hold everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.access import CHAT_REFUSAL, SERVER_REFUSAL, Caller
from bot.config_check import check_document
from bot.domain import Job, JobState, Owner, Placement
from bot.errors import NotAllowed
from tests.ops.conftest import Ops, build

PLATFORMS = ("telegram", "discord")
# where a command comes from: the Telegram group is both the scope and the chat; a Discord command
# comes from a server (the scope) and is shown in one of its channels (the placement's chat)
SCOPE = {"telegram": "-1001", "discord": "555"}
CHAT = {"telegram": "-1001", "discord": "777"}
OTHER = {"telegram": "discord", "discord": "telegram"}
OPERATORS = {"users": ["telegram:999", "discord:999"]}  # admins everywhere


def ada(platform: str) -> Owner:
    return Owner(platform=platform, user_id="101", name="Ada")


def bob(platform: str) -> Owner:
    return Owner(platform=platform, user_id="202", name="Bob")


def caller(owner: Owner, *, admin: bool = False, scope: str | None = None) -> Caller:
    return Caller(owner, scope=scope or SCOPE[owner.platform], chat_admin=admin)


def placement(platform: str) -> Placement:
    return Placement(platform=platform, chat_id=CHAT[platform])


@pytest.fixture(params=PLATFORMS)
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _grid(ops: Ops, owner: Owner) -> Job:
    job = await ops.service.imagine(caller(owner), "a lighthouse", placement=placement(owner.platform))
    (done,) = await ops.settle(job.id)
    assert done.state is JobState.SUCCEEDED
    return done


async def _press(ops: Ops, who: Caller, grid: Job) -> tuple[Job, bool]:
    return await ops.service.act(who, grid.id, "upscale", 1, placement=placement(grid.owner.platform))


async def _nothing_made_for(ops: Ops, owner: Owner) -> None:
    """Refused before anything existed: no job, no charge, no provider call."""
    assert await ops.service.recent(owner) == []
    assert await ops.service.quotas.ledger.user_charges(owner, 0.0) == []
    assert ops.providers["local"].calls["act"] == 0


@pytest.fixture
async def ops(tmp_path: Path) -> AsyncIterator[Ops]:
    async with build(tmp_path, admins=OPERATORS) as built:
        yield built


def operator(platform: str) -> Caller:
    return Caller(Owner(platform=platform, user_id="999", name="Op"), scope=SCOPE[platform])


# -- buttons ---------------------------------------------------------------------------------------


async def test_a_strangers_press_is_refused_and_costs_nothing(ops: Ops, platform: str) -> None:
    grid = await _grid(ops, ada(platform))
    with pytest.raises(NotAllowed) as refused:
        await _press(ops, caller(bob(platform)), grid)
    assert refused.value.message == "These buttons belong to Ada. Start your own with /imagine."
    await _nothing_made_for(ops, bob(platform))
    child, created = await _press(ops, caller(ada(platform)), grid)  # the owner may
    assert created and child.owner == ada(platform)


async def test_chat_admins_and_operators_press_only_their_own_buttons(ops: Ops, platform: str) -> None:
    """Owner-only means the owner: an admin (of the chat, or everywhere) starts their own job."""
    grid = await _grid(ops, ada(platform))
    for admin in (caller(bob(platform), admin=True), operator(platform)):
        assert not ops.service.access.may_press(admin, grid)
        with pytest.raises(NotAllowed):
            await _press(ops, admin, grid)
    await _nothing_made_for(ops, bob(platform))


async def test_a_job_the_group_asked_for_is_pressed_by_its_admins(ops: Ops, platform: str) -> None:
    """An anonymous Telegram admin's job belongs to the group (its owner id is the group's); a press
    comes from a member's own account: the group's admins may press, its members may not."""
    group = Owner(platform=platform, user_id=SCOPE[platform], name="Artists")
    grid = await _grid(ops, group)
    with pytest.raises(NotAllowed, match="belong to Artists"):
        await _press(ops, caller(bob(platform)), grid)
    assert not ops.service.access.may_press(caller(bob(platform), admin=True, scope="-1009"), grid)
    child, created = await _press(ops, caller(bob(platform), admin=True), grid)
    assert created and child.owner == bob(platform)


async def test_anyone_presses_when_buttons_are_not_owner_only(tmp_path: Path, platform: str) -> None:
    async with build(tmp_path, access={"owner_only_buttons": False}) as ops:
        grid = await _grid(ops, ada(platform))
        child, created = await _press(ops, caller(bob(platform)), grid)
        assert created and child.owner == bob(platform) and child.parent_id == grid.id


# -- cancel ----------------------------------------------------------------------------------------


async def _queued(ops: Ops, owner: Owner) -> Job:
    job = await ops.service.imagine(caller(owner), "a slow harbour", placement=placement(owner.platform))
    assert job.state is JobState.QUEUED  # nothing ticks the poller: it stays queued
    return job


async def test_cancel_rights(ops: Ops, platform: str) -> None:
    job = await _queued(ops, ada(platform))
    with pytest.raises(NotAllowed) as refused:
        await ops.service.cancel(caller(bob(platform)), job.id)
    assert refused.value.message == f"Job {job.id} belongs to Ada."
    assert (await ops.service.get(job.id)).state is JobState.QUEUED
    cancelled = await ops.service.cancel(caller(bob(platform), admin=True), job.id)  # an admin here
    assert (cancelled.state, cancelled.error) == (JobState.CANCELLED, "Cancelled by Bob.")
    for who in (operator(platform), caller(ada(platform))):
        job = await _queued(ops, ada(platform))
        assert (await ops.service.cancel(who, job.id)).state is JobState.CANCELLED


async def test_anyone_cancels_when_buttons_are_not_owner_only(tmp_path: Path, platform: str) -> None:
    async with build(tmp_path, access={"owner_only_buttons": False}) as ops:
        job = await _queued(ops, ada(platform))
        assert (await ops.service.cancel(caller(bob(platform)), job.id)).state is JobState.CANCELLED


# -- who may use the bot where ---------------------------------------------------------------------


async def test_allow_and_block_lists(tmp_path: Path, platform: str) -> None:
    access = {"allow_chats": [f"{platform}:{SCOPE[platform]}"], "block_users": [f"{platform}:202"],
              "block_chats": [f"{platform}:-1002"]}
    async with build(tmp_path, access=access, admins=OPERATORS) as ops:
        await _grid(ops, ada(platform))
        with pytest.raises(NotAllowed, match="not allowed to use this bot"):
            await ops.service.imagine(caller(bob(platform)), "hi", placement=placement(platform))
        for elsewhere in ("-1009", "-1002"):  # not on the allowlist; blocked (and not on it)
            with pytest.raises(NotAllowed) as refused:
                await ops.service.imagine(caller(ada(platform), scope=elsewhere), "hi")
            assert refused.value.message == CHAT_REFUSAL
        # operators pass the lists: a misconfigured list cannot lock them out
        assert ops.service.access.chat_refusal(caller(operator(platform).owner, scope="-1009")) is None
        # the list names only this platform's chats: the other platform is not restricted by it
        other = ada(OTHER[platform])
        assert ops.service.access.chat_refusal(caller(other, scope="-1009")) is None
        await _nothing_made_for(ops, bob(platform))


async def test_bans_hold_for_commands_and_buttons(tmp_path: Path, platform: str) -> None:
    async with build(tmp_path, access={"owner_only_buttons": False}) as ops:
        grid = await _grid(ops, ada(platform))
        await ops.admin.ban(caller(ada(platform), admin=True), f"{platform}:202", "spam")
        with pytest.raises(NotAllowed, match=r"^You are banned here \(spam\)"):
            await _press(ops, caller(bob(platform)), grid)
        with pytest.raises(NotAllowed, match="banned here"):
            await ops.service.imagine(caller(bob(platform)), "hi", placement=placement(platform))
        await _nothing_made_for(ops, bob(platform))
        elsewhere = await ops.service.imagine(caller(bob(platform), scope="-1002"), "hi")  # another chat
        assert elsewhere.owner == bob(platform)


async def test_discord_guild_ids_are_the_servers_served(tmp_path: Path) -> None:
    """`discord.guild_ids` registers the commands there and, decided by the policy, serves only those
    servers: not other servers, not DMs, and for operators neither (the commands are not there)."""
    async with build(tmp_path, discord={"guild_ids": [555]}, admins={"users": ["discord:999"]}) as ops:
        policy = ops.service.access
        assert policy.chat_refusal(caller(ada("discord"))) is None
        for scope in ("556", None):
            assert policy.chat_refusal(Caller(ada("discord"), scope=scope), "777") == SERVER_REFUSAL
        assert policy.chat_refusal(Caller(operator("discord").owner, scope="556")) == SERVER_REFUSAL
        assert policy.chat_refusal(caller(ada("telegram"))) is None  # Telegram is not restricted
        with pytest.raises(NotAllowed, match=SERVER_REFUSAL):
            await ops.service.imagine(caller(ada("discord"), scope="556"), "hi")


# -- the config: one key each, old keys folded in with a warning -----------------------------------


def _checked(document: dict[str, Any]) -> tuple[Any, list[str]]:
    check = check_document(document, {}, "test.yaml", None)
    config = check.loaded()
    return config, check.warnings


def test_old_owner_only_buttons_keys_still_work_and_name_the_new_key() -> None:
    config, warnings = _checked({"telegram": {"owner_only_buttons": False}})
    assert config.access.owner_only_buttons is False
    assert warnings == ["telegram.owner_only_buttons: deprecated, read as access.owner_only_buttons (one "
                        "rule for every platform): move it there"]
    config, warnings = _checked({"discord": {"owner_only_buttons": False}})
    assert config.access.owner_only_buttons is False
    assert warnings[0].startswith("discord.owner_only_buttons: deprecated, read as access.owner_only_buttons")
    # the two old keys disagree: one rule must hold, the safer one, and the warning says so
    config, warnings = _checked({"telegram": {"owner_only_buttons": False},
                                 "discord": {"owner_only_buttons": True}})
    assert config.access.owner_only_buttons is True
    assert any("disagree: read as true" in warning for warning in warnings)


def test_the_new_owner_only_buttons_key_wins_over_an_old_one() -> None:
    config, warnings = _checked({"access": {"owner_only_buttons": True},
                                 "telegram": {"owner_only_buttons": False}})
    assert config.access.owner_only_buttons is True
    assert warnings == ["telegram.owner_only_buttons: deprecated and ignored: access.owner_only_buttons is "
                        "set and wins (one rule for every platform); remove telegram.owner_only_buttons"]


def test_telegram_allowed_chat_ids_fold_into_access_allow_chats() -> None:
    config, warnings = _checked({"telegram": {"allowed_chat_ids": [-100123, 42]}})
    assert config.access.allow_chats == ["telegram:-100123", "telegram:42"]
    assert warnings == ['telegram.allowed_chat_ids: deprecated, read as access.allow_chats: '
                        '["telegram:-100123", "telegram:42"]: move the ids there']
    config, warnings = _checked({"telegram": {"allowed_chat_ids": [-100123]},
                                 "access": {"allow_chats": ["discord:555"]}})
    assert config.access.allow_chats == ["discord:555"]  # the new key wins
    assert warnings == ['telegram.allowed_chat_ids: deprecated and ignored: access.allow_chats is set and '
                        'wins; list the Telegram chats there as "telegram:<id>" and remove '
                        'telegram.allowed_chat_ids']


async def test_an_old_key_still_decides(tmp_path: Path) -> None:
    """Old key, new behaviour: `telegram.allowed_chat_ids` now lets in its chats through the policy
    (and leaves Discord alone, as it always did)."""
    async with build(tmp_path, telegram={"allowed_chat_ids": [-1001]}) as ops:
        assert ops.service.access.chat_refusal(caller(ada("telegram"))) is None
        assert ops.service.access.chat_refusal(caller(ada("telegram"), scope="-1009")) == CHAT_REFUSAL
        assert ops.service.access.chat_refusal(caller(ada("discord"))) is None


def test_a_config_without_old_keys_has_no_deprecation_warning() -> None:
    _, warnings = _checked({"access": {"owner_only_buttons": False, "allow_chats": ["telegram:-1001"]},
                            "discord": {"guild_ids": [555]}})
    assert not [warning for warning in warnings if "deprecated" in warning]


def test_the_servers_served_follow_a_copied_configs_guild_ids() -> None:
    """`discord.guild_ids` reaches the policy through `access.served`, derived from it; a config copied
    with another discord section (model_copy validates nothing) serves the copy's servers."""
    config, _ = _checked({"discord": {"guild_ids": [555]}})
    assert config.access.served == {"discord": frozenset({"555"})}
    assert config.discord is not None
    for guilds, served in (([], {}), ([7, 8], {"discord": frozenset({"7", "8"})})):
        discord = config.discord.model_copy(update={"guild_ids": guilds})
        copied = config.model_copy(update={"discord": discord})
        assert copied.access.served == served
    assert config.access.served == {"discord": frozenset({"555"})}  # the original is left alone
