"""Sign-in by one-time link: a good link opens a session (an HttpOnly, SameSite=Lax cookie); a
forged, expired or reused link is refused, also after a restart; sessions end when revoked."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import parse_config
from bot.errors import ConfigError
from bot.web.auth import COOKIE
from tests.web.conftest import ADA, Web, csrf_of, serve, sign_in, token_of


async def test_a_link_signs_in_once_with_an_httponly_lax_cookie(site: Web) -> None:
    client = await site.client()
    link = site.link(ADA)
    page = await client.get(f"/web/login?t={token_of(link)}")
    assert page.status == 200 and "Sign in" in await page.text()
    assert page.headers["Referrer-Policy"] == "same-origin"  # the token in this URL goes nowhere else
    response = await client.post("/web/login", data={"t": token_of(link)}, allow_redirects=False)
    assert response.status == 303
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert cookie["path"] == "/web"
    gallery = await client.get("/web/")
    assert gallery.status == 200 and "Your gallery" in await gallery.text()

    again = await (await site.client()).post("/web/login", data={"t": token_of(link)})
    assert again.status == 403 and "used already" in await again.text()


async def test_opening_the_link_page_does_not_use_it(site: Web) -> None:
    """Chat apps fetch links to preview them: that GET must leave the link usable."""
    link = site.link(ADA)
    previewer = await site.client()
    for _ in range(2):
        assert (await previewer.get(f"/web/login?t={token_of(link)}")).status == 200
    assert (await sign_in(await site.client(), link)).status == 200


async def test_a_forged_or_mangled_link_is_refused(site: Web) -> None:
    token = token_of(site.link(ADA))
    client = await site.client()
    for forged in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "e30.abc", "", "x" * 80):
        response = await client.post("/web/login", data={"t": forged})
        assert response.status == 403 and "not valid" in await response.text()
    assert COOKIE not in client.session.cookie_jar.filter_cookies(client.make_url("/web/"))
    assert (await client.get("/web/")).status == 401


async def test_a_link_signed_with_another_secret_is_refused(tmp_path: Path) -> None:
    async with serve(tmp_path / "a", secret="a" * 40) as first:
        link = first.link(ADA)
    async with serve(tmp_path / "b", secret="b" * 40) as second:
        response = await (await second.client()).post("/web/login", data={"t": token_of(link)})
        assert response.status == 403 and "not valid" in await response.text()


async def test_an_expired_link_is_refused(site: Web) -> None:
    link = site.link(ADA)
    site.wired.clock.advance(601)  # web.link_expiry: 600 s
    response = await (await site.client()).post("/web/login", data={"t": token_of(link)})
    assert response.status == 403 and "expired" in await response.text()


async def test_a_used_link_stays_used_after_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "shared.sqlite3"
    async with serve(tmp_path, database) as first:
        link = first.link(ADA)
        assert (await sign_in(await first.client(), link)).status == 200
    async with serve(tmp_path, database) as restarted:  # the same stored secret: the link verifies
        response = await (await restarted.client()).post("/web/login", data={"t": token_of(link)})
        assert response.status == 403 and "used already" in await response.text()
        fresh = restarted.link(ADA)
        assert (await sign_in(await restarted.client(), fresh)).status == 200


async def test_sessions_expire_and_can_be_revoked(site: Web) -> None:
    client = await site.signed_in(ADA)
    assert (await client.get("/web/")).status == 200
    assert await site.parts.auth.revoke_user(ADA) == 1  # what /web logout does
    assert (await client.get("/web/")).status == 401
    client = await site.signed_in(ADA)
    site.wired.clock.advance(7 * 86400 + 1)  # web.session_lifetime
    assert (await client.get("/web/")).status == 401


async def test_signing_out_ends_the_session(site: Web) -> None:
    client = await site.signed_in(ADA)
    html = await (await client.get("/web/")).text()
    response = await client.post("/web/logout", data={"csrf": csrf_of(html)})
    assert response.status == 200 and "Signed out" in await response.text()
    assert (await client.get("/web/")).status == 401


def test_web_needs_a_webhooks_section() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config({"web": {"enabled": True}}, {})
    assert refused.value.problems == ["web.enabled: needs a webhooks section (the pages are served on "
                                      "webhooks.listen and linked at webhooks.public_url)"]
    assert not parse_config({"web": {"enabled": False}}, {}).web_enabled


async def test_the_cookie_is_secure_when_the_pages_are_public_over_https(tmp_path: Path) -> None:
    async with serve(tmp_path, public_url="https://bot.example.com") as site:
        client = await site.client()
        token = token_of(site.link(ADA))
        response = await client.post("/web/login", data={"t": token}, allow_redirects=False)
        cookie = response.cookies[COOKIE]
        assert response.status == 303 and cookie["secure"] is True and cookie["httponly"] is True
