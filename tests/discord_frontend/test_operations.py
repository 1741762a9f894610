"""Operations in Discord: limits, banned words, access lists, bans, /admin, usage in /info, /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.access import Caller
from bot.discord_frontend.admin import REFUSAL
from bot.domain import Owner
from tests.discord_frontend.conftest import Discord, make_config, run_bot
from tests.fakes.discord_api import DiscordFake, FakeUser


@dataclass
class Ops:
    d: Discord
    carol: FakeUser  # has the role the config names as an admin role
    dave: FakeUser  # an operator (admins.users)
    eve: FakeUser  # on the config's blocklist


@pytest.fixture
async def ops(fake: DiscordFake, tmp_path: Path) -> AsyncIterator[Ops]:
    carol, dave, eve = (fake.add_user(name, name.title()) for name in ("carol", "dave", "eve"))
    moderators = await fake.add_role(fake.guild_id, "moderators", (carol,))
    sections = {
        "limits": {"user_per_hour": 2},
        "moderation": {"banned_words": ["forbidden"]},
        "access": {"block_users": [f"discord:{eve.id}"]},
        "admins": {"users": [f"discord:{dave.id}"], "discord_role_ids": [moderators]},
        "metrics": {"listen": "127.0.0.1:0"},
    }
    config = make_config(fake, tmp_path / "bot.sqlite3", sections)
    async with run_bot(config) as bot:
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
        yield Ops(Discord(fake, config, bot), carol, dave, eve)
    assert fake.violations == [], fake.violations


def owner(user: FakeUser) -> Owner:
    return Owner(platform="discord", user_id=str(user.id))


async def test_a_user_over_the_limit_is_told_so_for_commands_and_buttons(ops: Ops) -> None:
    d = ops.d
    first = await d.finished(await d.response(await d.command("imagine", {"prompt": "one"})))
    await d.response(await d.command("imagine", {"prompt": "two"}))
    await d.command("imagine", {"prompt": "three"})
    (told,) = await d.told(lambda text: "2 of 2 jobs this hour" in text)
    assert told == "You have used 2 of 2 jobs this hour; the next one frees up in 1 h."
    await d.press(first, "V1")
    await d.told(lambda text: "2 of 2 jobs this hour" in text, count=2)
    assert [m.embeds[0]["title"] for m in d.public()] == ["one", "two"]  # the refused one left nothing
    assert [m for m in d.public() if m.reference == first.id] == []


async def test_a_banned_word_is_refused_before_anything_is_spent(ops: Ops) -> None:
    d = ops.d
    await d.command("imagine", {"prompt": "a Forbidden castle at dawn"})
    (told,) = await d.told(lambda text: "not allowed here" in text)
    assert told == "Your prompt was not sent: “Forbidden” is not allowed here. Remove it and try again."
    assert d.public() == []
    service = d.bot.app.service
    assert await service.recent(owner(d.alice)) == []
    assert (await service.usage(Caller(owner(d.alice), scope=str(d.fake.guild_id)))).user[0].used == 0


async def test_a_blocked_user_is_refused_every_command(ops: Ops) -> None:
    d = ops.d
    await d.command("imagine", {"prompt": "a lighthouse"}, user=ops.eve)
    await d.command("jobs", user=ops.eve)
    told = await d.told(lambda text: text.startswith("You are not allowed to use this bot"), count=2)
    assert len(told) == 2 and d.public() == []
    assert await d.bot.app.service.recent(owner(ops.eve)) == []


async def test_a_member_who_is_not_an_admin_is_refused_politely(ops: Ops) -> None:
    d = ops.d
    await d.command("admin bans")
    await d.command("admin ban", {"user": d.bob, "reason": "no reason"})
    await d.command("admin pause", {"provider": "local"})
    assert await d.told(lambda text: text == REFUSAL, count=3) == [REFUSAL] * 3
    assert d.public() == []
    message = await d.response(await d.command("imagine", {"prompt": "still allowed"}, user=d.bob))
    assert message.embeds[0]["title"] == "still allowed"


async def test_an_admin_bans_a_member_who_is_then_refused_until_unbanned(ops: Ops) -> None:
    d = ops.d
    d.fake.make_admin(d.alice)  # Manage Server
    grid = await d.finished(await d.response(await d.command("imagine", {"prompt": "a meadow"})))
    await d.command("admin ban", {"user": d.bob, "reason": "spam"})
    (banned,) = await d.told(lambda text: "is banned" in text)
    assert banned == f"**Bob** (`{d.bob.id}`) is banned in this server: spam."
    await d.command("imagine", {"prompt": "let me in"}, user=d.bob)
    await d.press(grid, "U1", user=d.bob)
    refusals = await d.told(lambda text: text.startswith("You are banned here (spam)."), count=2)
    assert len(refusals) == 2
    assert [m.embeds[0]["title"] for m in d.public()] == ["a meadow"]
    await d.command("admin bans")
    (listing,) = await d.told(lambda text: text.startswith("**Bans**"))
    assert f"`discord:{d.bob.id}` in this server: spam (by discord:{d.alice.id}" in listing
    await d.command("admin unban", {"user": d.bob})
    await d.told(lambda text: text == f"**Bob** (`{d.bob.id}`) is no longer banned in this server.")
    message = await d.response(await d.command("imagine", {"prompt": "back again"}, user=d.bob))
    assert message.embeds[0]["title"] == "back again"


async def test_a_role_admin_sets_limits_and_sees_stats_but_only_an_operator_pauses(ops: Ops) -> None:
    d, carol, dave = ops.d, ops.carol, ops.dave
    await d.finished(await d.response(await d.command("imagine", {"prompt": "counted"})))
    await d.command("admin set-limit", {"key": "user_per_hour", "value": "0"}, user=carol)
    (changed,) = await d.told(lambda text: text.startswith("`user_per_hour` is now 0 here."))
    assert "user_per_hour     0" in changed
    await d.command("imagine", {"prompt": "over the new limit"}, user=d.bob)
    await d.told(lambda text: "of 0 jobs this hour" in text)
    await d.command("admin pause", {"provider": "local"}, user=carol)
    await d.told(lambda text: text == "Only the bot's operators can do that.")
    await d.command("admin pause", {"provider": "local"}, user=dave)
    await d.told(lambda text: text.startswith("Provider `local` is paused"))
    await d.command("imagine", {"prompt": "while paused"}, user=carol)  # an admin: no limit applies
    await d.told(lambda text: text == "Provider 'local' is paused by an admin.")
    await d.command("admin resume", {"provider": "local"}, user=dave)
    await d.told(lambda text: text == "Provider `local` is back in service.")
    await d.command("admin stats", {"period": "1h"}, user=carol)
    (stats,) = await d.told(lambda text: text.startswith("**Stats, last 1h**"))
    header, row = stats.split("\n")[2:4]
    assert header.split() == ["provider", "jobs", "ok", "failed", "active", "refunds", "spend"]
    assert row.split() == ["local", "1", "1", "0", "0", "0", "1"]


async def test_info_shows_the_users_usage_and_whats_left(ops: Ops) -> None:
    d = ops.d
    await d.finished(await d.response(await d.command("imagine", {"prompt": "one of two"})))
    await d.command("info")
    await d.command("info", user=ops.carol)
    answers = await d.fake.wait_for(lambda: len(found := [m for m in d.ephemeral() if m.embeds]) == 2
                                    and found)
    mine, carols = (m.embeds[0]["description"] for m in answers)
    assert mine == "Your usage: 1 of 2 jobs this hour (1 left); 1 jobs today (no limit); 0 running."
    assert carols == "You are an admin here: no limits apply to you."
    assert all(m.embeds[0]["fields"][0]["name"] == "local (local)" for m in answers)


async def test_metrics_count_the_edits_and_healthz_sees_discord(ops: Ops) -> None:
    d = ops.d
    message = await d.finished(await d.response(await d.command("imagine", {"prompt": "measured"})))
    server = d.bot.app.metrics_server
    assert server is not None and server.port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        scraped = (await http.get("/metrics")).text
        health = await http.get("/healthz")
    edits = {s.labels["outcome"]: s.value for family in text_string_to_metric_families(scraped)
             if family.name == "imagine_platform_edits" for s in family.samples
             if s.labels.get("platform") == "discord" and s.name.endswith("_total")}
    assert edits["sent"] == message.edit_count - 1 >= 1  # every edit after the first went through it
    assert edits["failed"] == 0
    assert health.status_code == 200 and health.json()["frontends"] == {"discord": True}
