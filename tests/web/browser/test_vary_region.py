"""Vary (Region) in a real browser, against a bot on the fake Telegram with the local provider: an
upscale in the group carries a "Vary (Region)" link button (a plain URL button: groups can't have Web
App buttons); Ann, signed in, opens it, draws a rectangle with the mouse, submits, and the vary job
appears in the chat replying to the upscale's message and finishes with its result."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.web.browser.conftest import browsing, shot
from tests.web.browser.test_browser import _link, _loaded, _sign_in
from tests.web.on_telegram import ANN, GROUP, telegram_bot

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_draw_a_region_and_see_the_vary_job_reach_the_chat(browser: Browser, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    async with telegram_bot(tmp_path, monkeypatch) as (fake, bot), browsing(browser, tmp_path) as (_, page):
        sent = fake.send_text(GROUP, ANN, "/imagine a lighthouse on a cliff")
        grid = await bot.finished(GROUP, (await bot.reply(GROUP, sent.message_id)).message_id)
        fake.press(GROUP, grid.message_id, ANN, text="U1")
        upscale = await bot.finished(GROUP, (await bot.reply(GROUP, grid.message_id)).message_id)
        links = [url for row in upscale.keyboard for text, url in row if "Vary (Region)" in text]
        assert links and links[0] and links[0].endswith("/vary-region"), upscale.keyboard

        await _sign_in(page, await _link(fake, bot, GROUP))
        await page.goto(links[0])
        await _loaded(page, page.locator("#region-image"))
        canvas = page.locator("#region-canvas")
        box = await canvas.bounding_box()
        assert box and box["width"] > 50
        await page.mouse.move(box["x"] + 10, box["y"] + 10)
        await page.mouse.down()
        await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=8)
        await page.mouse.up()
        await shot(page, "vary-region")
        await page.get_by_role("button", name="Submit").click()
        await expect(page).to_have_url(re.compile(r"/web/jobs/[a-z0-9]+$"))
        job_id = page.url.rsplit("/", 1)[1]
        assert (await bot.app.service.get(job_id)).kind.value == "vary_region"

        vary = await bot.reply(GROUP, upscale.message_id)  # in the chat, replying to the upscale
        done = await bot.finished(GROUP, vary.message_id)
        assert (await bot.job(GROUP, done)).id == job_id and done.photo
        await expect(page.locator(f'p.state[data-job="{job_id}"]')).to_contain_text("succeeded",
                                                                                   timeout=15_000)
