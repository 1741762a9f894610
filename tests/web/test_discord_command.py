"""/web on Discord: an ephemeral answer (only the asker sees the link) that signs in, with the
server's pages; /web action:logout ends the sessions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from bot.config import WebConfig, WebhooksConfig
from tests.discord_frontend.conftest import Discord, make_config, run_bot
from tests.fakes.discord_api import DiscordFake
from tests.net import free_port


@pytest.fixture
async def fake() -> AsyncIterator[DiscordFake]:
    server = DiscordFake(identify_interval=0.0)
    server.add_user("bob", "Bob")
    async with server:
        yield server


@pytest.fixture
async def d(fake: DiscordFake, tmp_path: Path) -> AsyncIterator[Discord]:
    port = free_port()
    config = make_config(fake, tmp_path / "bot.sqlite3").model_copy(update={
        "webhooks": WebhooksConfig(listen=f"127.0.0.1:{port}", public_url=f"http://127.0.0.1:{port}"),
        "web": WebConfig(enabled=True)})  # fmt: skip
    async with run_bot(config) as bot:
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
        yield Discord(fake, config, bot)
    assert fake.violations == [], fake.violations


async def test_web_answers_only_the_asker_with_a_link_that_signs_in(d: Discord) -> None:
    assert "web" in [c["name"] for c in d.fake.commands[d.fake.guild_id]]
    await d.command("web")
    (text,) = await d.told(lambda t: "/web/login" in t)
    assert d.public() == []
    link = re.search(r"<(http://[^>]+)>", text)
    assert link
    base, token = link[1].split("/web/")[0], parse_qs(urlsplit(link[1]).query)["t"][0]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(f"{base}/web/login", data={"t": token}) as page:
            assert page.status == 200
        async with browser.get(f"{base}/web/chats/discord:{d.fake.guild_id}") as page:
            assert page.status == 200  # the server's pages (as a member: no admin forms)
        await d.command("web", {"action": "logout"})
        await d.told(lambda t: "Signed out of 1" in t)
        async with browser.get(f"{base}/web/") as page:
            assert page.status == 401
