"""The catalogues are whole: every message the code marks is translated in every language, with the
same placeholders, and every marked call is one the extractor can see. A new message that is not yet
translated everywhere fails here (run `make messages`, then fill in the empty entries)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from bot import i18n
from bot.i18n_catalogues import ROOT, SOURCES, extract, path_of

LANGUAGES = [locale for locale in i18n.LOCALES if locale != i18n.DEFAULT]
#: What Discord accepts as a command or option name (lowercase, no spaces, at most 32).
DISCORD_NAME = re.compile(r"^[-_\w]{1,32}$")


@pytest.fixture(scope="module")
def template() -> Catalog:
    return extract()


def _catalogue(locale: str) -> Catalog:
    with path_of(locale).open("rb") as po:
        return read_po(po, locale=locale)


def _forms(string: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(string) if isinstance(string, tuple | list) else (string,)


def test_twelve_languages() -> None:
    assert i18n.LOCALES == ("en", "ru", "zh_Hans", "es", "pt_BR", "de", "fr", "ja", "ko", "tr", "uk", "id")


def test_the_code_marks_messages(template: Catalog) -> None:
    ids = {message.id if isinstance(message.id, str) else message.id[0] for message in template if message.id}
    assert "Something went wrong on our side; please try again. (The details are in the bot's log.)" in ids
    assert len(ids) > 200


@pytest.mark.parametrize("locale", LANGUAGES)
def test_every_message_is_translated_with_its_placeholders(template: Catalog, locale: str) -> None:
    catalogue = _catalogue(locale)
    missing, broken = [], []
    for message in template:
        if not message.id:
            continue
        translated = catalogue.get(message.id, context=message.context)
        forms = _forms(translated.string) if translated is not None else ()
        if not forms or not all(forms):
            missing.append(message.id)
            continue
        sources = _forms(message.id)
        expected = set().union(*(i18n.placeholders(source) for source in sources))
        for form in forms:
            found = i18n.placeholders(form)
            # a plural form may leave out the count ("一つ"), never anything else, nor add one
            if not found <= expected or (expected - {"n"}) - found:
                broken.append((message.id, form))
    assert not missing, f"{locale}: {len(missing)} messages not translated, e.g. {missing[:5]}"
    assert not broken, f"{locale}: placeholders differ from the English: {broken[:5]}"


@pytest.mark.parametrize("locale", LANGUAGES)
def test_plural_forms_follow_the_language(locale: str) -> None:
    catalogue = _catalogue(locale)
    assert catalogue.num_plurals == Catalog(locale=locale).num_plurals
    for message in catalogue:
        if message.id and isinstance(message.id, tuple) and message.string:
            assert len(_forms(message.string)) == catalogue.num_plurals, message.id


@pytest.mark.parametrize("locale", LANGUAGES)
def test_command_names_are_names_discord_accepts(template: Catalog, locale: str) -> None:
    for message in template:
        if message.context in ("command name", "option name"):
            name = i18n.translate_name(locale, message.context, str(message.id))
            assert DISCORD_NAME.match(name) and name == name.lower(), (locale, message.id, name)


def _marked_calls() -> list[tuple[str, int, ast.expr]]:
    calls = []
    for source in SOURCES:
        for path in sorted(Path(ROOT, source).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id in ("t", "tn", "N_", "C_") and node.args):
                    calls.append((str(path.relative_to(ROOT)), node.lineno, node.args[0]))
    return calls


def test_marked_messages_are_literals_the_extractor_sees() -> None:
    """`t(f"...")` or `t("a" + b)` would be shown untranslated, and no catalogue would know it."""
    calls = _marked_calls()
    assert calls
    bad = [(path, line) for path, line, arg in calls if isinstance(arg, ast.JoinedStr | ast.BinOp)]
    assert not bad


def test_a_message_no_catalogue_has_is_shown_in_english() -> None:
    with i18n.use("ja"):
        assert i18n.t("No such message {x}", x=1) == "No such message 1"
    with i18n.use("xx"):
        assert i18n.current() == "en"
