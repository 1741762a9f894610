"""Remix on Telegram, as the people in the chat see it: the /settings switch and --remix make V, 🔄 and
the pans ask for the prompt (a ForceReply quoting the parent's, with Cancel); the presser's reply makes
the job with the edited prompt, across a restart; bad answers and other people's are refused and leave
the request open; Cancel closes it."""

from __future__ import annotations

from pathlib import Path

from bot.domain import Job
from bot.telegram_frontend.remix import ASK, STILL_OPEN
from providers.base import Action
from tests.fakes.telegram_api import FakeMessage, TelegramFake
from tests.telegram_frontend.conftest import ANN, BOB, BOT, GROUP, Bot, image, labels, make_config, serving

GRID_ROWS = [["U1", "U2", "U3", "U4"], ["V1", "V2", "V3", "V4", "🔄"]]


async def _grid(bot: Bot, prompt: str) -> FakeMessage:
    command = bot.fake.send_text(GROUP, ANN, f"/imagine@{BOT} {prompt}")
    return await bot.finished(GROUP, (await bot.reply(GROUP, command.message_id)).message_id)


async def _asked(bot: Bot, grid: FakeMessage) -> FakeMessage:
    """The Remix request a press on `grid` was answered with, once it carries its Cancel button."""
    request = await bot.fake.wait_until(
        lambda: [m for m in bot.replies(GROUP, grid.message_id) if (m.text or "").startswith(ASK)])
    return await bot.until(GROUP, request[0].message_id, lambda m: m.keyboard)


async def _jobs(bot: Bot) -> list[Job]:
    return await bot.app.service.recent(None, 100)


def _said(fake: TelegramFake, message: FakeMessage) -> list[str]:
    return [m.text or "" for m in fake.bot_messages(GROUP) if m.reply_to_message_id == message.message_id]


async def test_the_setting_asks_for_the_prompt_and_the_answer_survives_a_restart(
        tmp_path: Path, fake: TelegramFake) -> None:
    config = make_config(tmp_path, fake, local={"max_prompt_length": 60})
    async with serving(config, fake) as bot:
        settings = await bot.reply(GROUP, fake.send_text(GROUP, ANN, f"/settings@{BOT}").message_id)
        assert ["✓ Remix off", "Remix on"] in labels(settings)
        query = fake.press(GROUP, settings.message_id, ANN, text="Remix on")
        await fake.wait_until(lambda: fake.answered(query))
        assert fake.answered(query) == {"text": "Remix: on"}
        await bot.until(GROUP, settings.message_id, lambda m: ["Remix off", "✓ Remix on"] in labels(m))

        grid = await _grid(bot, "a red fox --ar 3:2")
        before = len(await _jobs(bot))
        query = fake.press(GROUP, grid.message_id, ANN, text="V2")
        request = await _asked(bot, grid)
        assert fake.answered(query) == {"text": "Remix V2: reply with the edited prompt."}
        assert labels(request) == [["Cancel"]]
        sent = next(p for p in fake.calls("sendMessage") if p["text"].startswith(ASK))
        assert sent["reply_markup"]["force_reply"] is True and sent["reply_markup"]["selective"] is True
        text = request.text or ""
        assert text.endswith("\n\na red fox --ar 3:2")
        kinds = {e["type"]: e for e in request.entities or []}
        assert kinds["text_mention"]["user"]["id"] == ANN.id
        assert text[kinds["code"]["offset"]:] == "a red fox --ar 3:2"  # ASCII: UTF-16 offsets match
        again = fake.press(GROUP, grid.message_id, ANN, text="V2")  # pressed twice: pointed to the first
        await fake.wait_until(lambda: fake.answered(again))
        pointed = "Remix V2: reply to the request above with the edited prompt."
        assert fake.answered(again) == {"text": pointed}
        assert len([m for m in bot.replies(GROUP, grid.message_id) if (m.text or "").startswith(ASK)]) == 1

        # someone else's answer, an empty one, a too long one and a bad flag: refused, still open
        bob = fake.send_text(GROUP, BOB, "a green frog", reply_to=request.message_id)
        photo = fake.send_photo(GROUP, ANN, image(), reply_to=request.message_id)
        long = fake.send_text(GROUP, ANN, "a blue whale " * 6, reply_to=request.message_id)
        flag = fake.send_text(GROUP, ANN, "a blue whale --chaos 500", reply_to=request.message_id)
        for answer, why in ((bob, "Only the person who pressed"), (photo, "has no prompt"),
                            (long, "takes at most 60"), (flag, "--chaos must be between 0 and 100")):
            said = await fake.wait_until(lambda a=answer: _said(fake, a))
            assert why in said[0], said
            assert answer is bob or STILL_OPEN in said[0]
        assert len(await _jobs(bot)) == before

    async with serving(config, fake) as bot:  # a restart: the request is still answerable
        answer = fake.send_text(GROUP, ANN, "a blue whale --ar 16:9", reply_to=request.message_id)
        made = await bot.finished(GROUP, (await bot.reply(GROUP, answer.message_id)).message_id)
        assert labels(made) == GRID_ROWS
        job = await bot.job(GROUP, made)
        assert (job.kind, job.index, job.request.remixed) == (Action.VARIATION, 2, True)
        assert job.request.prompt is not None and job.request.prompt.full() == "a blue whale --ar 16:9"
        assert (made.caption or "").splitlines()[0].startswith("V2")
        closed = await bot.until(GROUP, request.message_id, lambda m: not m.keyboard)
        assert closed.text == f"Remix V2 of job {job.parent_id}: job {job.id}."
        assert len(await _jobs(bot)) == before + 1
        assert [e for e in fake.errors if e[1] == 400] == []


async def test_remix_flag_asks_only_for_what_takes_a_prompt_and_cancel_closes_it(
        tmp_path: Path, fake: TelegramFake) -> None:
    async with serving(make_config(tmp_path, fake), fake) as bot:
        grid = await _grid(bot, "a red fox --remix")
        fake.press(GROUP, grid.message_id, ANN, text="U1")  # an upscale has nothing to remix
        upscale = await bot.reply(GROUP, grid.message_id)
        assert upscale.photo is not None and (await bot.job(GROUP, upscale)).kind is Action.UPSCALE
        before = len(await _jobs(bot))

        fake.press(GROUP, grid.message_id, ANN, text="🔄")
        request = await _asked(bot, grid)
        assert (request.text or "").endswith("\n\na red fox")  # --remix is the bot's, not the prompt's
        refused = fake.press(GROUP, request.message_id, BOB, text="Cancel")
        await fake.wait_until(lambda: fake.answered(refused))
        assert (fake.answered(refused) or {}).get("show_alert") is True
        cancelled = fake.press(GROUP, request.message_id, ANN, text="Cancel")
        await fake.wait_until(lambda: fake.answered(cancelled))
        assert fake.answered(cancelled) == {"text": "Remix cancelled."}
        closed = await bot.until(GROUP, request.message_id, lambda m: not m.keyboard)
        assert (closed.text or "").endswith("cancelled.")
        late = fake.send_text(GROUP, ANN, "a blue whale", reply_to=request.message_id)
        again = fake.press(GROUP, request.message_id, ANN, "rx:cancel", strict=False)
        await fake.wait_until(lambda: fake.answered(again))
        assert fake.answered(again) == {"text": "This Remix request is already closed."}
        await bot.settled()
        assert _said(fake, late) == [] and len(await _jobs(bot)) == before
