"""Issue 15 on Telegram, as people in the chat see it, on the local provider: /shorten then a
suggestion pressed; Make Square and Upscale (2x) on a wide upscale; Custom Zoom through the prompt flow."""

from __future__ import annotations

from bot.domain import JobState
from bot.telegram_frontend.remix import ASK
from providers.base import Action
from tests.telegram_frontend.conftest import ANN, BOT, GROUP, Bot, labels, size_of


def no_bad_requests(bot: Bot) -> None:
    assert [e for e in bot.fake.errors if e[1] == 400] == []


async def test_shorten_then_imagine_suggestion_2(bot: Bot) -> None:
    fake = bot.fake
    command = fake.send_text(
        GROUP, ANN, f"/shorten@{BOT} a very beautiful lighthouse on a rocky cliff at dusk --ar 3:2"
    )
    message = await bot.reply(GROUP, command.message_id)
    assert message.photo is None
    shortened = await bot.finished(GROUP, message.message_id)
    job = await bot.job(GROUP, shortened)
    assert job.kind is Action.SHORTEN and job.result is not None
    count = len(job.result.prompts)
    assert 2 <= count <= 5 and labels(shortened) == [[str(n) for n in range(1, count + 1)]]
    text = shortened.text or ""
    assert "Most significant: lighthouse" in text and "Shorten · press a number" in text
    for n, prompt in enumerate(job.result.prompts, start=1):
        assert f"{n}. {prompt}" in text

    query = fake.press(GROUP, shortened.message_id, ANN, text="2")
    reply = await bot.reply(GROUP, shortened.message_id)
    assert fake.answered(query) == {"text": "Imagining prompt 2…"}
    grid = await bot.finished(GROUP, reply.message_id)
    child = await bot.job(GROUP, grid)
    assert (child.kind, child.parent_id, child.index) == (Action.IMAGINE, job.id, 2)
    assert child.request.prompt is not None and child.request.prompt.full() == job.result.prompts[1]
    no_bad_requests(bot)


async def test_shorten_without_a_prompt_says_how(bot: Bot) -> None:
    command = bot.fake.send_text(ANN.id, ANN, "/shorten")
    answer = await bot.reply(ANN.id, command.message_id)
    assert answer.text and answer.text.startswith("Usage: /shorten <prompt>")


async def test_make_square_and_upscale_2x_on_a_wide_upscale(bot: Bot) -> None:
    fake = bot.fake
    command = fake.send_text(ANN.id, ANN, "/imagine a red fox --ar 2:1")
    grid = await bot.finished(ANN.id, (await bot.reply(ANN.id, command.message_id)).message_id)
    fake.press(ANN.id, grid.message_id, ANN, text="U1")
    upscale = await bot.finished(ANN.id, (await bot.reply(ANN.id, grid.message_id)).message_id)
    assert ["Upscale (2x)", "Upscale (4x)", "Make Square"] in labels(upscale)
    assert "🔍 Custom Zoom" in [label for row in labels(upscale) for label in row]

    query = fake.press(ANN.id, upscale.message_id, ANN, text="Make Square")
    squared = await bot.finished(ANN.id, (await bot.reply(ANN.id, upscale.message_id)).message_id)
    assert fake.answered(query) == {"text": "Make Square…"}
    assert labels(squared)[0] == ["U1", "U2", "U3", "U4"]
    width, height = size_of(fake.photo_bytes(squared))
    assert width == height
    assert squared.caption and squared.caption.startswith("Make Square · a red fox --ar 2:1")

    fake.press(ANN.id, upscale.message_id, ANN, text="Upscale (2x)")
    doubled_message = await fake.wait_until(
        lambda: [
            m
            for m in bot.replies(ANN.id, upscale.message_id)
            if m.photo and m.message_id != squared.message_id
        ]
    )
    doubled = await bot.finished(ANN.id, doubled_message[0].message_id)
    assert ["Upscale (2x)", "Upscale (4x)", "Redo Upscale", "Make Square"] in labels(doubled)
    job = await bot.job(ANN.id, doubled)
    assert job.kind is Action.UPSCALE_2X and job.state is JobState.SUCCEEDED
    no_bad_requests(bot)


async def test_custom_zoom_asks_for_the_prompt_refuses_zoom_3_then_zooms(bot: Bot) -> None:
    """Custom Zoom uses the Remix prompt flow (ForceReply), Remix on or off: the request quotes the
    prompt with --zoom 2; --zoom 3 is refused with the range and makes nothing; --zoom 1.5 zooms."""
    fake = bot.fake
    command = fake.send_text(GROUP, ANN, f"/imagine@{BOT} a red fox --ar 3:2")
    grid = await bot.finished(GROUP, (await bot.reply(GROUP, command.message_id)).message_id)
    fake.press(GROUP, grid.message_id, ANN, text="U1")
    upscale = await bot.finished(GROUP, (await bot.reply(GROUP, grid.message_id)).message_id)
    before = len(await bot.app.service.recent(None, 100))

    fake.press(GROUP, upscale.message_id, ANN, text="🔍 Custom Zoom")
    asked = await fake.wait_until(
        lambda: [m for m in bot.replies(GROUP, upscale.message_id) if (m.text or "").startswith(ASK)]
    )
    request = asked[0]
    assert (request.text or "").endswith("\n\na red fox --ar 3:2 --zoom 2")

    wrong = fake.send_text(GROUP, ANN, "a red fox in a field --ar 3:2 --zoom 3", reply_to=request.message_id)
    said = await fake.wait_until(
        lambda: [m.text for m in fake.bot_messages(GROUP) if m.reply_to_message_id == wrong.message_id]
    )
    assert "out of range" in (said[0] or "") and "from 1 to 2" in (said[0] or "")
    assert len(await bot.app.service.recent(None, 100)) == before  # nothing made, nothing charged

    answer = fake.send_text(
        GROUP, ANN, "a red fox in a field --ar 3:2 --zoom 1.5", reply_to=request.message_id
    )
    zoomed = await bot.finished(GROUP, (await bot.reply(GROUP, answer.message_id)).message_id)
    job = await bot.job(GROUP, zoomed)
    assert (job.kind, job.request.zoom, job.state) == (Action.CUSTOM_ZOOM, 1.5, JobState.SUCCEEDED)
    assert labels(zoomed)[0] == ["U1", "U2", "U3", "U4"]
    no_bad_requests(bot)
