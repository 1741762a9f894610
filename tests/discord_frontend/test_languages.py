"""Each person answered in their language: the commands as Discord lists them (localized names and
descriptions from the catalogues), the app's locale, `/settings language` and `/admin language`.

The expected texts are computed from the real catalogues with `i18n.translate`; a small stand-in
catalogue (patched over `i18n.catalogue`) shows that a translated name Discord would refuse is not sent.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Iterator
from typing import Any

import discord
import pytest
from discord.app_commands import TranslationContext, TranslationContextLocation

from bot import i18n
from bot.discord_frontend import render
from bot.discord_frontend.commands import CatalogueTranslator
from bot.domain import Owner
from tests.discord_frontend.conftest import Discord
from tests.fakes.discord_api import FakeUser

NO_JOBS = "You have no jobs yet. Start one with /imagine."
RU_TEXTS = {
    "Generate a grid of four images from a prompt": "Сетка из четырёх картинок по описанию",
    "What to see; Midjourney flags such as --ar 16:9 work too": "Что нарисовать; флаги вроде --ar 16:9 тоже",
    "Shape of the result": "Форма результата",
    "portrait": "портрет",
    NO_JOBS: "У вас ещё нет задач. Начните с /imagine.",
    "This server's language is now {language}.": "Язык этого сервера теперь {language}.",
    "Only this server's admins can use /admin (members with Manage Server, or a role the bot's config "
    "names).": "Только администраторы этого сервера могут использовать /admin.",
}
RU_NAMES = {
    ("command name", "imagine"): "представь",
    ("option name", "prompt"): "запрос",
    ("command name", "jobs"): "Мои задачи",  # breaks Discord's name rule: must not be sent
}
NAME_RULE = re.compile(r"^[-_\w]{1,32}$")


class _Russian(gettext.NullTranslations):
    def gettext(self, message: str) -> str:
        return RU_TEXTS.get(message, message)

    def pgettext(self, context: str, message: str) -> str:
        return RU_NAMES.get((context, message), message)


@pytest.fixture
def russian(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A stand-in Russian catalogue."""
    real = i18n.catalogue
    stand_in = _Russian()
    monkeypatch.setattr(i18n, "catalogue", lambda locale: stand_in if locale == "ru" else real(locale))
    yield


def owner(user: FakeUser) -> Owner:
    return Owner(platform="discord", user_id=str(user.id))


def expected(message: str, name_context: str | None = None) -> dict[str, str]:
    """The localizations Discord should get for `message`, straight from the catalogues: one per
    Discord locale the bot speaks whose translation differs from the English (and, for a name, keeps
    Discord's rule)."""
    found = {}
    for locale in discord.Locale:
        ours = i18n.normalize(locale.value)
        if ours is None or ours == i18n.DEFAULT:
            continue
        if name_context is None:
            translated = i18n.translate(ours, message)
            usable = len(translated) <= 100 and bool(translated.strip())
        else:
            translated = i18n.translate_name(ours, name_context, message)
            usable = NAME_RULE.fullmatch(translated) is not None and translated == translated.lower()
        if translated != message and usable:
            found[locale.value] = translated
    return found


def check_options(options: list[dict[str, Any]], where: str) -> None:
    for option in options:
        subcommand = option["type"] in (1, 2)
        at = f"{where} {option['name']}"
        name_context = "command name" if subcommand else "option name"
        assert (option.get("name_localizations") or {}) == expected(option["name"], name_context), at
        assert (option.get("description_localizations") or {}) == expected(option["description"]), at
        for choice in option.get("choices") or []:
            assert (choice.get("name_localizations") or {}) == expected(choice["name"]), f"{at}={choice}"
        check_options(option.get("options") or [], at)


async def test_the_commands_carry_the_catalogues_localizations(discord_env: Discord) -> None:
    commands = {c["name"]: c for c in discord_env.fake.commands[discord_env.fake.guild_id]}
    for name, command in commands.items():
        assert (command.get("name_localizations") or {}) == expected(name, "command name"), name
        assert (command.get("description_localizations") or {}) == expected(command["description"]), name
        check_options(command.get("options") or [], name)
    imagine = commands["imagine"]
    # every language the bot speaks, under each of Discord's locales for it
    for locale in ("ru", "ja", "zh-CN", "es-ES", "es-419", "pt-BR", "de", "fr", "ko", "tr", "uk", "id"):
        assert imagine["description_localizations"][locale] != imagine["description"], locale
    assert imagine["description_localizations"]["ru"] == i18n.translate("ru", imagine["description"])
    assert imagine["name_localizations"]["ja"] == i18n.translate_name("ja", "command name", "imagine")
    settings = {o["name"]: o for o in commands["settings"]["options"]}
    languages = {c["value"]: c["name"] for c in settings["language"]["choices"]}
    assert languages == {**i18n.NAMES, "auto": "auto"}
    admin = {o["name"] for o in commands["admin"]["options"]}
    assert "language" in admin


