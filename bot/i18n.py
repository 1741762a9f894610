"""Every user-facing word in the person's language.

- **Catalogues**: gettext `.po` files under `bot/locales/<locale>/LC_MESSAGES/messages.po`, read with
  Babel when a locale is first used. The English text in the code is the message id, so English needs
  no catalogue, and a message a catalogue lacks shows in English (a test keeps every catalogue whole:
  `tests/core/test_catalogues.py`). `make messages` extracts the ids from the code into
  `bot/locales/messages.pot` and merges them into every catalogue.
- **Marking**: `t("Hello {name}", name=...)` translates into the current locale and then fills the
  named placeholders (`str.format`); `tn(singular, plural, n)` picks the plural form (`{n}` is filled);
  `N_("...")` marks a module-level constant for extraction, translated where it is shown (`t(CONST)`).
  The first argument is always a literal, never an f-string (the extractor only sees literals).
- **The current locale** is a context variable, set with `use(locale)` where a piece of work starts:
  the frontends around each update/interaction (`Caller.locale`), the job-message layer around each
  job it renders (`Job.locale`). Code in between calls `t()` without passing the locale along.
- **Which locale**: `resolve()` takes the person's own choice (`/settings language`), then their chat's
  (set by its admins), then the platform's (Discord `interaction.locale`, Telegram `language_code`),
  then English. `normalize()` maps any platform's tag onto one of `LOCALES` (unknown: None).
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import io
import string
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DEFAULT = "en"
#: The languages the bot speaks, as Babel locale identifiers, with each one's own name for itself.
NAMES: dict[str, str] = {
    "en": "English",
    "ru": "Русский",
    "zh_Hans": "简体中文",
    "es": "Español",
    "pt_BR": "Português (Brasil)",
    "de": "Deutsch",
    "fr": "Français",
    "ja": "日本語",
    "ko": "한국어",
    "tr": "Türkçe",
    "uk": "Українська",
    "id": "Bahasa Indonesia",
}
LOCALES: tuple[str, ...] = tuple(NAMES)
CATALOGUES = Path(__file__).parent / "locales"
DOMAIN = "messages"

#: Tags that are not simply "<language>" or "<language>-<region>" of a locale above: Simplified Chinese
#: under any region or script (Traditional Chinese readers get it too: closer than English), Portuguese
#: (Brazil's is the one offered), Spanish of any region, Indonesian's old code.
_ALIASES = {"zh": "zh_Hans", "pt": "pt_BR", "es": "es", "in": "id"}
_BY_LOWER = {locale.lower(): locale for locale in LOCALES}

_current: ContextVar[str] = ContextVar("locale", default=DEFAULT)


def normalize(tag: str | None) -> str | None:
    """One of `LOCALES` for a platform's language tag ("ru", "pt-BR", "zh-CN", "es-419", "en_US",
    "zh-hans"), or None for a tag the bot does not speak (or none at all)."""
    if not tag:
        return None
    cleaned = tag.strip().replace("-", "_").lower()
    if cleaned in _BY_LOWER:
        return _BY_LOWER[cleaned]
    language = cleaned.split("_", 1)[0]
    return _ALIASES.get(language) or _BY_LOWER.get(language)


def resolve(*choices: str | None) -> str:
    """The first of `choices` (most specific first: the person's, the chat's, the platform's) the bot
    speaks; English when none."""
    for choice in choices:
        locale = normalize(choice)
        if locale:
            return locale
    return DEFAULT


def accepted(header: str | None) -> str | None:
    """The tag a browser's `Accept-Language` ranks highest among those the bot speaks ("de-CH,fr;q=0.9"
    -> "de-CH"), for `resolve()`; None when it names none of them. Malformed parts are skipped."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, weight = part.strip().partition(";")
        try:
            quality = float(weight.strip().removeprefix("q=")) if weight else 1.0
        except ValueError:
            continue
        if quality > 0 and normalize(tag) is not None:
            ranked.append((-quality, position, tag.strip()))
    return min(ranked)[2] if ranked else None


def html_lang(locale: str) -> str:
    """A locale as HTML's `lang` attribute wants it (BCP 47): "pt_BR" -> "pt-BR", "zh_Hans" -> "zh-Hans"."""
    return locale.replace("_", "-")


def current() -> str:
    return _current.get()


@contextlib.contextmanager
def use(locale: str | None) -> Iterator[str]:
    """Write in `locale` (None: English) inside the block."""
    chosen = normalize(locale) or DEFAULT
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


@functools.cache
def catalogue(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue of `locale` (English, or a locale without a catalogue: the ids as they are)."""
    path = CATALOGUES / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if locale == DEFAULT or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as po:
        parsed = read_po(po, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, parsed)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def placeholders(text: str) -> set[str]:
    """The named `{fields}` of a message (what its translations must keep)."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _fill(translated: str, original: str, params: dict[str, object]) -> str:
    if not params:
        return translated
    try:
        return translated.format(**params)
    except (KeyError, IndexError, ValueError):  # a broken translation (the catalogue test catches it)
        return original.format(**params)


def translate(locale: str, message: str, /, **params: object) -> str:
    """`message` in `locale`, its placeholders filled."""
    return _fill(catalogue(locale).gettext(message), message, params)


def t(message: str, /, **params: object) -> str:
    """`message` in the current locale, its placeholders filled."""
    return translate(_current.get(), message, **params)


def tn(singular: str, plural: str, n: int, /, **params: object) -> str:
    """The form of a counted message that `n` takes in the current locale; `{n}` is filled with `n`."""
    translated = catalogue(_current.get()).ngettext(singular, plural, n)
    return _fill(translated, singular if n == 1 else plural, {"n": n, **params})


def translate_name(locale: str, context: str, message: str) -> str:
    """A name marked with `C_` (a Discord command's, an option's) in `locale`."""
    return catalogue(locale).pgettext(context, message)


def C_(context: str, message: str, /) -> str:
    """Mark a name that must be translated apart from the same words elsewhere (`context` says what
    it is, e.g. "command name"): translated with `translate_name`."""
    return message


def N_(message: str, /) -> str:
    """Mark `message` for the catalogues without translating it yet (module-level constants)."""
    return message
