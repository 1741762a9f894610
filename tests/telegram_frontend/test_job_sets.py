"""Permutations and --repeat in a Telegram chat: a first answer saying what was made, then one message
per job marked "n/size"; a bad set is answered with what is wrong, and nothing is made or charged."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.access import Caller
from bot.app import build_app, running
from bot.domain import Owner, Placement
from tests.fakes.telegram_api import TelegramFake
from tests.telegram_frontend.conftest import ANN, BOT, GROUP, Bot, BotFactory, make_config, serving


def _texts_and_photos(bot: Bot, chat: int, command_id: int) -> tuple[list[str], list[int]]:
    replies = sorted(bot.replies(chat, command_id), key=lambda m: m.message_id)
    return [m.text or "" for m in replies if m.text], [m.message_id for m in replies if m.photo]


async def test_permutations_answer_first_then_one_message_per_job(bot: Bot) -> None:
    fake = bot.fake
    command = fake.send_text(GROUP, ANN, f"/imagine@{BOT} a {{red, green}} bird {{--ar 1:1, --ar 16:9}}")
    await fake.wait_until(lambda: len(_texts_and_photos(bot, GROUP, command.message_id)[1]) == 4, 15.0)
    replies = sorted(bot.replies(GROUP, command.message_id), key=lambda m: m.message_id)
    assert replies[0].text == (
        "4 jobs from your permutations:\n• a red bird --ar 1:1\n• a red bird --ar 16:9\n"
        "• a green bird --ar 1:1\n• a green bird --ar 16:9"
    )  # before any job's message
    captions = []
    for message in replies[1:]:
        done = await bot.finished(GROUP, message.message_id)
        captions.append((done.caption or "").splitlines()[0])
    assert captions == [
        "1/4 · a red bird --ar 1:1",
        "2/4 · a red bird --ar 16:9",
        "3/4 · a green bird --ar 1:1",
        "4/4 · a green bird --ar 16:9",
    ]
    jobs = await bot.app.service.recent(None, 10)
    assert len(jobs) == 4 and len(await bot.app.service.quotas.ledger.user_charges(jobs[0].owner, 0.0)) == 4
    await bot.settled()


async def test_repeat_in_a_private_chat(bot: Bot) -> None:
    fake = bot.fake
    sent = fake.send_text(ANN.id, ANN, "a lighthouse --repeat 2")  # a plain message is an imagine here
    await fake.wait_until(lambda: len(_texts_and_photos(bot, ANN.id, sent.message_id)[1]) == 2, 15.0)
    texts, photos = _texts_and_photos(bot, ANN.id, sent.message_id)
    assert texts == ["2 jobs from your prompt (--repeat 2): a lighthouse"]
    for number, message_id in enumerate(photos, start=1):
        done = await bot.finished(ANN.id, message_id)
        assert (done.caption or "").startswith(f"{number}/2 · a lighthouse\n")
    await bot.settled()


@pytest.mark.parametrize(
    ("prompt", "told"),
    [
        ("a {red, green bird", "⚠️ Unbalanced braces: the { at character 3 is never closed with }."),
        ("a {1, 2, 3} {a, b} bird", "⚠️ This prompt expands to 6 jobs; the limit is 5."),
        ("a fox --repeat 0", "⚠️ --repeat must be between 1 and 4 (this bot's limit); got 0."),
        ("a fox --r 5", "⚠️ --r must be between 1 and 4 (this bot's limit); got 5."),
        ("a {red, green} fox --r 2", "⚠️ This prompt makes 4 jobs, charged only as a whole: more "
                                     "than the 3 allowed this hour. Nothing was started."),
    ],
)  # fmt: skip
async def test_a_bad_set_is_answered_and_nothing_is_made(
    make_bot: BotFactory, prompt: str, told: str
) -> None:
    limits = {"max_permutations": 5, "max_repeat": 4, "user_per_hour": 3, "exempt_chat_admins": False}
    async with make_bot(limits=limits) as bot:
        command = bot.fake.send_text(GROUP, ANN, f"/imagine@{BOT} {prompt}")
        answer = await bot.reply(GROUP, command.message_id)
        assert (answer.text or "").startswith(told)
        await bot.settled()
        assert [m for m in bot.replies(GROUP, command.message_id) if m.photo] == []
        assert await bot.app.service.recent(None, 10) == []
        assert bot.fake.calls("sendPhoto") == []


async def test_a_set_made_before_a_restart_is_shown_once_and_made_once(
    tmp_path: Path, fake: TelegramFake
) -> None:
    """The process stopped after storing the set, before replying: the command, received again after the
    restart, finds its jobs (made and charged once) and shows each of them once."""
    config = make_config(tmp_path, fake)
    command = fake.send_text(GROUP, ANN, f"/imagine@{BOT} a {{red, green}} kite --r 2")
    placement = Placement(platform="telegram", chat_id=str(GROUP), reply_to=str(command.message_id))
    owner = Owner(platform="telegram", user_id=str(ANN.id), name="Ann")
    async with build_app(config) as app, running(app):  # no frontend: as if killed before replying
        made, created = await app.service.imagine_many(
            Caller(owner),
            "a {red, green} kite --r 2",
            placement=placement,
            origin=f"telegram:{fake.last_update_id}",
        )
    assert created and len(made) == 4

    async with serving(config, fake) as bot:
        await fake.wait_until(lambda: len(_texts_and_photos(bot, GROUP, command.message_id)[1]) == 4, 15.0)
        texts, photos = _texts_and_photos(bot, GROUP, command.message_id)
        for message_id in photos:
            await bot.finished(GROUP, message_id)
        await bot.settled()
        jobs = await bot.app.service.recent(None, 10)
        assert sorted(job.id for job in jobs) == sorted(job.id for job in made)
        assert len(await bot.app.service.quotas.ledger.user_charges(owner, 0.0)) == 4
    assert texts == []  # the answer goes with a new set only: at most once
    assert len(photos) == 4 and len(fake.calls("sendPhoto")) == 4