@pytest.mark.usefixtures("russian")
async def test_the_translator_sends_nothing_for_unknown_or_english_locales() -> None:
    translator = CatalogueTranslator()
    context: Any = TranslationContext(TranslationContextLocation.other, None)
    text = discord.app_commands.locale_str("Generate a grid of four images from a prompt")
    assert await translator.translate(text, discord.Locale.american_english, context) is None
    assert await translator.translate(text, discord.Locale.russian, context) == RU_TEXTS[text.message]
    german = await translator.translate(text, discord.Locale.german, context)
    assert german == expected(text.message).get("de")
    name: Any = TranslationContext(TranslationContextLocation.command_name, None)
    imagine, jobs = discord.app_commands.locale_str("imagine"), discord.app_commands.locale_str("jobs")
    assert await translator.translate(imagine, discord.Locale.russian, name) == "представь"
    assert await translator.translate(jobs, discord.Locale.russian, name) is None  # "Мои задачи": refused


def seen(d: Discord, text: str) -> int:
    return sum(m.content == text for m in d.ephemeral())


async def answered(d: Discord, text: str, before: int) -> None:
    """`text` told once more than the `before` times it had been."""
    await d.told(lambda told: told == text, count=before + 1)


async def test_an_unknown_app_locale_is_answered_in_english(discord_env: Discord) -> None:
    d = discord_env
    await d.fake.slash_command(d.fake.guild_id, d.channel, d.alice, "jobs", locale="xx")
    assert await d.told(lambda text: text == NO_JOBS) == [NO_JOBS]
    russian = i18n.translate("ru", NO_JOBS)
    before = seen(d, russian)
    await d.fake.slash_command(d.fake.guild_id, d.channel, d.bob, "jobs", locale="ru")  # the app's own
    await answered(d, russian, before)


async def test_settings_language_is_stored_and_used_for_the_next_answers(discord_env: Discord) -> None:
    d = discord_env
    await d.command("settings", {"language": "ru"})
    (told,) = await d.told(lambda text: "Русский" in text)
    stored = await d.bot.app.service.settings(owner(d.alice))
    assert stored["language"] == "ru"
    with i18n.use("ru"):
        assert told == render.settings_text(stored, d.config.default_provider, "ru")
    russian = i18n.translate("ru", NO_JOBS)
    before = seen(d, russian)
    await d.command("jobs")  # the app still says English: the choice wins
    await answered(d, russian, before)
    await d.command("settings", {"language": "auto"})
    await d.told(lambda text: "auto (English" in text)
    before = seen(d, NO_JOBS)
    await d.command("jobs")
    await answered(d, NO_JOBS, before)


async def test_an_admin_sets_the_servers_language_for_the_members(discord_env: Discord) -> None:
    d = discord_env
    refusal = ("Only this server's admins can use /admin (members with Manage Server, or a role the bot's "
               "config names).")
    await d.command("admin language", {"value": "ru"}, user=d.bob)  # not an admin: refused, in English
    await d.told(lambda text: text == refusal)
    d.fake.make_admin(d.alice)
    done = i18n.translate("ru", "This server's language is now {language}.", language="Русский")
    await d.command("admin language", {"value": "ru"})
    await d.told(lambda text: text == done)  # answered in the new language
    russian = i18n.translate("ru", NO_JOBS)
    before = seen(d, russian)
    await d.command("jobs", user=d.bob)  # another member, whose app says English
    await answered(d, russian, before)
    translated_refusal = i18n.translate("ru", refusal)
    before = seen(d, translated_refusal)
    await d.command("admin language", {"value": "auto"}, user=d.bob)  # bob's refusal is in Russian now
    await answered(d, translated_refusal, before)
    german = i18n.translate("de", NO_JOBS)  # a member's own choice comes before the server's
    await d.command("settings", {"language": "de"}, user=d.bob)
    await d.told(lambda text: "Deutsch" in text)
    before = seen(d, german)
    await d.command("jobs", user=d.bob)
    await answered(d, german, before)
