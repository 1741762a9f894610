"""The member pages and a chat's pages over HTTP, and the security rules: nobody sees another
member's private jobs or another chat's by changing an id; POSTs without the CSRF token are refused;
prompts render as text; /metrics is never part of the pages."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from bot.access import Caller
from bot.errors import NotAllowed
from bot.quota import LIMIT_KEYS
from tests.web.conftest import ADA, BOB, CAROL, GROUP, OTHER_GROUP, Web, csrf_of


async def test_the_gallery_shows_a_members_images_lazily_and_serves_them_from_the_cache(site: Web) -> None:
    job = await site.job(ADA, "a red fox --ar 3:2")
    client = await site.signed_in(ADA)
    html = await (await client.get("/web/")).text()
    assert f'src="/web/jobs/{job.id}/thumb" loading="lazy"' in html
    thumb = await client.get(f"/web/jobs/{job.id}/thumb")
    assert thumb.status == 200 and thumb.content_type == "image/jpeg"
    with Image.open(io.BytesIO(await thumb.read())) as image:
        assert max(image.size) <= 384
    assert site.parts.thumbs.path(job.id).exists()
    again = await client.get(f"/web/jobs/{job.id}/thumb")
    assert again.status == 200 and site.parts.thumbs.hits == 1 and site.parts.thumbs.misses == 1

    page = await (await client.get(f"/web/jobs/{job.id}")).text()
    assert "a red fox --ar 3:2" in page and "Copy prompt" in page and "aspect_ratio" in page
    full = await client.get(f"/web/jobs/{job.id}/image/0")
    assert full.status == 200 and full.content_type.startswith("image/")
    assert "Location" not in full.headers  # served, never a redirect to the provider
    download = await client.get(f"/web/jobs/{job.id}/image/1?download=1")
    assert download.status == 200 and "attachment" in download.headers["Content-Disposition"]


async def test_a_job_page_shows_its_upscales(site: Web) -> None:
    job = await site.job(ADA)
    upscale, _ = await site.wired.service.act(Caller(ADA), job.id, "upscale", 2)
    await site.wired.settle(upscale.id)
    client = await site.signed_in(ADA)
    page = await (await client.get(f"/web/jobs/{job.id}")).text()
    assert f"/web/jobs/{upscale.id}/thumb" in page and "U2" in page


async def test_jobs_page_and_live_state(site: Web) -> None:
    job = await site.job(ADA)
    client = await site.signed_in(ADA)
    html = await (await client.get("/web/jobs")).text()
    assert f'data-job="{job.id}"' in html and "succeeded" in html
    states = await (await client.get(f"/web/jobs/state?ids={job.id},nope")).json()
    assert states == {job.id: {"state": "succeeded", "state_text": "succeeded", "progress": 100,
                               "terminal": True, "error": None}}


async def test_usage_shows_what_is_left(site: Web) -> None:
    await site.wired.app.admin.set_limit(Caller(ADA, operator=True),
                                         "user_per_day", "5")
    await site.job(ADA)
    client = await site.signed_in(ADA)
    html = await (await client.get("/web/usage")).text()
    assert re.search(r'You, this day</td><td>1</td><td>5</td><td class="left">4<', html), html


async def test_a_member_cannot_see_another_members_private_jobs(site: Web) -> None:
    bobs = await site.job(BOB, "bob's secret")
    ada = await site.signed_in(ADA)
    for path in (f"/web/jobs/{bobs.id}", f"/web/jobs/{bobs.id}/thumb", f"/web/jobs/{bobs.id}/image/0",
                 f"/web/jobs/{bobs.id}/image/1?download=1"):
        response = await ada.get(path)
        assert response.status == 404, path
        assert "bob's secret" not in await response.text()
    assert await (await ada.get(f"/web/jobs/state?ids={bobs.id}")).json() == {}
    assert bobs.id not in await (await ada.get("/web/")).text()
    bob = await site.signed_in(BOB)
    assert (await bob.get(f"/web/jobs/{bobs.id}")).status == 200


async def test_a_member_cannot_see_another_chats_gallery_or_jobs(site: Web) -> None:
    ours = await site.job(BOB, "in our group", chat=GROUP)
    theirs = await site.job(CAROL, "in their group", chat=OTHER_GROUP)
    ada = await site.signed_in(ADA, scope=GROUP)
    page = await ada.get(f"/web/chats/telegram:{GROUP}")
    html = await page.text()
    assert page.status == 200 and ours.id in html and theirs.id not in html
    assert (await ada.get(f"/web/jobs/{ours.id}")).status == 200  # a job of her group: shown there
    for path in (f"/web/chats/telegram:{OTHER_GROUP}", f"/web/chats/discord:{GROUP}",
                 f"/web/jobs/{theirs.id}", f"/web/jobs/{theirs.id}/thumb"):
        response = await ada.get(path)
        assert response.status == 404, path
        assert "in their group" not in await response.text()
    private = await site.signed_in(ADA)  # a link from her private chat opens no chat
    assert (await private.get(f"/web/chats/telegram:{GROUP}")).status == 404


async def test_a_prompt_with_a_script_renders_as_text(site: Web) -> None:
    job = await site.job(ADA, '<script>alert("x")</script> <img src=x onerror=alert(1)> a cat')
    client = await site.signed_in(ADA, scope=None)
    for path in ("/web/", "/web/jobs", f"/web/jobs/{job.id}"):
        html = await (await client.get(path)).text()
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, path
    response = await client.get("/web/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_posts_without_the_csrf_token_are_refused(site: Web) -> None:
    admin = await site.signed_in(ADA, scope=GROUP, admin=True)
    chat = f"/web/chats/telegram:{GROUP}"
    html = await (await admin.get(chat)).text()
    token = csrf_of(html)
    without = {"key": "user_per_day", "value": "0"}
    for data in (without, {**without, "csrf": "0" * 64}):
        refused = await admin.post(f"{chat}/limits", data=data)
        assert refused.status == 403
    other = await site.signed_in(BOB, scope=GROUP, admin=True)  # another session's token is no good either
    assert (await other.post(f"{chat}/limits", data={"key": "user_per_day", "value": "0", "csrf": token})
            ).status == 403
    assert (await admin.post("/web/logout", data={})).status == 403
    limits = await site.wired.app.admin.limits(Caller(ADA, scope=GROUP, chat_admin=True))
    assert limits["user_per_day"] is None  # nothing changed
    done = await admin.post(f"{chat}/limits", data={"key": "user_per_day", "value": "0", "csrf": token})
    assert done.status == 200 and "user_per_day set to 0" in await done.text()


async def test_an_admin_manages_limits_and_bans_of_their_chat_only(site: Web) -> None:
    await site.job(BOB, "bob's picture", chat=GROUP)
    admin = await site.signed_in(ADA, scope=GROUP, admin=True)
    chat = f"/web/chats/telegram:{GROUP}"
    html = await (await admin.get(chat)).text()
    assert "Usage by member" in html and "telegram:202" in html and "Providers" in html
    assert all(key in html for key in LIMIT_KEYS)
    token = csrf_of(html)
    await admin.post(f"{chat}/bans", data={"user": "telegram:202", "reason": "spam", "csrf": token})
    assert "telegram:202</code> spam" in await (await admin.get(chat)).text()
    with pytest.raises(NotAllowed):
        await site.wired.service.imagine(Caller(BOB, scope=GROUP), "again")
    member = await site.signed_in(BOB, scope=GROUP)  # members see the chat, not its admin forms
    page = await (await member.get(chat)).text()
    assert "bob&#39;s picture" in page and "Usage by member" not in page and 'id="limit-form"' not in page
    refused = await member.post(f"{chat}/limits", data={"key": "user_per_day", "value": "0",
                                                        "csrf": csrf_of(page)})
    assert refused.status == 403


async def test_metrics_stay_off_the_pages(site: Web) -> None:
    await site.job(ADA)
    admin = await site.signed_in(ADA, scope=GROUP, admin=True)
    for path in ("/web/", "/web/jobs", "/web/usage", f"/web/chats/telegram:{GROUP}", "/web/login?t=x"):
        html = await (await admin.get(path)).text()
        assert "/metrics" not in html and "imagine_bot_" not in html, path
    assert (await admin.get("/web/metrics")).status == 404
    assert (await admin.get("/web/static/../../metrics.py")).status in (403, 404)
