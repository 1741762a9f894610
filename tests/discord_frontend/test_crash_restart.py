"""Discord interactions through the inbox: `imagine-bot run` killed with SIGKILL inside the windows
between Discord and the store (fault injection), then started again, ends with what one clean run
would have shown: one job, one charge, one message; interactions too old to answer are dropped."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import discord
import pytest
import yaml

from bot.discord_frontend.inbox import REPLAY_WINDOW
from bot.discord_frontend.replies import acknowledge, tell
from tests.bot_process import Process, discord_section, running_bot, stop, write_config
from tests.discord_frontend.conftest import Discord, is_final, make_config, run_bot
from tests.fakes.discord_api import LOADING, DiscordFake, FakeInteraction, FakeMessage, find_buttons

WITHIN = 20.0  # seconds for a process to start, connect and get somewhere (a few, normally)


def query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(database)) as db:
        return db.execute(sql).fetchall()


def jobs(database: Path) -> list[tuple[Any, ...]]:
    """(id, origin, parent_id) of every job, oldest first."""
    return query(database, "SELECT id, origin, parent_id FROM jobs ORDER BY created_at")


def charges(database: Path) -> list[str]:
    return [row[0] for row in query(database, "SELECT job_id FROM quota_ledger WHERE refunded_at IS NULL")]


def inbox(database: Path) -> list[tuple[str, bool]]:
    """(interaction id, handled?) of every Discord inbox entry."""
    rows = query(database, "SELECT key, done_at IS NOT NULL FROM inbox WHERE source = 'discord' ORDER BY seq")
    return [(str(key), bool(done)) for key, done in rows]


async def killed(process: Process) -> str:
    """Wait for the fault's SIGKILL; returns what the process logged until then."""
    async with asyncio.timeout(WITHIN):
        await process.wait()
    assert process.returncode == -signal.SIGKILL
    assert process.stderr is not None
    return (await process.stderr.read()).decode()


async def connected(fake: DiscordFake) -> None:
    await fake.wait_for(lambda: fake.commands.get(fake.guild_id) and fake.sessions, WITHIN)


def response(fake: DiscordFake, interaction: FakeInteraction) -> FakeMessage | None:
    """The interaction's own response message (`@original`), once there is one."""
    if interaction.response_message_id is None:
        return None
    return fake.message(fake.channel_id, interaction.response_message_id)


async def final_response(fake: DiscordFake, interaction: FakeInteraction) -> FakeMessage:
    found: FakeMessage = await fake.wait_for(
        lambda: (m := response(fake, interaction)) is not None and is_final(m) and m, WITHIN)
    return found


def acknowledged_twice(fake: DiscordFake) -> set[int]:
    """Interactions the restarted bot acknowledged again (Discord answers 40060: the run before the
    kill had); any other violation fails the test."""
    assert [v for v in fake.violations if v.kind != "double-ack"] == []
    return {int(v.path.split("/")[2]) for v in fake.violations}  # /interactions/<id>/<token>/callback


def public(fake: DiscordFake) -> list[FakeMessage]:
    return [m for m in fake.messages(fake.channel_id) if not m.ephemeral]


