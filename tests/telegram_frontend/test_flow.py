"""The main journeys, as people in a chat see them: imagine → U2 → Vary (Strong); describe → prompt 3;
blend of 3 photos; settings; /jobs; and the store behind them."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from bot import i18n
from bot.domain import JobState, Owner
from providers.base import Action
from providers.local import LocalProvider
from tests.telegram_frontend.conftest import ANN, BOB, BOT, GROUP, Bot, BotFactory, image, labels, size_of

GRID_ROWS = [["U1", "U2", "U3", "U4"], ["V1", "V2", "V3", "V4", "🔄"]]


def no_bad_requests(bot: Bot) -> None:
    assert [e for e in bot.fake.errors if e[1] == 400] == []


async def test_imagine_then_u2_then_vary_strong(make_bot: BotFactory) -> None:
    async with make_bot(local={"grid_size": 1400, "duration": 0.6}) as bot:
        fake = bot.fake
        command = fake.send_text(GROUP, ANN, f"/imagine@{BOT} a red fox in snow --ar 3:2")
        grid_message = await bot.reply(GROUP, command.message_id)
        first = fake.calls("sendPhoto")[0]
        assert first["caption"].splitlines()[1] in ("Starting…", "Submitted · waiting for the provider…")

        grid = await bot.finished(GROUP, grid_message.message_id)
        assert labels(grid) == GRID_ROWS
        lines = grid.caption.splitlines() if grid.caption else []
        job = await bot.job(GROUP, grid)
        assert lines == ["a red fox in snow --ar 3:2", f"local · Ann · job {job.id}"]
        assert size_of(fake.photo_bytes(grid)) == (1400, 934)  # the grid itself, not the provider's URL
        captions = [p.get("caption") or p["media"].get("caption") for m, p in fake.log
                    if m in ("editMessageCaption", "editMessageMedia") and p["message_id"] == grid.message_id]
        assert any("Running ·" in (c or "") for c in captions)  # progress was shown on the way
        assert all("http" not in str(p["media"].get("media")) for p in fake.calls("editMessageMedia"))

        query = fake.press(GROUP, grid.message_id, ANN, text="U2")
        upscale_message = await bot.reply(GROUP, grid.message_id)
        assert fake.answered(query) == {"text": "Upscaling U2…"}
        upscale = await bot.finished(GROUP, upscale_message.message_id)
        assert ["Vary (Subtle)", "Vary (Strong)", "Upscale (Subtle)", "Upscale (Creative)"] in labels(upscale)
        assert upscale.caption and upscale.caption.startswith("U2 · a red fox in snow")
        full = await fake.wait_until(
            lambda: [m for m in bot.replies(GROUP, upscale.message_id) if m.document])
        assert full[0].document and full[0].document["file_name"].endswith("-full.png")
        assert size_of(full[0].uploaded or b"") == (1400, 934)  # more than the 1280 px a photo keeps

        fake.press(GROUP, grid.message_id, ANN, text="U2")  # the same button again: the same job
        fake.press(GROUP, upscale.message_id, ANN, text="Vary (Strong)")
        vary_message = await fake.wait_until(
            lambda: [m for m in bot.replies(GROUP, upscale.message_id) if m.photo])
        vary = await bot.finished(GROUP, vary_message[0].message_id)
        assert labels(vary) == GRID_ROWS
        await bot.settled()

        upscale_job, vary_job = await bot.job(GROUP, upscale), await bot.job(GROUP, vary)
        assert (upscale_job.kind, upscale_job.index, upscale_job.parent_id) == (Action.UPSCALE, 2, job.id)
        assert (vary_job.kind, vary_job.parent_id, vary_job.state) == (
            Action.VARY_STRONG, upscale_job.id, JobState.SUCCEEDED)
        assert len([m for m in bot.replies(GROUP, grid.message_id) if m.photo]) == 1
        provider = bot.app.pool.get("local")
        assert isinstance(provider, LocalProvider) and provider.calls["act"] == 2
        no_bad_requests(bot)


async def test_describe_then_imagine_prompt_3(bot: Bot) -> None:
    fake = bot.fake
    photo = fake.send_photo(ANN.id, ANN, image(300, 200, "navy", "JPEG"), caption="/describe")
    message = await bot.reply(ANN.id, photo.message_id)
    assert message.text is not None and message.photo is None
    described = await bot.finished(ANN.id, message.message_id)
    assert labels(described) == [["1", "2", "3", "4"]]
    job = await bot.job(ANN.id, described)
    assert job.result is not None and len(job.result.prompts) == 4
    text = described.text or ""
    for n, prompt in enumerate(job.result.prompts, start=1):
        assert f"{n}. {prompt}" in text

    query = fake.press(ANN.id, described.message_id, ANN, text="3")
    reply = await bot.reply(ANN.id, described.message_id)
    assert fake.answered(query) == {"text": "Imagining prompt 3…"}
    grid = await bot.finished(ANN.id, reply.message_id)
    assert labels(grid) == GRID_ROWS
    child = await bot.job(ANN.id, grid)
    assert (child.kind, child.parent_id, child.index) == (Action.IMAGINE, job.id, 3)
    assert child.request.prompt is not None
    assert job.result.prompts[2].startswith(child.request.prompt.text)
    no_bad_requests(bot)


async def test_describe_as_a_reply_to_a_photo_in_a_group(bot: Bot) -> None:
    fake = bot.fake
    shown = await fake.wait_until(lambda: fake.calls("setMyCommands"))
    assert shown  # a bot message to reply to: the photo reaches the bot through privacy mode
    hello = fake.send_text(GROUP, ANN, "/help")
    help_message = await bot.reply(GROUP, hello.message_id)
    photo = fake.send_photo(GROUP, BOB, image(200, 200, "yellow"), reply_to=help_message.message_id)
    command = fake.send_text(GROUP, BOB, "/describe", reply_to=photo.message_id)
    described = await bot.finished(GROUP, (await bot.reply(GROUP, command.message_id)).message_id)
    assert labels(described) == [["1", "2", "3", "4"]]
    assert (await bot.job(GROUP, described)).owner.name == "Bob"


async def test_blend_of_three_photos_from_an_album_caption(bot: Bot) -> None:
    fake = bot.fake
    album = fake.send_album(ANN.id, ANN, [image(color=c) for c in ("red", "green", "blue")], caption="/blend")
    reply = await bot.reply(ANN.id, album[0].message_id)
    grid = await bot.finished(ANN.id, reply.message_id)
    assert labels(grid) == GRID_ROWS
    assert grid.caption and grid.caption.startswith("Blend of 3 images")
    job = await bot.job(ANN.id, grid)
    assert job.kind is Action.BLEND and len(job.request.images) == 3
    assert all(i.sha256 and not i.data for i in job.request.images)  # the row names them; the bytes:
    assert [_color(i.data) for i in await bot.app.service.inputs(job)] == ["red", "green", "blue"]  # in order
    assert len(fake.bot_messages(ANN.id)) == 1  # one job message for the whole album


async def test_blend_as_a_reply_to_an_album_with_a_shape(bot: Bot) -> None:
    fake = bot.fake
    album = fake.send_album(BOB.id, BOB, [image(color="white"), image(color="black")])
    command = fake.send_text(BOB.id, BOB, "/blend portrait", reply_to=album[1].message_id)
    grid = await bot.finished(BOB.id, (await bot.reply(BOB.id, command.message_id)).message_id)
    job = await bot.job(BOB.id, grid)
    assert (job.kind, len(job.request.images), job.request.dimensions) == (Action.BLEND, 2, "portrait")
    width, height = size_of(fake.photo_bytes(grid))
    assert height > width


async def test_an_album_seen_before_a_restart_is_still_blended_after_it(make_bot: BotFactory) -> None:
    async with make_bot() as before:
        fake = before.fake
        album = fake.send_album(BOB.id, BOB, [image(color=c) for c in ("red", "green", "blue")])
        group_id = str(album[0].media_group_id)
        for _ in range(200):  # until the bot has seen the whole album
            if len(await before.app.store.albums.photos(str(BOB.id), group_id)) == 3:
                break
            await asyncio.sleep(0.02)
    async with make_bot() as after:  # the same database, a new process life
        command = fake.send_text(BOB.id, BOB, "/blend", reply_to=album[0].message_id)
        grid = await after.finished(BOB.id, (await after.reply(BOB.id, command.message_id)).message_id)
        job = await after.job(BOB.id, grid)
        assert [_color(i.data) for i in await after.app.service.inputs(job)] == ["red", "green", "blue"]


async def test_private_text_is_an_imagine_and_jobs_lists_it(bot: Bot) -> None:
    fake = bot.fake
    text = fake.send_text(ANN.id, ANN, "a lighthouse at dusk")
    grid = await bot.finished(ANN.id, (await bot.reply(ANN.id, text.message_id)).message_id)
    job = await bot.job(ANN.id, grid)
    listing = fake.send_text(ANN.id, ANN, "/jobs")
    answer = await bot.reply(ANN.id, listing.message_id)
    assert answer.text and f"• {job.id} · imagine · succeeded · a lighthouse at dusk" in answer.text
    other = fake.send_text(BOB.id, BOB, "/jobs")
    assert (await bot.reply(BOB.id, other.message_id)).text == (
        "You have no jobs yet. Start one with /imagine <prompt>.")


async def test_commands_are_published_and_help_answers(bot: Bot) -> None:
    fake = bot.fake
    await fake.wait_until(lambda: len(fake.commands) == 2 * len(i18n.LOCALES))  # a list per language
    everyone = ["imagine", "shorten", "describe", "blend", "jobs", "cancel", "settings", "info", "help"]
    assert [c["command"] for c in fake.commands['[{"type": "default"}, ""]']] == everyone
    admins = fake.commands['[{"type": "all_chat_administrators"}, ""]']
    assert [c["command"] for c in admins] == [*everyone, "admin"]  # /admin only in admins' menus
    start = fake.send_text(ANN.id, ANN, "/start")
    assert "/imagine <prompt>" in ((await bot.reply(ANN.id, start.message_id)).text or "")


async def test_settings_change_defaults_used_by_imagine(bot: Bot) -> None:
    fake = bot.fake
    command = fake.send_text(GROUP, ANN, "/settings")
    settings = await bot.reply(GROUP, command.message_id)
    assert settings.text and "Aspect ratio: 1:1 (default)" in settings.text
    assert labels(settings)[1] == ["1:1", "2:3", "3:2", "4:5", "16:9", "9:16"]

    refused = fake.press(GROUP, settings.message_id, BOB, text="16:9")
    await fake.wait_until(lambda: fake.answered(refused))
    assert fake.answered(refused) == {
        "text": "These are someone else's settings; send /settings for yours.", "show_alert": True}

    query = fake.press(GROUP, settings.message_id, ANN, text="16:9")
    updated = await bot.until(GROUP, settings.message_id, lambda m: "✓ 16:9" in labels(m)[1])
    assert fake.answered(query) == {"text": "Aspect ratio: 16:9"}
    assert updated.text and "Aspect ratio: 16:9" in updated.text
    ann = Owner(platform="telegram", user_id=str(ANN.id))
    assert await bot.app.service.settings(ann) == {"aspect_ratio": "16:9"}

    imagine = fake.send_text(GROUP, ANN, "/imagine a wide valley")
    grid = await bot.finished(GROUP, (await bot.reply(GROUP, imagine.message_id)).message_id)
    job = await bot.job(GROUP, grid)
    assert job.request.prompt is not None and job.request.prompt.aspect_ratio == "16:9"
    assert size_of(fake.photo_bytes(grid)) == (256, 144)


def _color(data: bytes) -> str:
    r, g, b = Image.open(io.BytesIO(data)).convert("RGB").getpixel((10, 10))  # type: ignore[misc]
    return max((r, "red"), (g, "green"), (b, "blue"))[1]
