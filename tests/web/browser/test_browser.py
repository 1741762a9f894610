"""The pages in a real browser, against a bot on the fake Telegram with the local provider: sign in by
the link /web sends, browse the gallery to a job, copy its prompt; an admin changes a limit in the
chat's page and the bot refuses the next job because of it; a job's state goes live on the jobs page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from bot import i18n
from tests.fakes.telegram_api import TelegramFake
from tests.telegram_frontend.conftest import labels
from tests.web.browser.conftest import browsing, shot
from tests.web.on_telegram import ANN, BOB, GROUP, Bot, link_in, telegram_bot

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _link(fake: TelegramFake, bot: Bot, chat: int) -> str:
    """Ann sends /web in `chat`; the link the bot sends her privately."""
    before = len(fake.bot_messages(ANN.id))
    fake.send_text(chat, ANN, "/web")
    messages = await fake.wait_until(lambda: [m for m in fake.bot_messages(ANN.id)[before:]
                                              if "/web/login" in (m.text or "")])
    return link_in(messages[0])


async def _loaded(page: Page, image: Locator) -> None:
    """Wait until the image has loaded and decoded (a broken image has no natural width)."""
    await image.scroll_into_view_if_needed()
    handle = await image.element_handle()
    await page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=handle)


async def _sign_in(page: Page, link: str) -> None:
    await page.goto(link)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Your gallery")).to_be_visible()


async def test_sign_in_by_link_and_browse_the_gallery(browser: Browser, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    async with telegram_bot(tmp_path, monkeypatch) as (fake, bot), browsing(browser, tmp_path) as (ctx, page):
        sent = fake.send_text(ANN.id, ANN, '/imagine a lighthouse <script>alert("x")</script> --ar 3:2')
        await bot.finished(ANN.id, (await bot.reply(ANN.id, sent.message_id)).message_id)
        await _sign_in(page, await _link(fake, bot, ANN.id))
        cookie = next(c for c in await ctx.cookies() if c["name"] == "imagine_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        assert await page.evaluate("document.cookie") == ""  # not readable by scripts

        thumb = page.locator("ul.grid img").first
        await expect(thumb).to_have_attribute("loading", "lazy")
        await _loaded(page, thumb)
        await shot(page, "gallery")
        await thumb.click()
        await expect(page).to_have_url(re.compile(r"/web/jobs/[a-z0-9]+$"))
        prompt = page.locator("#prompt")
        await expect(prompt).to_contain_text('<script>alert("x")</script>')  # shown as text, never run
        full = page.locator("#main-image")
        await _loaded(page, full)
        await shot(page, "job")
        await page.get_by_role("button", name="Copy prompt").click()
        await expect(page.get_by_role("button", name="Copied")).to_be_visible()
        assert "a lighthouse" in await page.evaluate("navigator.clipboard.readText()")
        async with page.expect_download() as download:
            await page.get_by_role("link", name="Download").first.click()
        assert (await download.value).suggested_filename.endswith((".png", ".jpg"))


async def test_an_admin_limit_set_in_the_browser_refuses_the_next_job(browser: Browser, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    async with telegram_bot(tmp_path, monkeypatch) as (fake, bot), browsing(browser, tmp_path) as (_, page):
        fake.make_admin(GROUP, ANN)
        await _sign_in(page, await _link(fake, bot, GROUP))
        await page.get_by_role("link", name="This chat").click()
        await expect(page.get_by_role("heading", name="Limits")).to_be_visible()
        form = page.locator("#limit-form")
        await form.locator("select[name=key]").select_option("user_per_day")
        await form.locator("input[name=value]").fill("0")
        await form.get_by_role("button", name="Set limit").click()
        await expect(page.locator("#done")).to_have_text("user_per_day set to 0")
        await expect(page.locator("#limit-user_per_day")).to_have_text("0")
        await shot(page, "chat-admin")

        sent = fake.send_text(GROUP, BOB, "/imagine a cat")
        refusal = await bot.reply(GROUP, sent.message_id)
        assert "used 0 of 0" in (refusal.text or refusal.caption or ""), refusal
        assert await bot.app.service.recent(limit=5) == []  # no job was made


async def test_the_jobs_page_shows_a_job_finishing(browser: Browser, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async with (telegram_bot(tmp_path, monkeypatch, local={"duration": 3.0}) as (fake, bot),
                browsing(browser, tmp_path) as (_, page)):
        await _sign_in(page, await _link(fake, bot, ANN.id))
        sent = fake.send_text(ANN.id, ANN, "/imagine a slow sunrise")
        job = await bot.job(ANN.id, await bot.reply(ANN.id, sent.message_id))
        await page.goto(page.url.replace("/web/", "/web/jobs"))
        state = page.locator(f'tr[data-job="{job.id}"] .state')
        await expect(state).not_to_have_text(re.compile("succeeded"))
        await expect(state).to_have_text("succeeded", timeout=15_000)  # short polling, no reload


async def test_the_pages_speak_the_browsers_language_until_the_person_picks_one(
        browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A German browser gets German pages (the scripts' words too); once Ann picks Japanese in the
    bot's /settings, the pages follow her choice, whatever the browser says."""
    async with (telegram_bot(tmp_path, monkeypatch) as (fake, bot),
                browsing(browser, tmp_path, locale="de-DE") as (_, page)):
        sent = fake.send_text(ANN.id, ANN, "/imagine a lighthouse")
        await bot.finished(ANN.id, (await bot.reply(ANN.id, sent.message_id)).message_id)
        await page.goto(await _link(fake, bot, ANN.id))
        await page.get_by_role("button", name=_in("de", "Sign in")).click()
        await expect(page.get_by_role("heading", name=_in("de", "Your gallery"))).to_be_visible()
        assert await page.get_attribute("html", "lang") == "de"
        await expect(page.get_by_role("link", name=_in("de", "Usage"), exact=True)).to_be_visible()
        await page.locator("ul.grid a").first.click()
        await expect(page.locator("p.state")).to_have_text(_in("de", "succeeded"))
        await page.get_by_role("button", name=_in("de", "Copy prompt")).click()
        await expect(page.get_by_role("button", name=_in("de", "Copied"))).to_be_visible()

        command = fake.send_text(ANN.id, ANN, "/settings")
        settings = await bot.reply(ANN.id, command.message_id)
        fake.press(ANN.id, settings.message_id, ANN, text="🌐 Language: Auto (your app's language)")
        await bot.until(ANN.id, settings.message_id, lambda m: any("日本語" in row for row in labels(m)))
        fake.press(ANN.id, settings.message_id, ANN, text="日本語")
        ticked = i18n.translate("ja", "🌐 Language: {language}", language="日本語")
        await bot.until(ANN.id, settings.message_id, lambda m: [ticked] in labels(m))
        await page.goto(page.url.split("/web/")[0] + "/web/")
        await expect(page.get_by_role("heading", name=_in("ja", "Your gallery"))).to_be_visible()
        assert await page.get_attribute("html", "lang") == "ja"


def _in(locale: str, message: str) -> str:
    """`message` as the catalogue of `locale` has it (which the test first checks is a translation)."""
    translated = i18n.translate(locale, message)
    assert translated != message, f"{message!r} has no {locale} translation"
    return translated
