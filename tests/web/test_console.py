"""The operator console: every chat, provider health, pause/resume through the same AdminService calls
as /admin (and the bot then refuses jobs for the paused provider), the live queue; operators only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.access import Caller
from bot.errors import ProviderPaused
from tests.web.conftest import ADA, BOB, GROUP, OTHER_GROUP, Web, csrf_of, serve


async def test_an_operator_sees_every_chat_and_the_providers(site: Web) -> None:
    await site.job(ADA, chat=GROUP)
    await site.job(BOB, chat=GROUP)
    await site.job(BOB, chat=OTHER_GROUP)
    operator = await site.signed_in(ADA, operator=True)
    html = await (await operator.get("/web/operator")).text()
    assert f'<a href="/web/chats/telegram:{GROUP}">telegram:{GROUP}</a></td><td>2</td>' in html
    assert f'<a href="/web/chats/telegram:{OTHER_GROUP}">telegram:{OTHER_GROUP}</a></td><td>1</td>' in html
    assert 'data-provider="local"' in html and "available" in html and 'id="pause-local"' in html
    assert 'id="nav-operator"' in html
    assert re.search(r"<td>0 / [1-9][0-9]* \(0\.0 %\)</td>", html), "no API call counted"
    chat = await operator.get(f"/web/chats/telegram:{OTHER_GROUP}")
    assert chat.status == 200


async def test_an_operator_pauses_a_provider_and_the_bot_refuses_jobs_until_resumed(site: Web) -> None:
    operator = await site.signed_in(ADA, operator=True)
    csrf = csrf_of(await (await operator.get("/web/operator")).text())
    paused = await operator.post("/web/operator/providers/local/pause", data={"csrf": csrf})
    assert paused.status == 200 and str(paused.url).endswith("done=local+paused")
    html = await paused.text()
    assert "paused by an admin" in html and 'id="resume-local"' in html
    assert (await (await operator.get("/web/operator/queue")).json())["local"]["held"] is True
    with pytest.raises(ProviderPaused, match="paused by an admin"):
        await site.wired.service.imagine(Caller(BOB, scope=GROUP), "a fox")

    resumed = await operator.post("/web/operator/providers/local/resume", data={"csrf": csrf})
    assert resumed.status == 200 and "available" in await resumed.text()
    await site.job(BOB, chat=GROUP)


async def test_the_live_queue_shows_the_oldest_waiting_jobs(site: Web) -> None:
    first = await site.wired.service.imagine(Caller(BOB, scope=GROUP), "a queued fox")
    second = await site.wired.service.imagine(Caller(ADA, scope=GROUP), "a queued owl")
    operator = await site.signed_in(ADA, operator=True)
    queue = (await (await operator.get("/web/operator/queue")).json())["local"]
    assert queue["queued"] == 2 and [j["id"] for j in queue["oldest"]] == [first.id, second.id]
    assert queue["oldest"][0]["owner"] == "Bob" and queue["oldest"][0]["kind"] == "imagine"
    html = await (await operator.get("/web/operator")).text()
    assert f'<a href="/web/jobs/{first.id}">{first.id}</a> imagine by Bob' in html

    await site.wired.settle(first.id, second.id)
    queue = (await (await operator.get("/web/operator/queue")).json())["local"]
    assert queue["queued"] == 0 and queue["oldest"] == []


async def test_members_and_chat_admins_get_not_found(site: Web) -> None:
    member = await site.signed_in(BOB)
    admin = await site.signed_in(ADA, scope=GROUP, admin=True)
    for client in (member, admin):
        for path in ("/web/operator", "/web/operator/queue"):
            assert (await client.get(path)).status == 404, path
        csrf = csrf_of(await (await client.get("/web/")).text())
        refused = await client.post("/web/operator/providers/local/pause", data={"csrf": csrf})
        assert refused.status == 404
    assert not site.wired.app.pool.held("local")


async def test_pausing_without_the_csrf_token_is_refused(site: Web) -> None:
    operator = await site.signed_in(ADA, operator=True)
    assert (await operator.post("/web/operator/providers/local/pause", data={})).status == 403
    assert (await operator.post("/web/operator/providers/local/pause", data={"csrf": "0" * 64})).status == 403
    assert not site.wired.app.pool.held("local")
    unknown = csrf_of(await (await operator.get("/web/operator")).text())
    assert (await operator.post("/web/operator/providers/nope/pause", data={"csrf": unknown})).status == 404


async def test_the_console_shows_a_providers_api_error_rate(tmp_path: Path) -> None:
    faults = {"submit_error": "unavailable", "submit_error_count": 1, "error_retry_after": 0.0}
    async with serve(tmp_path, local_settings=faults) as site:
        job = await site.wired.service.imagine(Caller(BOB, scope=GROUP), "a fox")
        (done,) = await site.wired.settle(job.id)
        assert done.state.value == "succeeded"  # retried after the provider's 503
        operator = await site.signed_in(ADA, operator=True)
        html = await (await operator.get("/web/operator")).text()
        match = re.search(r"<td>1 / ([0-9]+) \(([0-9.]+) %\)</td>", html)
        assert match, html
        calls = int(match[1])
        assert calls >= 2 and float(match[2]) == round(100 / calls, 1)
