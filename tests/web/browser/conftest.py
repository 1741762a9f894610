"""Playwright driving Debian's Chromium (/usr/bin/chromium, never a downloaded browser): one browser
per module, a fresh context (cookies) per test, a screenshot under the test's tmp_path on failure."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 (once per module, before the browser starts)
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        await launched.close()


@contextlib.asynccontextmanager
async def browsing(browser: Browser, tmp_path: Path,
                   locale: str | None = None) -> AsyncIterator[tuple[BrowserContext, Page]]:
    """A new browser context and page (`locale`: the browser's language, sent as Accept-Language); on
    failure a full-page screenshot goes to tmp_path/failure.png."""
    context = await browser.new_context(permissions=["clipboard-read", "clipboard-write"], locale=locale)
    context.set_default_timeout(10_000)
    page = await context.new_page()
    try:
        yield context, page
    except BaseException:
        with contextlib.suppress(Exception):
            await page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
        raise
    finally:
        await context.close()


async def shot(page: Page, name: str) -> None:
    """With IMAGINE_BOT_SCREENSHOTS=DIR, save the page as DIR/<name>.png (the README's pictures are
    made so: `IMAGINE_BOT_SCREENSHOTS=docs/web .venv/bin/pytest tests/web/browser`)."""
    folder = os.environ.get("IMAGINE_BOT_SCREENSHOTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        await page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)
