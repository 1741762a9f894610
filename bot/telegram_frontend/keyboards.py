"""Inline keyboards: job buttons (ActionRef payloads) and the /settings keyboard (SettingRef payloads).

All state is in the callback data and the database, so buttons keep working across restarts.
Every payload stays within Telegram's 64-byte callback_data limit (checked in `SettingRef.pack`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

from bot import i18n, languages
from bot.i18n import t
from bot.telegram_frontend.render import Rows

CALLBACK_LIMIT = 64  # bytes
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "4:5", "16:9", "9:16")
SPEEDS = ("relax", "fast", "turbo")
LANGUAGE_MENU = "language_menu"  # not a setting: the button that opens the list of languages
REMIX = ("off", "on")  # the service's REMIX_SETTINGS, in button order
LANGUAGES = (languages.AUTO, *i18n.LOCALES)  # the language choices, in button order
#: "lm" is the Language button of /settings: it opens the list of languages (`language_rows`).
_SETTING_KEYS = {"p": "provider", "ar": "aspect_ratio", "s": "speed", "rx": "remix", "l": "language",
                 "lm": LANGUAGE_MENU}  # fmt: skip
_SETTING_RE = re.compile(r"st:(?P<user>-?[0-9]{1,20}):(?P<key>p|ar|s|rx|l|lm):(?P<index>[0-9]{1,2})")
SETTING_PATTERN = r"^st:"
REMIX_CANCEL = "rx:cancel"  # the Cancel button of a Remix prompt request (the message says which)
REMIX_CANCEL_PATTERN = r"^rx:cancel$"


def markup(rows: Rows) -> InlineKeyboardMarkup | None:
    """The inline keyboard for `rows`, or None (no keyboard) when there are none."""
    if not rows:
        return None
    return InlineKeyboardMarkup([[_button(label, data) for label, data in row] for row in rows])


def _button(label: str, data: str) -> InlineKeyboardButton:
    """A press (callback data), or a link: `url:<url>` or `webapp:<url>` (a Web App, private chats)."""
    if data.startswith("webapp:"):
        return InlineKeyboardButton(label, web_app=WebAppInfo(data.removeprefix("webapp:")))
    if data.startswith("url:"):
        return InlineKeyboardButton(label, url=data.removeprefix("url:"))
    return InlineKeyboardButton(label, callback_data=data)


@dataclass(frozen=True)
class SettingRef:
    """A /settings button: whose settings, which key, which option (by index into its choices)."""

    user_id: str
    key: str  # provider | aspect_ratio | speed | remix | language (or LANGUAGE_MENU)
    index: int

    def pack(self) -> str:
        code = next(c for c, k in _SETTING_KEYS.items() if k == self.key)
        data = f"st:{self.user_id}:{code}:{self.index}"
        assert len(data.encode()) <= CALLBACK_LIMIT
        return data

    @classmethod
    def unpack(cls, data: str) -> SettingRef | None:
        match = _SETTING_RE.fullmatch(data)
        if match is None:
            return None
        return cls(match["user"], _SETTING_KEYS[match["key"]], int(match["index"]))


def choices(key: str, providers: Sequence[str]) -> Sequence[str]:
    return {"provider": providers, "aspect_ratio": ASPECT_RATIOS, "speed": SPEEDS, "remix": REMIX,
            "language": LANGUAGES, LANGUAGE_MENU: ("",)}[key]  # fmt: skip


def language_name(code: str | None) -> str:
    """A language as the /settings message and buttons show it: its own name, or Auto."""
    if not code or code == languages.AUTO:
        # TRANSLATORS: the /settings choice "answer me in my Telegram app's language" (a button label)
        return t("Auto (your app's language)")
    return i18n.NAMES.get(code, code)


def settings_rows(user_id: str, current: dict[str, str], providers: Sequence[str]) -> Rows:
    """One row per setting; the current choice is ticked (Remix is off until it is turned on); last, the
    Language button (it opens `language_rows`)."""
    rows = []
    chosen = {"remix": "off"} | current
    for key in ("provider", "aspect_ratio", "speed", "remix"):
        options = list(choices(key, providers))[:8]  # Telegram: at most 8 buttons per row
        labels = [_remix_label(option) if key == "remix" else option for option in options]
        rows.append(tuple(
            (f"✓ {label}" if chosen.get(key) == option else label, SettingRef(user_id, key, i).pack())
            for i, (option, label) in enumerate(zip(options, labels, strict=True))
        ))  # fmt: skip
    # TRANSLATORS: the /settings button that opens the list of languages; {language} is the current one
    label = t("🌐 Language: {language}", language=language_name(current.get(languages.KEY)))
    rows.append(((label, SettingRef(user_id, LANGUAGE_MENU, 0).pack()),))
    return tuple(rows)


def _remix_label(option: str) -> str:
    # TRANSLATORS: /settings buttons turning Remix off and on (keep them short)
    return t("Remix off") if option == "off" else t("Remix on")


def language_rows(user_id: str, current: str | None) -> Rows:
    """The list of languages (two per row), the current choice ticked."""
    chosen = current or languages.AUTO
    buttons = [(f"✓ {language_name(code)}" if code == chosen else language_name(code),
                SettingRef(user_id, "language", i).pack()) for i, code in enumerate(LANGUAGES)]  # fmt: skip
    return tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))


def remix_cancel_rows() -> Rows:
    # TRANSLATORS: the button closing a Remix request without making a job
    return (((t("Cancel"), REMIX_CANCEL),),)
