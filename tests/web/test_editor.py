"""Vary (Region) over HTTP: the editor page of an upscale, its form (CSRF, an empty region refused,
a job the person can't see is "not found", a provider that can't is refused with a clear message),
and the local provider repainting the masked region and nothing else."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

from PIL import Image, ImageChops

from bot.access import Caller
from bot.domain import Job
from providers import local_render as render
from providers.base import Action
from providers.local import _unpack
from tests.web.conftest import ADA, BOB, Web, csrf_of, serve


async def upscale(site: Web) -> Job:
    job = await site.job(ADA)
    up, _ = await site.wired.service.act(Caller(ADA), job.id, "upscale", 1)
    (done,) = await site.wired.settle(up.id)
    return done


def drawing(size: tuple[int, int], box: tuple[int, int, int, int] | None) -> str:
    """The editor's canvas as it posts it: black, the region white, as a PNG data URL."""
    image = Image.new("RGBA", size, (0, 0, 0, 255))
    if box:
        image.paste((255, 255, 255, 255), box)
    out = io.BytesIO()
    image.save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def image_size(site: Web, job: Job) -> tuple[int, int]:
    files = await site.parts.media.files(job, tiles=False)
    with Image.open(io.BytesIO(files.images[0])) as image:
        return image.size


def nonce_of(html: str) -> str:
    match = re.search(r'name="nonce" value="([^"]+)"', html)
    assert match
    return match[1]


async def test_the_editor_makes_a_vary_job_from_the_drawn_region(site: Web) -> None:
    up = await upscale(site)
    client = await site.signed_in(ADA)
    assert f'href="/web/jobs/{up.id}/vary-region"' in await (await client.get(f"/web/jobs/{up.id}")).text()
    page = await client.get(f"/web/jobs/{up.id}/vary-region")
    html = await page.text()
    assert page.status == 200 and 'id="region-canvas"' in html and "/web/static/editor.js" in html
    w, h = await image_size(site, up)
    form = {"csrf": csrf_of(html), "nonce": nonce_of(html), "mask": drawing((w, h), (0, 0, w // 2, h // 2)),
            "prompt": "a lighthouse"}  # fmt: skip
    done = await client.post(f"/web/jobs/{up.id}/vary-region", data=form, allow_redirects=False)
    assert done.status == 303, await done.text()
    child_id = done.headers["Location"].rsplit("/", 1)[1]
    child = await site.wired.service.get(child_id)
    assert child.kind is Action.VARY_REGION and child.parent_id == up.id
    assert child.request.mask is not None
    with Image.open(io.BytesIO(child.request.mask.data)) as mask:
        assert mask.size == (w, h) and mask.getpixel((1, 1)) and not mask.getpixel((w - 2, h - 2))
    again = await client.post(f"/web/jobs/{up.id}/vary-region", data=form, allow_redirects=False)
    assert again.headers["Location"] == done.headers["Location"]  # the same form twice: one job
    (varied,) = await site.wired.settle(child.id)
    assert varied.state.value == "succeeded" and varied.result and varied.result.grid_url

    # the local provider repainted the region (the top-left quarter) and kept the rest
    assert up.provider_task_id and varied.provider_task_id
    before = render.render_tile(_unpack(up.provider_task_id), 0, (64, 64))
    after = render.render_tile(_unpack(varied.provider_task_id), 1, (64, 64))
    diff = ImageChops.difference(before.convert("RGB"), after.convert("RGB"))
    assert diff.crop((0, 0, 32, 32)).getbbox() is not None  # changed inside the region
    assert diff.crop((32, 0, 64, 64)).getbbox() is None and diff.crop((0, 32, 64, 64)).getbbox() is None


async def test_bad_input_is_refused(site: Web) -> None:
    up = await upscale(site)
    client = await site.signed_in(ADA)
    html = await (await client.get(f"/web/jobs/{up.id}/vary-region")).text()
    w, h = await image_size(site, up)
    path = f"/web/jobs/{up.id}/vary-region"
    empty = await client.post(path, data={"csrf": csrf_of(html), "mask": drawing((w, h), None)})
    assert empty.status == 400 and "empty" in await empty.text()
    no_csrf = await client.post(path, data={"mask": drawing((w, h), (0, 0, 8, 8))})
    assert no_csrf.status == 403
    garbage = await client.post(path, data={"csrf": csrf_of(html), "mask": "data:text/plain;base64,eA=="})
    assert garbage.status == 400
    assert await site.parts.store.children(up.id) == []  # nothing was made

    bob = await site.signed_in(BOB)  # Ada's private job: not found, page and form alike
    assert (await bob.get(path)).status == 404
    bob_html = await (await bob.get("/web/")).text()
    assert (await bob.post(path, data={"csrf": csrf_of(bob_html), "mask": drawing((w, h), (0, 0, 8, 8))})
            ).status == 404


async def test_a_job_that_does_not_offer_it_has_no_editor(tmp_path: Path) -> None:
    async with serve(tmp_path) as site:
        grid = await site.job(ADA)  # a grid, not an upscale: no Vary (Region)
        client = await site.signed_in(ADA)
        assert "vary-region" not in await (await client.get(f"/web/jobs/{grid.id}")).text()
        page = await client.get(f"/web/jobs/{grid.id}/vary-region")
        assert page.status == 400 and "does not offer Vary (Region)" in await page.text()
        html = await (await client.get("/web/")).text()
        posted = await client.post(f"/web/jobs/{grid.id}/vary-region",
                                   data={"csrf": csrf_of(html), "mask": drawing((8, 8), (0, 0, 4, 4))})
        assert posted.status == 400 and "does not offer Vary (Region)" in await posted.text()


async def test_the_chat_buttons_link_to_the_editor_only_with_the_web_pages_on(site: Web) -> None:
    from bot import presentation
    from bot.domain import Placement
    from bot.telegram_frontend.keyboards import markup
    from bot.telegram_frontend.render import job_rows

    up = (await upscale(site)).model_copy(update={"placement": Placement(platform="telegram", chat_id="101")})
    links = [b for row in presentation.buttons(up) for b in row if b.url]
    assert [b.url for b in links] == [f"http://127.0.0.1:1/web/jobs/{up.id}/vary-region"]
    assert ("🖌️ Vary (Region)", f"url:{links[0].url}") in [b for row in job_rows(up) for b in row]
    try:
        presentation.set_web_url("https://bot.example")  # a private chat over https: a Web App button
        keyboard = markup(job_rows(up))
        assert keyboard is not None
        apps = [b.web_app.url for row in keyboard.inline_keyboard for b in row if b.web_app]
        assert apps == [f"https://bot.example/web/jobs/{up.id}/vary-region"]
        grouped = up.model_copy(update={"placement": Placement(platform="telegram", chat_id="-100")})
        keyboard = markup(job_rows(grouped))  # a group: a plain link
        assert keyboard is not None and [b.url for row in keyboard.inline_keyboard for b in row if b.url]
        presentation.set_web_url(None)  # web pages off: no button
        assert not [b for row in presentation.buttons(up) for b in row if b.ref.action == "vary_region"]
    finally:
        presentation.set_web_url("http://127.0.0.1:1")
