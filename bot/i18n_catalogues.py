"""Keeping the catalogues in step with the code: `python -m bot.i18n_catalogues` (`make messages`)
extracts every marked message from `bot/` and `providers/` into `bot/locales/messages.pot` and merges
it into each language's `.po` (new messages arrive untranslated, gone ones are dropped), so a
translator only fills in the empty `msgstr`s. `tests/core/test_catalogues.py` uses `extract()` too.

For translating outside a `.po` editor: `python -m bot.i18n_catalogues export ru ru.json` writes the
untranslated messages of one language as JSON (`id`, `plural`, `context`, `comments`, `forms`: how many
plural forms the language has), and `... import ru ru.json` takes the same list back with each entry's
`str` filled in (a list of `forms` strings for a plural message).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from bot.i18n import CATALOGUES, DEFAULT, DOMAIN, LOCALES

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("bot", "providers")
#: The marking functions (bot/i18n.py) and the provider errors, whose first argument is a message id.
PROVIDER_ERRORS = ("ProviderError", "ProviderAuthError", "ProviderRejected", "ProviderQuotaExceeded",
                   "ProviderBusy", "ProviderRateLimited", "ProviderUnavailable", "ProviderOutcomeUnknown",
                   "ProviderProtocolError")  # fmt: skip
KEYWORDS: dict[str, tuple[int | tuple[int, str], ...] | None] = {"t": None, "tn": (1, 2), "N_": None,
                                                             "C_": ((1, "c"), 2), "translate": (2,),
                                               **dict.fromkeys(PROVIDER_ERRORS)}
#: The code, and the web pages' Jinja templates (whose `{{ t("...") }}` calls are the same functions).
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2.ext:babel_extract")]
TEMPLATE = CATALOGUES / f"{DOMAIN}.pot"


def extract() -> Catalog:
    """Every message id the code marks, with where it is used."""
    catalog = Catalog(project="imagine-bot", fuzzy=False)
    for source in SOURCES:
        for filename, lineno, message, comments, context in extract_from_dir(
            ROOT / source, method_map=METHODS, keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",), strip_comment_tags=True,
        ):
            catalog.add(message, locations=[(f"{source}/{filename}", lineno)], auto_comments=comments,
                        context=context)  # fmt: skip
    return catalog


def path_of(locale: str) -> Path:
    return CATALOGUES / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def update() -> None:
    template = extract()
    TEMPLATE.parent.mkdir(parents=True, exist_ok=True)
    with TEMPLATE.open("wb") as out:
        write_po(out, template, width=100, omit_header=False)
    for locale in LOCALES:
        if locale == DEFAULT:
            continue
        path = path_of(locale)
        if path.exists():
            with path.open("rb") as po:
                catalog = read_po(po, locale=locale)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=locale, project="imagine-bot", fuzzy=False)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with path.open("wb") as out:
            write_po(out, catalog, width=100)
        missing = sum(1 for m in catalog if m.id and not all(m.string if isinstance(m.string, tuple)
                                                            else (m.string,)))  # fmt: skip
        print(f"{locale}: {len(catalog)} messages, {missing} untranslated", file=sys.stderr)


def _read(locale: str) -> Catalog:
    with path_of(locale).open("rb") as po:
        return read_po(po, locale=locale)


def export(locale: str, out: Path) -> None:
    catalog = _read(locale)
    entries = []
    for message in catalog:
        forms = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if not message.id or all(forms):
            continue
        single, plural = (message.id, None) if isinstance(message.id, str) else message.id[:2]
        entries.append({"id": single, "plural": plural, "context": message.context,
                        "comments": list(message.auto_comments), "forms": catalog.num_plurals})  # fmt: skip
    out.write_text(json.dumps(entries, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{locale}: {len(entries)} untranslated messages written to {out}", file=sys.stderr)


def import_(locale: str, source: Path) -> None:
    catalog = _read(locale)
    entries: list[dict[str, Any]] = json.loads(source.read_text(encoding="utf-8"))
    for entry in entries:
        message = catalog.get(entry["id"], context=entry.get("context"))
        if message is None or not entry.get("str"):
            continue
        message.string = tuple(entry["str"]) if isinstance(message.id, tuple) else entry["str"]
    with path_of(locale).open("wb") as out:
        write_po(out, catalog, width=100)


if __name__ == "__main__":
    match sys.argv[1:]:
        case []:
            update()
        case ["export", locale, out]:
            export(locale, Path(out))
        case ["import", locale, source]:
            import_(locale, Path(source))
        case _:
            sys.exit("usage: python -m bot.i18n_catalogues [export|import LOCALE FILE]")
