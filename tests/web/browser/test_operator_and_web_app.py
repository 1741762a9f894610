"""In a real browser: an operator pauses a provider in the console and the bot refuses the next job in
the chat with the paused message; inside Telegram (a Web App with its initData, injected here as
telegram-web-app.js would set it) the pages sign the person in and land on the gallery."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser, expect

from bot.domain import Owner
from bot.web.auth import Grant
from tests.web.browser.conftest import browsing, shot
from tests.web.on_telegram import ANN, BOB, GROUP, telegram_bot

pytestmark = pytest.mark.asyncio(loop_scope="module")


def signed_init_data(token: str, auth_date: float, user: dict[str, object]) -> str:
    fields = {"auth_date": str(int(auth_date)), "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
              "user": json.dumps(user, separators=(",", ":"))}  # fmt: skip
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    return urlencode({**fields, "hash": hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()})


async def test_an_operator_pauses_a_provider_and_the_bot_refuses_the_next_job(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with telegram_bot(tmp_path, monkeypatch) as (fake, bot), browsing(browser, tmp_path) as (_, page):
        sent = fake.send_text(GROUP, BOB, "/imagine a harbour at dawn")
        await bot.finished(GROUP, (await bot.reply(GROUP, sent.message_id)).message_id)
        assert bot.app.web is not None
        link = bot.app.web.auth.link(Grant(Owner(platform="cli", user_id="op", name="Operator"),
                                           operator=True))  # as `imagine-bot web-link --operator` prints
        await page.goto(link)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("link", name="Operator").click()
        await expect(page.get_by_role("heading", name="Operator console")).to_be_visible()
        await expect(page.get_by_role("link", name=f"telegram:{GROUP}")).to_be_visible()
        row = page.locator('tr[data-provider="local"]')
        await expect(row.locator(".state")).to_have_text("available")
        await shot(page, "operator")
        await row.get_by_role("button", name="Pause").click()
        await expect(page.locator("#done")).to_have_text("local paused")
        await expect(row.locator(".state")).to_have_text("paused by an admin")

        sent = fake.send_text(GROUP, BOB, "/imagine a cat")
        refusal = await bot.reply(GROUP, sent.message_id)
        assert "paused by an admin" in (refusal.text or refusal.caption or ""), refusal

        await row.get_by_role("button", name="Resume").click()
        await expect(row.locator(".state")).to_have_text("available")


async def test_inside_telegram_the_web_app_signs_in_by_init_data(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with telegram_bot(tmp_path, monkeypatch) as (fake, bot), browsing(browser, tmp_path) as (ctx, page):
        assert bot.app.web is not None
        user = {"id": ANN.id, "first_name": ANN.first_name, "language_code": "en"}
        data = signed_init_data(fake.token, bot.app.web.clock(), user)
        await page.add_init_script(f"window.Telegram = {{WebApp: {{initData: {json.dumps(data)}}}}};")
        await page.goto(bot.app.web.auth.public_url + "/web/telegram-app")
        await expect(page.get_by_role("heading", name="Your gallery")).to_be_visible()
        await expect(page.locator(".who")).to_have_text(ANN.first_name)
        assert any(c["name"] == "imagine_session" and c["httpOnly"] for c in await ctx.cookies())


async def test_forged_init_data_leaves_the_web_app_signed_out(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with telegram_bot(tmp_path, monkeypatch) as (_, bot), browsing(browser, tmp_path) as (ctx, page):
        assert bot.app.web is not None
        user = {"id": ANN.id, "first_name": ANN.first_name}
        data = signed_init_data("999:another-bot", bot.app.web.clock(), user)
        await page.add_init_script(f"window.Telegram = {{WebApp: {{initData: {json.dumps(data)}}}}};")
        await page.goto(bot.app.web.auth.public_url + "/web/telegram-app")
        await expect(page.locator("#telegram-status")).to_contain_text("not valid")
        assert not any(c["name"] == "imagine_session" for c in await ctx.cookies())


async def test_the_web_app_also_reads_init_data_from_the_url_fragment(
    browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram's clients open a Web App with `#tgWebAppData=<initData>&tgWebAppVersion=…` (what
    telegram-web-app.js reads); the page works without that script too."""
    async with telegram_bot(tmp_path, monkeypatch) as (_, bot), browsing(browser, tmp_path) as (_ctx, page):
        assert bot.app.web is not None
        data = signed_init_data(bot.fake.token, bot.app.web.clock(), {"id": ANN.id, "first_name": "Ann"})
        fragment = urlencode({"tgWebAppData": data, "tgWebAppVersion": "9.1", "tgWebAppPlatform": "android"})
        await page.goto(f"{bot.app.web.auth.public_url}/web/telegram-app#{fragment}")
        await expect(page.get_by_role("heading", name="Your gallery")).to_be_visible()
