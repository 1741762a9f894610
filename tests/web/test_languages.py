"""The pages in their reader's language: the person's own choice (/settings language), then their
chat's (set by its admins), then the browser's Accept-Language, then English; refusals too."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from markupsafe import escape

from bot import i18n
from bot.access import Caller
from bot.domain import JobState
from bot.presentation import state_name
from tests.web.conftest import ADA, GROUP, Web, csrf_of, sign_in, token_of


def _in(locale: str, message: str, **params: Any) -> str:
    """`message` as the catalogue of `locale` has it (first checked to be a translation)."""
    translated = i18n.translate(locale, message, **params)
    assert translated != i18n.translate("en", message, **params), f"{message!r} has no {locale} translation"
    return str(escape(translated))  # as the page has it


async def _page(client: TestClient, path: str, language: str | None = None) -> tuple[int, str]:
    response = await client.get(path, headers={"Accept-Language": language} if language else {})
    return response.status, await response.text()


async def test_a_page_is_in_the_browsers_language_and_in_english_when_it_speaks_none(site: Web) -> None:
    client = await site.client()
    status, html = await _page(client, "/web/", "fr-CA,fr;q=0.9,en;q=0.5")
    assert status == 401 and '<html lang="fr">' in html
    assert _in("fr", "You are not signed in") in html and "You are not signed in" not in html
    status, html = await _page(client, "/web/", "en;q=0.5, pt-BR")  # the higher q wins, not the order
    assert '<html lang="pt-BR">' in html and _in("pt_BR", "You are not signed in") in html
    for unknown in ("tlh, xx-YY;q=0.8", "ru;q=0", ";;;q=abc, *", None):
        status, html = await _page(client, "/web/", unknown)
        assert status == 401 and '<html lang="en">' in html and "You are not signed in" in html, unknown


async def test_the_persons_choice_beats_the_chats_which_beats_the_browsers(site: Web) -> None:
    job = await site.job(ADA, chat=GROUP)
    client = await site.signed_in(ADA, scope=GROUP, admin=True)
    _, html = await _page(client, "/web/", "de")
    assert _in("de", "Your gallery") in html and _in("de", "Sign out") in html and '<html lang="de">' in html

    await site.wired.app.admin.set_language(Caller(ADA, scope=GROUP, chat_admin=True), "uk")
    _, html = await _page(client, f"/web/jobs/{job.id}", "de")
    assert '<html lang="uk">' in html and _in("uk", "Job {job}", job=job.id) in html
    with i18n.use("uk"):
        assert f">{state_name(JobState.SUCCEEDED)}<" in html.replace("</p>", "<")

    await site.wired.service.set_setting(ADA, "language", "ja")
    _, html = await _page(client, "/web/usage", "de")
    assert '<html lang="ja">' in html and _in("ja", "Your usage") in html
    states = await (await client.get(f"/web/jobs/state?ids={job.id}")).json()
    assert states[job.id]["state_text"] == _in("ja", "succeeded")
    _, html = await _page(client, f"/web/chats/telegram:{GROUP}", "de")  # the chat's page: her choice too
    assert _in("ja", "Limits") in html and _in("ja", "Set limit") in html

    await site.wired.service.set_setting(ADA, "language", "auto")  # back to the chat's
    _, html = await _page(client, "/web/", "de")
    assert _in("uk", "Your gallery") in html


async def test_refusals_are_in_the_readers_language(site: Web) -> None:
    link = site.link(ADA)
    client = await site.client()
    assert (await sign_in(client, link)).status == 200
    other = await site.client()  # the same link again, from a Russian browser
    response = await other.post("/web/login", data={"t": token_of(link)}, headers={"Accept-Language": "ru"})
    html = await response.text()
    assert response.status == 403 and _in("ru", "Sign-in refused") in html
    assert _in("ru", "This sign-in link was used already. Ask the bot for a new one with /web.") in html

    _, page = await _page(client, "/web/", "ko")
    response = await client.post("/web/logout", data={"csrf": csrf_of(page)[::-1]},
                                 headers={"Accept-Language": "ko"})  # fmt: skip
    html = await response.text()
    assert response.status == 403 and _in("ko", "This form has expired") in html
    _, html = await _page(client, "/web/jobs/nope", "tr")
    assert _in("tr", "There is nothing here for you.") in html
