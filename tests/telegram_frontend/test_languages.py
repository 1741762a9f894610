"""Languages on Telegram: the command menu in every language, the app's language, /settings language
and a group's /admin language, as the people in the chat see them. The expected texts are the
catalogues' (`i18n.translate`), so the tests hold before and after the translations are filled in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot import i18n
from bot.telegram_frontend.app import ADMIN_COMMANDS, COMMANDS
from tests.fakes.telegram_api import FakeUser
from tests.telegram_frontend.conftest import ANN, BOB, GROUP, Bot, BotFactory, labels

NO_JOBS = "You have no jobs yet. Start one with /imagine <prompt>."


@dataclass
class AppUser(FakeUser):
    """A person whose Telegram app says which language it is in."""

    language_code: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "language_code": self.language_code}


async def say(bot: Bot, chat_id: int, user: FakeUser, text: str) -> str:
    sent = bot.fake.send_text(chat_id, user, text)
    reply = await bot.reply(chat_id, sent.message_id)
    return reply.text or reply.caption or ""


def published(bot: Bot, scope: str, language: str) -> list[dict[str, Any]]:
    return bot.fake.commands.get(json.dumps([{"type": scope}, language], sort_keys=True), [])


async def test_the_command_menu_is_published_in_every_language(bot: Bot) -> None:
    await bot.fake.wait_until(lambda: published(bot, "all_chat_administrators", "id"))
    codes = {json.loads(key)[1] for key in bot.fake.commands}
    assert codes == {"", "ru", "zh", "es", "pt", "de", "fr", "ja", "ko", "tr", "uk", "id"}
    web = bot.app.web is not None
    for locale in i18n.LOCALES:
        code = "" if locale == "en" else locale.split("_")[0].lower()
        for scope, commands in (("default", COMMANDS), ("all_chat_administrators", ADMIN_COMMANDS)):
            expected = [{"command": name, "description": i18n.translate(locale, text)}
                        for name, text in commands if name != "web" or web]  # fmt: skip
            assert published(bot, scope, code) == expected, (scope, locale)
    assert published(bot, "default", "")[0]["description"] == "Generate four images from a prompt"


async def test_an_app_language_the_bot_does_not_speak_gets_english(bot: Bot) -> None:
    stranger = AppUser(51, "Xena", language_code="xx-unknown")
    bot.fake.open_chat(stranger.id, "private", user=stranger)
    assert await say(bot, stranger.id, stranger, "/jobs") == NO_JOBS
    russian = AppUser(52, "Ivan", language_code="ru")
    bot.fake.open_chat(russian.id, "private", user=russian)
    assert await say(bot, russian.id, russian, "/jobs") == i18n.translate("ru", NO_JOBS)


async def test_the_language_chosen_in_settings_answers_the_next_command(bot: Bot) -> None:
    fake = bot.fake
    command = fake.send_text(ANN.id, ANN, "/settings")
    settings = await bot.reply(ANN.id, command.message_id)
    assert "Language: Auto (your app's language)" in (settings.text or "")
    fake.press(ANN.id, settings.message_id, ANN, text="🌐 Language: Auto (your app's language)")
    listed = await bot.until(ANN.id, settings.message_id, lambda m: ["Русский", "简体中文"] in labels(m))
    assert labels(listed)[0] == ["✓ Auto (your app's language)", "English"]
    fake.press(ANN.id, settings.message_id, ANN, text="Русский")
    ticked = i18n.translate("ru", "🌐 Language: {language}", language="Русский")
    await bot.until(ANN.id, settings.message_id, lambda m: [ticked] in labels(m))
    stored = await bot.app.service.settings(owner := _owner(ANN))
    assert stored.get("language") == "ru", owner
    assert await say(bot, ANN.id, ANN, "/jobs") == i18n.translate("ru", NO_JOBS)
    assert await say(bot, BOB.id, BOB, "/jobs") == NO_JOBS  # only hers


async def test_a_group_admin_sets_the_language_of_the_chat(make_bot: BotFactory) -> None:
    async with make_bot() as bot:
        bot.fake.make_admin(GROUP, ANN)
        answer = await say(bot, GROUP, ANN, "/admin language ja")
        assert answer == i18n.translate("ja", "This chat's language is now {language}.", language="日本語")
        assert await say(bot, GROUP, BOB, "/jobs") == i18n.translate("ja", NO_JOBS)
        assert await say(bot, BOB.id, BOB, "/jobs") == NO_JOBS  # the group's choice, not his private chat's
        back = await say(bot, GROUP, ANN, "/admin language auto")
        assert back == "This chat's language is now each person's app's language."
        assert await say(bot, GROUP, BOB, "/jobs") == NO_JOBS
        refused = await say(bot, GROUP, BOB, "/admin language ru")
        assert refused == "Sorry, /admin is only for the administrators of this chat."


def _owner(user: FakeUser) -> Any:
    from bot.domain import Owner

    return Owner(platform="telegram", user_id=str(user.id))
