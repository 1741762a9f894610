"""Sign-in inside Telegram: the Web App page posts Telegram's `initData`, which the server checks as
Telegram documents it (HMAC-SHA256 with a key derived from the bot token, every field but `hash` in
the data-check string, `auth_date` not too old) before opening a member session for that user."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.web.conftest import Web, serve

TOKEN = "123456:AAtest-web-app-token"
ANN = {"id": 4242, "first_name": "Ann", "last_name": "Lee", "username": "ann", "language_code": "en"}


def init_data(token: str, auth_date: float, user: dict[str, Any] | None = None, **extra: str) -> str:
    """initData as Telegram signs it for the bot with `token`."""
    fields = {"query_id": "AAHdF6IQAAAAAN0XohDhrOrc", "auth_date": str(int(auth_date)),
              "user": json.dumps(user or ANN, separators=(",", ":")), **extra}  # fmt: skip
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)


@pytest.fixture
async def app_site(tmp_path: Path) -> AsyncIterator[Web]:
    async with serve(tmp_path, telegram_token=TOKEN, init_data_max_age=3600) as served:
        yield served


async def test_valid_init_data_opens_a_member_session_for_that_telegram_user(app_site: Web) -> None:
    client = await app_site.client()
    page = await client.get("/web/telegram-app")
    assert page.status == 200 and "/web/static/telegram-app.js" in await page.text()
    signed = init_data(TOKEN, app_site.parts.clock())
    answer = await client.post("/web/telegram-app", data={"init_data": signed})
    assert answer.status == 200 and await answer.json() == {"ok": True, "next": "/web/"}
    cookie = answer.cookies["imagine_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/web"
    gallery = await client.get("/web/")
    assert gallery.status == 200 and "Ann Lee" in await gallery.text()
    (session,) = await app_site.parts.store.sessions(app_site.parts.clock())
    assert (session.platform, session.user_id, session.name) == ("telegram", "4242", "Ann Lee")
    assert session.scope is None and not session.chat_admin and not session.operator
    assert (await client.get("/web/operator")).status == 404


async def _refused(site: Web, data: str) -> str:
    client = await site.client()
    answer = await client.post("/web/telegram-app", data={"init_data": data})
    assert answer.status == 403
    assert "imagine_session" not in answer.cookies
    assert (await client.get("/web/")).status == 401
    assert await site.parts.store.sessions(site.parts.clock()) == []
    return str((await answer.json())["error"])


async def test_a_forged_hash_is_refused(app_site: Web) -> None:
    now = app_site.parts.clock()
    genuine = init_data(TOKEN, now)
    as_someone_else = genuine.replace("%22id%22%3A4242", "%22id%22%3A1")
    assert as_someone_else != genuine
    assert "not valid" in await _refused(app_site, as_someone_else)
    assert "not valid" in await _refused(app_site, genuine[: genuine.index("hash=")] + "hash=" + "0" * 64)
    assert "not valid" in await _refused(app_site, genuine.replace("&hash=", "&nohash="))
    assert "not valid" in await _refused(app_site, "")


async def test_init_data_signed_with_another_bots_token_is_refused(app_site: Web) -> None:
    other = init_data("654321:AAanother-bot", app_site.parts.clock())
    assert "not valid" in await _refused(app_site, other)


async def test_init_data_older_than_the_max_age_is_refused(app_site: Web) -> None:
    stale = init_data(TOKEN, app_site.parts.clock() - 3601)
    assert "expired" in await _refused(app_site, stale)
    client = await app_site.client()
    fresh = init_data(TOKEN, app_site.parts.clock() - 3500)
    assert (await client.post("/web/telegram-app", data={"init_data": fresh})).status == 200


async def test_without_a_telegram_bot_the_web_app_signs_nobody_in(site: Web) -> None:
    assert "not available" in await _refused(site, init_data(TOKEN, site.parts.clock()))
