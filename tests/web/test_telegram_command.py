"""/web on Telegram: the link always goes to the person's private chat, never into a group; a person
who never started the bot is told how; /web logout ends their sessions."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from bot import i18n
from bot.telegram_frontend.web_command import OFF
from tests.fakes.telegram_api import TelegramFake
from tests.telegram_frontend.conftest import BOT, TIME_SCALE, make_config, serving
from tests.web.on_telegram import ANN, BOB, GROUP, link_in, telegram_bot


async def _sign_in(link: str) -> tuple[aiohttp.ClientSession, int]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies of 127.0.0.1
    token = parse_qs(urlsplit(link).query)["t"][0]
    base = link.split("/web/")[0]
    async with session.post(f"{base}/web/login", data={"t": token}) as response:
        return session, response.status


async def test_web_in_a_private_chat_answers_with_a_link_that_signs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with telegram_bot(tmp_path, monkeypatch) as (fake, bot):
        sent = fake.send_text(ANN.id, ANN, "/web")
        reply = await bot.reply(ANN.id, sent.message_id)
        link = link_in(reply)
        assert fake.calls("sendMessage")[-1].get("link_preview_options") == {"is_disabled": True}
        browser, status = await _sign_in(link)
        async with browser:
            assert status == 200
            async with browser.get(link.split("/web/")[0] + "/web/") as page:
                assert page.status == 200 and "Ann" in await page.text()

            fake.send_text(ANN.id, ANN, "/web logout")
            await fake.wait_until(lambda: any("Signed out of 1" in (m.text or "")
                                              for m in fake.bot_messages(ANN.id)))
            async with browser.get(link.split("/web/")[0] + "/web/") as page:
                assert page.status == 401


async def test_web_in_a_group_sends_the_link_privately(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with telegram_bot(tmp_path, monkeypatch) as (fake, bot):
        fake.make_admin(GROUP, ANN)
        sent = fake.send_text(GROUP, ANN, "/web")
        notice = await bot.reply(GROUP, sent.message_id)
        assert "private chat" in (notice.text or "") and "/web/login" not in (notice.text or "")
        private = await fake.wait_until(lambda: [m for m in fake.bot_messages(ANN.id) if "/web/login" in
                                                 (m.text or "")])
        link = link_in(private[0])
        browser, status = await _sign_in(link)
        async with browser:
            assert status == 200
            async with browser.get(link.split("/web/")[0] + f"/web/chats/telegram:{GROUP}") as page:
                html = await page.text()
                assert page.status == 200 and "Usage by member" in html  # she administers the group

        sent = fake.send_text(GROUP, BOB, "/web")  # Bob never opened a private chat with the bot
        refusal = await bot.reply(GROUP, sent.message_id)
        assert "press Start" in (refusal.text or "") and "/web/login" not in (refusal.text or "")


async def test_web_is_listed_in_the_menu_when_the_pages_are_on(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    async with telegram_bot(tmp_path, monkeypatch) as (fake, _):
        await fake.wait_until(lambda: len(fake.commands) == 2 * len(i18n.LOCALES))  # a list per language
        assert all("web" in [c["command"] for c in listed] for listed in fake.commands.values())


async def test_web_says_when_the_pages_are_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    async with TelegramFake(bot_username=BOT, time_scale=TIME_SCALE) as fake:
        fake.open_chat(ANN.id, "private", user=ANN)
        async with serving(make_config(tmp_path, fake), fake) as bot:
            await fake.wait_until(lambda: len(fake.commands) == 2 * len(i18n.LOCALES))  # a list per language
            assert all("web" not in [c["command"] for c in listed] for listed in fake.commands.values())
            sent = fake.send_text(ANN.id, ANN, "/web")
            assert (await bot.reply(ANN.id, sent.message_id)).text == OFF


async def test_over_https_the_link_comes_with_a_web_app_button_in_the_private_chat_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with telegram_bot(tmp_path, monkeypatch, public_url="https://bot.example.com") as (fake, bot):
        sent = fake.send_text(ANN.id, ANN, "/web")
        reply = await bot.reply(ANN.id, sent.message_id)
        assert reply.reply_markup == {"inline_keyboard": [[{
            "text": "Open the web pages", "web_app": {"url": "https://bot.example.com/web/telegram-app"}}]]}
        assert "https://bot.example.com/web/login?t=" in (reply.text or "")

        fake.make_admin(GROUP, ANN)
        sent = fake.send_text(GROUP, ANN, "/web")
        notice = await bot.reply(GROUP, sent.message_id)
        assert notice.reply_markup is None  # a Web App button is for private chats only
        private = await fake.wait_until(lambda: [m for m in fake.bot_messages(ANN.id) if "(with the pages of"
                                                 in (m.text or "")])
        assert private[0].reply_markup == reply.reply_markup


async def test_over_plain_http_there_is_no_web_app_button(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    async with telegram_bot(tmp_path, monkeypatch) as (fake, bot):  # Telegram takes HTTPS Web Apps only
        sent = fake.send_text(ANN.id, ANN, "/web")
        assert (await bot.reply(ANN.id, sent.message_id)).reply_markup is None
