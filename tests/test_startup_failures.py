"""`imagine-bot run` when it can't start as configured, as an operator meets it: a token the platform
refuses, an address to serve on that is taken, a platform that does not answer yet.

A refusal is one line naming the key to fix, a documented exit code (bot/errors.py ExitCode), no
traceback, and no configured secret anywhere in what the process printed, in any encoding. A platform
that can't be reached is retried with a growing wait while the other platform is served.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml

from bot.errors import ExitCode
from tests.bot_process import ROOT, discord_section, running_bot, stop, telegram_section, write_config
from tests.discord_frontend.conftest import is_final
from tests.fakes.discord_api import DiscordFake
from tests.fakes.telegram_api import TelegramFake
from tests.net import RoundRobin, free_port
from tests.telegram_frontend.conftest import ANN, BOT

MJ_KEY = "mj-key-0f9e8d7c6b5a"


async def run_until_exit(path: Path, within: float = 60, **env: str) -> tuple[int, str]:
    """`imagine-bot --config PATH run` until it exits by itself: its exit code and all it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(path), "run", cwd=ROOT,
        env={**env, "PATH": "/usr/bin:/bin"}, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), within)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


def leaked(output: str, *secrets: str) -> list[str]:
    """The secrets found in `output` as they are, URL-quoted, base64'd, or hex'd (a tenth of each is
    enough to give a token away, so any 10-character piece counts)."""
    found = []
    for secret in secrets:
        forms = [secret, urllib.parse.quote(secret, safe=""), base64.b64encode(secret.encode()).decode(),
                 secret.encode().hex()]  # fmt: skip
        pieces = {form[i : i + 10] for form in forms for i in range(0, max(1, len(form) - 9))}
        found += [f"{secret[:4]}… as {piece!r}" for piece in pieces if len(piece) == 10 and piece in output]
    return found


def with_provider(path: Path) -> None:
    """Add a paid provider whose key is a secret too (it must not show in a start-up failure either)."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["providers"].append({"name": "mj", "type": "midjourney_api", "api_key": "${MJ_KEY}"})
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


@pytest.mark.parametrize("platform", ["telegram", "discord"])
async def test_a_refused_token_is_one_line_naming_its_key(tmp_path: Path, platform: str) -> None:
    """With JSON logs on, and a paid provider's key configured too: neither token nor key shows."""
    async with contextlib.AsyncExitStack() as stack:
        if platform == "telegram":
            telegram = await stack.enter_async_context(TelegramFake(bot_username=BOT))
            section, wrong = telegram_section(telegram), "999:" + telegram.token.split(":", 1)[1][::-1]
        else:
            discord = await stack.enter_async_context(DiscordFake())
            section, wrong = discord_section(discord), discord.token[::-1]
        path = write_config(tmp_path, duration=0.1, poll_interval=0.1, logging={"format": "json"},
                            **{platform: section})  # fmt: skip
        with_provider(path)
        code, output = await run_until_exit(path, MJ_KEY=MJ_KEY, **{f"{platform.upper()}_TOKEN": wrong})
    assert code == ExitCode.TOKEN_REFUSED, output
    assert f"{platform.capitalize()} refused the bot token ({platform}.token)" in output
    assert "Traceback" not in output and "ExceptionGroup" not in output, output
    assert leaked(output, wrong, MJ_KEY) == [], output


async def test_an_address_in_use_is_one_line_and_its_exit_code(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        async with TelegramFake(bot_username=BOT) as telegram:
            metrics = {"listen": f"127.0.0.1:{port}"}
            path = write_config(tmp_path, duration=0.1, poll_interval=0.1, metrics=metrics,
                                telegram=telegram_section(telegram))  # fmt: skip
            code, output = await run_until_exit(path, TELEGRAM_TOKEN=telegram.token)
    assert code == ExitCode.UNREACHABLE, output
    assert f"Can't listen on metrics.listen 127.0.0.1:{port}: the port is in use" in output
    assert "Traceback" not in output, output
    assert leaked(output, telegram.token) == [], output


async def test_discord_unreachable_at_start_is_retried_while_telegram_is_served(tmp_path: Path) -> None:
    """Discord's API does not answer at first (a reverse proxy not up yet): the bot says so, one line per
    try, serves Telegram meanwhile, and serves Discord once it answers."""
    async with DiscordFake() as discord, TelegramFake(bot_username=BOT) as telegram:
        proxy_port = free_port()
        late = {**discord_section(discord), "api_base": f"http://127.0.0.1:{proxy_port}/api/v10"}
        path = write_config(tmp_path, duration=0.2, poll_interval=0.05, discord=late,
                            telegram=telegram_section(telegram))  # fmt: skip
        async with running_bot(path, DISCORD_TOKEN=discord.token, TELEGRAM_TOKEN=telegram.token) as process:
            assert process.stderr is not None
            seen: list[str] = []
            while not seen or "can't reach Discord" not in seen[-1]:
                seen.append((await asyncio.wait_for(process.stderr.readline(), 30)).decode())
                assert seen[-1], "the bot exited"
            command = telegram.send_text(ANN.id, ANN, "/imagine a harbour while Discord is away",
                                         chat_type="private")  # fmt: skip
            await telegram.wait_until(lambda: any(m.keyboard for m in telegram.bot_messages(ANN.id)
                                                  if m.reply_to_message_id == command.message_id), within=30)
            assert not discord.sessions  # Telegram was served while Discord was still away
            async with RoundRobin([discord.base_url], port=proxy_port):  # Discord answers from now on
                connected = lambda: discord.commands.get(discord.guild_id) and discord.sessions  # noqa: E731
                await discord.wait_for(connected, 90)
                interaction = await discord.slash_command(discord.guild_id, discord.channel_id, discord.user,
                                                          "imagine", {"prompt": "a harbour after all"})
                await discord.wait_for(lambda: interaction.response_message_id and is_final(
                    discord.message(discord.channel_id, interaction.response_message_id)), 30)
                log = "".join(seen) + await stop(process)
    assert log.count("Traceback") == 0
    assert leaked(log, discord.token, telegram.token) == []