def config_path(fake: DiscordFake, tmp_path: Path) -> Path:
    """The bot on the fake. A submit cut short by the kill holds its job for the provider's request
    timeout and a little more, then is reconciled: 1 s keeps that short."""
    fake.ack_deadline = 60  # a restart within Discord's 3 s to acknowledge (a later one: tested below)
    path = write_config(tmp_path, duration=0.3, poll_interval=0.05, discord=discord_section(fake))
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["providers"][0]["request_timeout"] = 1.0
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.mark.parametrize("point", ["inbox_committed", "job_created", "reply_sent"])
async def test_imagine_killed_midway_ends_as_one_job_one_charge_one_edited_response(
        fake: DiscordFake, tmp_path: Path, point: str) -> None:
    path, database = config_path(fake, tmp_path), tmp_path / "bot.sqlite3"
    async with running_bot(path, DISCORD_TOKEN=fake.token, IMAGINE_BOT_FAULTS=f"{point}=kill") as first:
        await connected(fake)
        interaction = await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine",
                                               {"prompt": "a lighthouse in a storm"})
        logged = await killed(first)
    assert inbox(database) == [(str(interaction.id), False)]  # committed, not handled
    async with running_bot(path, DISCORD_TOKEN=fake.token) as second:
        message = await final_response(fake, interaction)
        logged += await stop(second)
    # the one message is the interaction's own "thinking…" response, edited to the grid
    assert fake.messages(fake.channel_id) == [message]
    assert message.type == 20 and message.interaction and message.interaction["name"] == "imagine"
    assert message.history[0]["flags"] & LOADING and message.attachments
    assert [b.label for b in find_buttons(message)][:4] == ["U1", "U2", "U3", "U4"]
    ((job_id, origin, _),) = jobs(database)
    assert origin == f"discord:{interaction.id}" and charges(database) == [job_id]
    assert inbox(database) == [(str(interaction.id), True)]
    assert interaction.token not in logged and fake.token not in logged  # tokens are never logged
    # the run before the kill had acknowledged it: the restarted one is told so (40060) and goes on
    assert acknowledged_twice(fake) == (set() if point == "inbox_committed" else {interaction.id})


async def test_imagine_killed_before_its_ack_posts_its_job_in_the_channel_after_a_slow_restart(
        fake: DiscordFake, tmp_path: Path) -> None:
    path, database = config_path(fake, tmp_path), tmp_path / "bot.sqlite3"
    async with running_bot(path, DISCORD_TOKEN=fake.token,
                           IMAGINE_BOT_FAULTS="inbox_committed=kill") as first:
        await connected(fake)
        interaction = await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine",
                                               {"prompt": "a lighthouse at dawn"})
        await killed(first)
    fake.ack_deadline = 0  # the restart comes too late to acknowledge: the command is still carried out
    async with running_bot(path, DISCORD_TOKEN=fake.token) as second:
        message = await fake.wait_for(lambda: (m := public(fake)) and is_final(m[0]) and m[0], WITHIN)
        await stop(second)
    ((job_id, origin, _),) = jobs(database)
    assert fake.messages(fake.channel_id) == [message] and interaction.response_type is None
    assert message.nonce == job_id and message.interaction is None and message.attachments
    assert origin == f"discord:{interaction.id}" and charges(database) == [job_id]
    assert inbox(database) == [(str(interaction.id), True)]
    assert [v.kind for v in fake.violations] == ["late-ack"]


@pytest.mark.parametrize("point", ["inbox_committed", "reply_sent"])
async def test_press_killed_midway_posts_one_child_message(fake: DiscordFake, tmp_path: Path,
                                                           point: str) -> None:
    path, database = config_path(fake, tmp_path), tmp_path / "bot.sqlite3"
    # the /imagine passes the point first; the press is the second time
    async with running_bot(path, DISCORD_TOKEN=fake.token, IMAGINE_BOT_FAULTS=f"{point}=kill@2") as first:
        await connected(fake)
        command = await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine",
                                           {"prompt": "a fox in the snow"})
        grid = await final_response(fake, command)
        u1 = next(b for b in find_buttons(grid) if b.label == "U1")
        press = await fake.press(fake.channel_id, grid.id, fake.user, u1.custom_id)
        await killed(first)
    async with running_bot(path, DISCORD_TOKEN=fake.token) as second:
        child = await fake.wait_for(
            lambda: (r := [m for m in public(fake) if m.reference == grid.id]) and is_final(r[0]) and r[0],
            WITHIN)
        await stop(second)
    assert fake.messages(fake.channel_id) == [grid, child]  # one child message, nothing told twice
    (parent_id, _, _), (child_id, child_origin, child_parent) = jobs(database)
    assert child_parent == parent_id and child_origin is None and child.nonce == child_id
    assert sorted(charges(database)) == sorted([parent_id, child_id])
    assert inbox(database) == [(str(command.id), True), (str(press.id), True)]
    # the command's handler may not have quite finished either when the kill came (its job can end
    # first): it is handled again too, and acknowledged twice. The press's child message goes out
    # through the job-message layer, in the channel's next slot: a kill at reply_sent may find the
    # press handled (the restart sends the message from the reply outbox) or not yet marked done (it is
    # handled again, acknowledged twice); either way Discord returns the message already sent for the
    # job's nonce, so there is one child message and one charge (asserted above)
    twice = acknowledged_twice(fake) - {command.id}
    assert twice <= ({press.id} if point == "reply_sent" else set())


