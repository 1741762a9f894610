"""The web pages served by the real aiohttp application (the webhooks server's, with the pages
mounted as `run` mounts them) on loopback, over the core built by the composition root (local
provider, the test's clock), driven by aiohttp's HTTP client: one client (one cookie jar) per person."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.access import Caller
from bot.config import AppConfig, MediaConfig, TelegramConfig, WebConfig, WebhooksConfig
from bot.domain import Job, Owner, Placement
from bot.metrics import add_routes
from bot.web.auth import Grant
from bot.web.site import WebParts, mount
from tests.core.conftest import local
from tests.harness import FakeClock, Wired, wire

ADA = Owner(platform="telegram", user_id="101", name="Ada")
BOB = Owner(platform="telegram", user_id="202", name="Bob")
CAROL = Owner(platform="telegram", user_id="303", name="Carol")
GROUP = "-100777"  # Ada's and Bob's group; Carol's is another
OTHER_GROUP = "-100888"


def config(tmp_path: Path, database: Path | str | None = None, public_url: str = "http://127.0.0.1:1",
           telegram_token: str = "", local_settings: dict[str, Any] | None = None, **web: Any) -> AppConfig:
    return AppConfig(
        database=database or tmp_path / "jobs.sqlite3", default_provider="local",
        providers=[local(**(local_settings or {}))],
        media=MediaConfig(cache_dir=tmp_path / "media"),
        webhooks=WebhooksConfig(listen="127.0.0.1:0", public_url=public_url),
        web=WebConfig(enabled=True, **web),
        telegram=TelegramConfig(token=SecretStr(telegram_token)) if telegram_token else None,
    )  # fmt: skip


@dataclass
class Web:
    wired: Wired
    server: TestServer
    clients: list[TestClient] = field(default_factory=list)

    @property
    def parts(self) -> WebParts:
        assert self.wired.app.web is not None
        return self.wired.app.web

    async def client(self) -> TestClient:
        """A browser of its own (its own cookies)."""
        client = TestClient(self.server)
        await client.start_server()
        self.clients.append(client)
        return client

    def link(self, owner: Owner, scope: str | None = None, admin: bool = False,
             operator: bool = False) -> str:
        return self.parts.auth.link(Grant(owner, scope, None, admin, operator))

    async def signed_in(self, owner: Owner, scope: str | None = None, admin: bool = False,
                        operator: bool = False) -> TestClient:
        client = await self.client()
        response = await sign_in(client, self.link(owner, scope, admin, operator))
        assert response.status == 200, await response.text()
        return client

    async def job(self, owner: Owner, prompt: str = "a lighthouse", chat: str | None = None) -> Job:
        """A finished imagine by `owner`, asked in group `chat` (None: their private chat)."""
        placement = Placement(platform="telegram", chat_id=chat or owner.user_id, message_id="1")
        job = await self.wired.service.imagine(Caller(owner, scope=chat), prompt, placement=placement)
        (done,) = await self.wired.settle(job.id)
        return done


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["t"][0]


async def sign_in(client: TestClient, link: str) -> Any:
    """Open the link and press its button, as a person does."""
    page = await client.get(f"/web/login?t={token_of(link)}")
    assert page.status == 200
    return await client.post("/web/login", data={"t": token_of(link)})


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF field on the page"
    return match[1]


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, database: Path | str | None = None, public_url: str = "http://127.0.0.1:1",
                telegram_token: str = "", local_settings: dict[str, Any] | None = None,
                **web_settings: Any) -> AsyncIterator[Web]:
    async with wire(config(tmp_path, database, public_url, telegram_token, local_settings, **web_settings),
                    FakeClock()) as wired:
        app = wired.app
        assert app.webhooks is not None and app.web is not None
        application: web.Application = app.webhooks.build_application()
        add_routes(application, app.metrics, app.health, app.store, app.pool.last_success)
        mount(application, app.web)
        server = TestServer(application, host="127.0.0.1")
        await server.start_server()
        site = Web(wired, server)
        try:
            yield site
        finally:
            for client in site.clients:
                await client.close()
            await server.close()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Web]:
    async with serve(tmp_path) as served:
        yield served
