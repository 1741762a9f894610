"""A whole flow in Russian and in Japanese, as the chat shows it: /help, an /imagine's messages from the
first reply to the grid, U2 and its answer, the upscale's buttons, a mistake, /settings; and a group
whose admins chose Japanese for a member whose app says nothing.

What each message should say is rendered by the same code under the person's locale, and the text
must be in that script: so a message left in English (not marked, not translated, or rendered outside
the job's locale) fails here."""

from __future__ import annotations

import re

import pytest

from bot import i18n, presentation
from bot.telegram_frontend import render
from tests.fakes.telegram_api import FakeUser
from tests.telegram_frontend.conftest import BOT, GROUP, Bot, labels

SCRIPTS = {"ru": re.compile(r"[А-Яа-яЁё]"), "ja": re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")}
PEOPLE = {"ru": FakeUser(61, "Иван", "ivan", language_code="ru"),
          "ja": FakeUser(62, "Haruto", "haruto", language_code="ja-JP")}  # fmt: skip


def written_in(locale: str, text: str | None) -> bool:
    return bool(text) and bool(SCRIPTS[locale].search(text or ""))


@pytest.mark.parametrize("locale", ["ru", "ja"])
async def test_a_whole_flow_in_the_persons_language(bot: Bot, locale: str) -> None:
    fake, person = bot.fake, PEOPLE[locale]
    chat = person.id

    command = fake.send_text(chat, person, "/help")
    shown = await bot.reply(chat, command.message_id)
    with i18n.use(locale):
        assert shown.text == render.help_text(BOT)
    assert written_in(locale, shown.text) and "I turn prompts into images." not in (shown.text or "")

    command = fake.send_text(chat, person, "/imagine a red fox in snow --ar 3:2")
    first = await bot.reply(chat, command.message_id)
    assert written_in(locale, first.caption.splitlines()[1] if first.caption else None)  # "Starting…"
    grid = await bot.finished(chat, first.message_id)
    job = await bot.job(chat, grid)
    assert job.locale == locale
    with i18n.use(locale):
        assert grid.caption == render.caption(job)
        expected_labels = [[label for label, _ in row] for row in render.job_rows(job)]
    assert labels(grid) == expected_labels and labels(grid)[0] == ["U1", "U2", "U3", "U4"]

    query = fake.press(chat, grid.message_id, person, text="U2")
    upscale_message = await bot.reply(chat, grid.message_id)
    assert written_in(locale, fake.answered(query)["text"])  # "Upscaling U2…"
    upscale = await bot.finished(chat, upscale_message.message_id)
    upscaled = await bot.job(chat, upscale)
    with i18n.use(locale):
        rows = [[button.label for button in row] for row in presentation.buttons(upscaled)]
    assert labels(upscale) == rows
    assert any(written_in(locale, label) for row in rows for label in row)  # "Vary (Strong)" ...

    command = fake.send_text(chat, person, "/imagine a fox --ar 0:3")
    mistake = await bot.reply(chat, command.message_id)
    assert mistake.text and mistake.text.startswith("⚠️") and written_in(locale, mistake.text)

    command = fake.send_text(chat, person, "/settings")
    settings = await bot.reply(chat, command.message_id)
    assert written_in(locale, settings.text)
    await bot.settled()


async def test_a_group_in_japanese_by_its_admins_choice(bot: Bot) -> None:
    fake = bot.fake
    admin, member = FakeUser(70, "Admin"), FakeUser(71, "Mia")  # their apps send no language
    fake.make_admin(GROUP, admin)

    command = fake.send_text(GROUP, member, f"/imagine@{BOT} a lighthouse")
    first = await bot.reply(GROUP, command.message_id)
    assert not written_in("ja", first.caption)  # English until the admins choose
    await bot.finished(GROUP, first.message_id)

    command = fake.send_text(GROUP, admin, f"/admin@{BOT} language ja")
    answer = await bot.reply(GROUP, command.message_id)
    assert written_in("ja", answer.text), answer.text

    command = fake.send_text(GROUP, member, f"/imagine@{BOT} a lighthouse --ar 0:3")
    mistake = await bot.reply(GROUP, command.message_id)
    assert written_in("ja", mistake.text)

    command = fake.send_text(GROUP, member, f"/imagine@{BOT} a lighthouse")
    grid = await bot.finished(GROUP, (await bot.reply(GROUP, command.message_id)).message_id)
    job = await bot.job(GROUP, grid)
    assert job.locale == "ja"
    with i18n.use("ja"):
        assert grid.caption == render.caption(job)
    await bot.settled()