def later(seconds: float) -> Callable[[], float]:
    return lambda: time.time() + seconds


async def test_interaction_older_than_its_token_is_not_handled_again(fake: DiscordFake,
                                                                    tmp_path: Path) -> None:
    path, database = config_path(fake, tmp_path), tmp_path / "bot.sqlite3"
    async with running_bot(path, DISCORD_TOKEN=fake.token,
                           IMAGINE_BOT_FAULTS="inbox_committed=kill") as first:
        await connected(fake)
        interaction = await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine",
                                               {"prompt": "too late"})
        await killed(first)
    # the restart comes past the token's lifetime: nothing could answer it, so it is dropped
    async with run_bot(make_config(fake, database, request_timeout=1.0), clock=later(REPLAY_WINDOW + 60)):
        await fake.wait_for(lambda: inbox(database) == [(str(interaction.id), True)], WITHIN)
    assert jobs(database) == [] and charges(database) == []
    assert fake.messages(fake.channel_id) == [] and interaction.response_type is None
    assert fake.violations == []


async def test_job_whose_interaction_expired_gets_a_channel_message(fake: DiscordFake,
                                                                    tmp_path: Path) -> None:
    path, database = config_path(fake, tmp_path), tmp_path / "bot.sqlite3"
    async with running_bot(path, DISCORD_TOKEN=fake.token, IMAGINE_BOT_FAULTS="job_created=kill") as first:
        await connected(fake)
        interaction = await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine",
                                               {"prompt": "shown after all"})
        await killed(first)
    async with run_bot(make_config(fake, database, request_timeout=1.0), clock=later(REPLAY_WINDOW + 60)):
        thinking = response(fake, interaction)
        message = await fake.wait_for(
            lambda: (m := [m for m in public(fake) if m is not thinking]) and is_final(m[0]) and m[0], WITHIN)
    ((job_id, _, _),) = jobs(database)
    assert charges(database) == [job_id] and message.nonce == job_id and message.interaction is None
    assert thinking is not None and thinking.flags & LOADING and thinking.edit_count == 0  # not touched
    assert fake.messages(fake.channel_id) == [thinking, message]
    assert inbox(database) == [(str(interaction.id), True)] and fake.violations == []



async def test_a_press_acknowledged_before_is_still_answered_privately(discord_env: Discord) -> None:
    """What a press handled again after a restart does when it has something to tell: Discord refuses
    a second acknowledgement (40060); the bot takes it as deferred and answers in a private follow-up."""
    env, fake = discord_env, discord_env.fake
    grid = await env.finished(await env.response(await env.command("imagine", {"prompt": "a red kite"})))
    press = await env.press(grid, "U2")
    await env.reply_to(grid)
    ((payload,),) = query(env.config.database, f"SELECT payload FROM inbox WHERE key = '{press.id}'")
    again = discord.Interaction(data=json.loads(payload), state=env.bot.frontend.client._connection)
    assert await acknowledge(again, thinking=False)  # as the restarted bot would, the run before had
    assert again.response.type is discord.InteractionResponseType.deferred_message_update
    await tell(again, "only for you")
    await env.told(lambda text: text == "only for you")
    assert [m.content for m in env.ephemeral()] == ["only for you"] and len(env.public()) == 2
    assert [v.kind for v in fake.violations] == ["double-ack"]
    fake.violations.clear()  # the fixture checks that there was nothing else
