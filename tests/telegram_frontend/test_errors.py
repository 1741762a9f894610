"""Each bad input and each failure ends in a clear message in the chat, never a trace."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain import ActionRef, JobState
from tests.fakes.telegram_api import FakeMessage
from tests.telegram_frontend.conftest import ANN, BOB, BOT, GROUP, Bot, BotFactory, image, labels


async def answer_to(bot: Bot, chat_id: int, text: str, user: Any = ANN, **kwargs: Any) -> str:
    sent = bot.fake.send_text(chat_id, user, text, **kwargs)
    reply = await bot.reply(chat_id, sent.message_id)
    return reply.text or ""


async def grid_of(bot: Bot, chat_id: int, prompt: str = "a red fox", user: Any = ANN) -> FakeMessage:
    command = bot.fake.send_text(chat_id, user, f"/imagine {prompt}")
    return await bot.finished(chat_id, (await bot.reply(chat_id, command.message_id)).message_id)


def no_traces(bot: Bot) -> None:
    for chat in (GROUP, ANN.id, BOB.id):
        for message in bot.fake.bot_messages(chat):
            assert "Traceback" not in (message.text or message.caption or "")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/imagine", "Usage: /imagine <prompt>"),
        (f"/imagine@{BOT}", "Usage: /imagine <prompt>"),
        ("/imagine a cat --ar banana", "⚠️ --ar takes a ratio like 16:9"),
        ("/imagine a cat --bogus 1", "⚠️ Unknown flag --bogus."),
        ("/imagine --ar 16:9", "⚠️ The prompt has flags but no text"),
        ("/describe", "Send a photo with /describe as its caption"),
        ("/blend", "⚠️ Send an album of 2–5 photos with /blend as its caption"),
        ("/cancel", "Reply /cancel to a job's message"),
        ("/cancel zzzzzzzzzz", "⚠️ There is no job 'zzzzzzzzzz'."),
    ],
)
async def test_bad_commands_get_a_clear_answer(bot: Bot, command: str, expected: str) -> None:
    assert (await answer_to(bot, GROUP, command)).startswith(expected)
    no_traces(bot)


async def test_describe_of_files(bot: Bot) -> None:
    fake = bot.fake
    pdf = fake.send_document(ANN.id, ANN, b"%PDF-1.4 not a picture", "notes.pdf", "application/pdf")
    assert await answer_to(bot, ANN.id, "/describe", reply_to=pdf.message_id) == (
        "⚠️ That file is not an image (PNG, JPEG, GIF or WEBP).")
    fake_png = fake.send_document(ANN.id, ANN, b"hello, not really a picture", "x.png", "image/png")
    assert await answer_to(bot, ANN.id, "/describe", reply_to=fake_png.message_id) == (
        "⚠️ The image is not an image (PNG, JPEG, GIF or WEBP).")
    as_file = fake.send_document(ANN.id, ANN, image(200, 100, "green"), "leaf.png", "image/png",
                                 caption="/describe")
    described = await bot.finished(ANN.id, (await bot.reply(ANN.id, as_file.message_id)).message_id)
    assert labels(described) == [["1", "2", "3", "4"]]


async def test_blend_of_a_single_photo_and_of_an_album_hidden_by_privacy_mode(bot: Bot) -> None:
    fake = bot.fake
    single = fake.send_photo(ANN.id, ANN, image())
    assert (await answer_to(bot, ANN.id, "/blend", reply_to=single.message_id)).startswith(
        "⚠️ Blend needs 2–5 photos sent together as one album")

    album = fake.send_album(GROUP, ANN, [image(color="red"), image(color="blue")], caption="/blend")
    assert [m.delivered for m in album] == [True, False]  # privacy mode: the bot sees the captioned one
    answer = await bot.reply(GROUP, album[0].message_id)
    assert answer.text and answer.text.startswith("⚠️ I can see only 1 photo of that album")
    assert "privacy mode" in answer.text

    many = fake.send_album(BOB.id, BOB, [image(color=c) for c in ("red", "blue", "green", "white", "black",
                                                                  "gray")], caption="/blend")  # fmt: skip
    assert (await bot.reply(BOB.id, many[0].message_id)).text == (
        "⚠️ Blend takes 2 to 5 photos; that album has 6.")


async def test_a_caption_for_another_bot_is_ignored(bot: Bot) -> None:
    fake = bot.fake
    fake.send_photo(ANN.id, ANN, image(), caption="/describe@other_bot")
    marker = fake.send_text(ANN.id, ANN, "/help")
    await bot.reply(ANN.id, marker.message_id)
    assert len(fake.bot_messages(ANN.id)) == 1  # only the /help answer


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ({"fail_word": "explode"}, "Failed: The image could not be generated (simulated failure)."),
        ({"submit_error": "rejected"}, "Failed: The local provider refused the request (simulated rejected"),
        ({"submit_error": "quota"}, "quota"),
        ({"submit_error": "unavailable"}, "unavailable"),
        ({"duration": 30, "job_timeout": 0.4}, "Timed out. The job took longer than 1 min and was stopped."),
    ],
    ids=["generation-failed", "refused", "no-credits", "unavailable", "timeout"],
)
async def test_provider_failures_end_the_message_with_a_reason(
    make_bot: BotFactory, local: dict[str, Any], expected: str
) -> None:
    async with make_bot(local=local, polling={"idle_interval": 0.05, "backoff_base": 0.02,
                                              "backoff_max": 0.05, "max_submit_attempts": 2}) as bot:
        command = bot.fake.send_text(GROUP, ANN, "/imagine a castle that will explode")
        reply = await bot.reply(GROUP, command.message_id)
        job = await bot.job(GROUP, reply)
        ended = await bot.until(GROUP, reply.message_id, lambda m: not (m.caption or "").splitlines()[1]
                                .startswith(("Starting", "Submitted", "Running", "Queued")))  # fmt: skip
        await bot.settled()
        ended = bot.fake.message(GROUP, reply.message_id)
        status = (ended.caption or "").splitlines()[1]
        assert expected.lower() in status.lower(), status
        assert ended.keyboard == []
        stored = await bot.app.service.get(job.id)
        assert stored.terminal and stored.state is not JobState.SUCCEEDED
        no_traces(bot)


async def test_someone_elses_buttons_are_politely_refused(bot: Bot) -> None:
    fake = bot.fake
    grid = await grid_of(bot, GROUP)
    query = fake.press(GROUP, grid.message_id, BOB, text="U1")
    await fake.wait_until(lambda: fake.answered(query))
    assert fake.answered(query) == {
        "text": "These buttons belong to Ann. Start your own with /imagine.", "show_alert": True}
    assert bot.replies(GROUP, grid.message_id) == []


async def test_anyone_may_press_when_configured(make_bot: BotFactory) -> None:
    async with make_bot(access={"owner_only_buttons": False}) as bot:
        grid = await grid_of(bot, GROUP)
        bot.fake.press(GROUP, grid.message_id, BOB, text="V3")
        child = await bot.finished(GROUP, (await bot.reply(GROUP, grid.message_id)).message_id)
        job = await bot.job(GROUP, child)
        assert (job.kind.value, job.index, job.owner.name) == ("variation", 3, "Bob")


async def test_unsupported_and_stale_buttons(bot: Bot) -> None:
    fake = bot.fake
    grid = await grid_of(bot, GROUP)
    job = await bot.job(GROUP, grid)
    animate = fake.press(GROUP, grid.message_id, ANN, ActionRef("video", 0, job.id).pack(), strict=False)
    refusal = await fake.wait_until(lambda: fake.answered(animate))
    # the refusal, as its button says, to the presser alone (no "Animate…" first, no message in the group)
    assert refusal == {"text": f"Job {job.id} does not offer Animate (local).", "show_alert": True}

    gone = fake.press(GROUP, grid.message_id, ANN, ActionRef("upscale", 1, "zzzzzzzzzz").pack(), strict=False)
    junk = fake.press(GROUP, grid.message_id, ANN, "something-else", strict=False)
    await fake.wait_until(lambda: fake.answered(gone) and fake.answered(junk))
    assert fake.answered(gone) == {"text": "There is no job 'zzzzzzzzzz'.", "show_alert": True}
    assert fake.answered(junk) == {"text": "This button no longer works."}
    assert [m.message_id for m in fake.bot_messages(GROUP)] == [grid.message_id]  # nothing said to all
    no_traces(bot)


async def test_cancel_a_queued_job_and_refusals(make_bot: BotFactory) -> None:
    async with make_bot(local={"duration": 3.0, "max_concurrency": 1}) as bot:
        fake = bot.fake
        first = await bot.reply(GROUP, fake.send_text(GROUP, ANN, "/imagine first").message_id)
        second = await bot.reply(GROUP, fake.send_text(GROUP, ANN, "/imagine second").message_id)
        await bot.until(GROUP, second.message_id, lambda m: "Queued" in (m.caption or "")
                        or "Starting" in (m.caption or ""))  # fmt: skip
        second_job = await bot.job(GROUP, second)
        assert await answer_to(bot, GROUP, "/cancel", BOB, reply_to=second.message_id) == (
            f"⚠️ Job {second_job.id} belongs to Ann.")
        assert (await answer_to(bot, GROUP, "/cancel", reply_to=second.message_id)).startswith(
            "Cancelled job")
        cancelled = await bot.until(GROUP, second.message_id, lambda m: "Cancelled" in (m.caption or ""))
        assert "Cancelled. Cancelled by Ann." in (cancelled.caption or "")
        assert (await bot.job(GROUP, second)).state is JobState.CANCELLED

        await bot.until(GROUP, first.message_id, lambda m: "Running" in (m.caption or ""))
        assert await answer_to(bot, GROUP, "/cancel", reply_to=first.message_id) == (
            "⚠️ local cannot cancel a job once it has started.")
        chatter = fake.send_text(GROUP, ANN, "/jobs")
        assert await answer_to(bot, GROUP, "/cancel", reply_to=chatter.message_id) == (
            "⚠️ That message isn't one of my jobs. Reply /cancel to a job's message.")


@pytest.mark.parametrize("owner_only", [True, False])
async def test_a_strangers_cancel_and_press_follow_owner_only_buttons(make_bot: BotFactory,
                                                                      owner_only: bool) -> None:
    """The access policy's one rule, as on Discord (tests/discord_frontend/test_commands.py): with
    `access.owner_only_buttons` (the default) a stranger can neither /cancel a job nor press its
    buttons; without it anyone in the chat can do both."""
    async with make_bot(local={"duration": 1.0, "max_concurrency": 1},
                        access={"owner_only_buttons": owner_only}) as bot:
        fake = bot.fake
        first = await bot.reply(GROUP, fake.send_text(GROUP, ANN, "/imagine first").message_id)
        second = await bot.reply(GROUP, fake.send_text(GROUP, ANN, "/imagine second").message_id)
        job = await bot.job(GROUP, second)
        answer = await answer_to(bot, GROUP, "/cancel", BOB, reply_to=second.message_id)
        grid = await bot.finished(GROUP, first.message_id)
        press = fake.press(GROUP, grid.message_id, BOB, text="U1")
        if owner_only:
            assert answer == f"⚠️ Job {job.id} belongs to Ann."
            assert await fake.wait_until(lambda: fake.answered(press)) == {
                "text": "These buttons belong to Ann. Start your own with /imagine.", "show_alert": True}
            assert (await bot.ended(job.id)).state is JobState.SUCCEEDED
            assert bot.replies(GROUP, grid.message_id) == []
        else:
            assert answer == f"Cancelled job {job.id}."
            assert (await bot.ended(job.id)).state is JobState.CANCELLED
            upscale = await bot.reply(GROUP, grid.message_id)
            assert (await bot.job(GROUP, upscale)).owner.user_id == str(BOB.id)


async def test_chats_outside_the_allow_list_are_refused(make_bot: BotFactory) -> None:
    async with make_bot(access={"allow_chats": [f"telegram:{GROUP}"]}) as bot:
        answer = await answer_to(bot, ANN.id, "/imagine a cat")
        assert answer == ("This bot is not enabled in this chat. Ask an admin to allow it. "
                          f"(This chat is telegram:{ANN.id}.)")
        assert await bot.app.service.recent(None, 10) == []
        grid = await grid_of(bot, GROUP)  # the allowed chat works
        assert labels(grid)


async def test_an_unexpected_failure_is_an_apology_not_a_trace(bot: Bot, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(bot.app.service, "recent", broken)
    answer = await answer_to(bot, GROUP, "/jobs")
    assert answer == "⚠️ Something went wrong on my side; it has been logged. Please try again."
    assert "database on fire" in caplog.text  # the trace is in the log
    bot.frontend.handlers.errors = 0  # expected here


async def test_a_deleted_message_job_still_completes_and_shows_in_jobs(make_bot: BotFactory) -> None:
    async with make_bot(local={"duration": 0.6}) as bot:
        fake = bot.fake
        reply = await bot.reply(ANN.id, fake.send_text(ANN.id, ANN, "/imagine a vanishing act").message_id)
        job = await bot.job(ANN.id, reply)
        fake.message(ANN.id, reply.message_id).deleted = True  # the user deleted it
        done = await bot.ended(job.id)
        assert done.state is JobState.SUCCEEDED
        await bot.settled()
        listing = await answer_to(bot, ANN.id, "/jobs")
        assert f"• {job.id} · imagine · succeeded · a vanishing act" in listing
        assert bot.frontend.outbox.gone >= 1
        assert bot.frontend.outbox.delivery.stats.failed == 0
