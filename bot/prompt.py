"""Midjourney-style prompt parsing: text, leading image URLs and `--flags`, each checked clearly.

Which flags exist and which `PromptParams` field each fills is `providers.base.FLAG_FIELDS`; this
module knows how they are typed (aliases) and which values they take. The bot's own flags are read
here too and never reach a provider: the speeds, `--remix`, and `--repeat N` (`--r`), which makes the
service run the prompt N times. Given the chosen provider's
`FlagPolicy`, a flag it cannot serve is refused here, naming the provider and what it supports.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.errors import InvalidPrompt, shown
from bot.i18n import N_, t
from providers.base import FLAG_FIELDS, Flag, FlagPolicy, PromptParams, Speed

_URL_RE = re.compile(r"^https?://\S+$", re.IGNORECASE)
_RATIO_RE = re.compile(r"^([1-9][0-9]{0,2}):([1-9][0-9]{0,2})$")
_STYLE_CODE_RE = re.compile(r"^[0-9]{1,20}(?:::-?[0-9]+(?:\.[0-9]+)?)?$")  # 123 or 123::2 (a weight)
_PROFILE_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VERSIONS = ("1", "2", "3", "4", "5", "5.0", "5.1", "5.2", "6", "6.0", "6.1", "7", "7.0")
_NIJI = ("4", "5", "6", "7")
_QUALITY = (0.25, 0.5, 1.0, 2.0, 4.0)
_STYLES = ("raw", "cute", "expressive", "original", "scenic", "4a", "4b", "4c")
_SPEEDS: dict[str, Speed] = {"relax": "relax", "fast": "fast", "turbo": "turbo"}
_REPEAT = ("r", "repeat")
MAX_REPEAT = 40  # Midjourney's own ceiling for --repeat; `limits.max_repeat` may set a lower one
_REMIX = "remix"  # --remix: a bot switch like the speeds (Midjourney's Remix is a setting, not a flag)

Reader = Callable[[str, str], Any]  # (the flag as typed, its value) -> the PromptParams value


@dataclass(frozen=True)
class ParsedPrompt:
    params: PromptParams
    speed: Speed | None
    remix: bool = False  # --remix: the job's variations, rerolls and pans ask for the prompt first
    repeat: int = 1  # --repeat N: how many jobs the prompt makes (each charged)


def _int_range(low: int, high: int) -> Reader:
    def parse(flag: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            message = t("--{flag} takes a whole number from {low} to {high}, not '{value}'.", flag=flag,
                        low=low, high=high, value=value)
            raise InvalidPrompt(message) from None
        if not low <= number <= high:
            raise InvalidPrompt(t("--{flag} must be between {low} and {high}; got {number}.", flag=flag,
                                  low=low, high=high, number=number))
        return number

    return parse


def _choice(options: tuple[str, ...]) -> Reader:
    def parse(flag: str, value: str) -> str:
        if value.lower() not in options:
            raise InvalidPrompt(t("--{flag} must be one of {options}; got '{value}'.", flag=flag,
                                  options=", ".join(options), value=value))
        return value.lower()

    return parse


def _words(kind: str, valid: Callable[[str], bool], most: int = 50) -> Reader:
    """A list of space-separated values, each `valid`; empty is the flag alone (checked by the caller)."""

    def parse(flag: str, value: str) -> tuple[str, ...]:
        words = tuple(value.split())
        bad = next((word for word in words if not valid(word)), None)
        if bad is not None:
            raise InvalidPrompt(t("--{flag} takes {kind}, not '{value}'.", flag=flag, kind=t(kind),
                                  value=bad))
        if len(words) > most:
            raise InvalidPrompt(t("--{flag} takes {kind}; got {count} values.", flag=flag, kind=t(kind),
                                  count=len(words)))
        return words

    return parse


def _aspect(flag: str, value: str) -> str:
    match = _RATIO_RE.match(value)
    if match is None:
        raise InvalidPrompt(t("--{flag} takes a ratio like 16:9 (whole numbers), not '{value}'.", flag=flag,
                              value=value))
    w, h = int(match[1]), int(match[2])
    if max(w, h) / min(w, h) > 8:
        raise InvalidPrompt(t("--{flag} {value} is too extreme; the long side may be at most 8x the short.",
                              flag=flag, value=value))
    return f"{w}:{h}"


def _quality(flag: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number not in _QUALITY:
        raise InvalidPrompt(t("--{flag} must be one of .25, .5, 1, 2 or 4; got '{value}'.", flag=flag,
                              value=value))
    return number


def _image_weight(flag: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidPrompt(t("--{flag} takes a number from 0 to 3, not '{value}'.", flag=flag,
                              value=value)) from None
    if not 0 <= number <= 3:
        raise InvalidPrompt(t("--{flag} must be between 0 and 3; got {value}.", flag=flag, value=value))
    return number


def _is_url(word: str) -> bool:
    return _URL_RE.match(word) is not None


def _is_code(word: str) -> bool:
    return _PROFILE_CODE_RE.match(word) is not None


def _is_style(word: str) -> bool:
    return word.lower() == "random" or _is_url(word) or _STYLE_CODE_RE.match(word) is not None


#: How each flag's value is read (ranges as Midjourney documents them; see the README's flag table).
_READERS: dict[Flag, Reader] = {
    Flag.ASPECT: _aspect,
    Flag.VERSION: _choice(_VERSIONS),
    Flag.NIJI: _choice(_NIJI),
    Flag.STYLIZE: _int_range(0, 1000),
    Flag.CHAOS: _int_range(0, 100),
    Flag.QUALITY: _quality,
    Flag.SEED: _int_range(0, 4294967295),
    Flag.NO: lambda flag, value: value,
    Flag.WEIRD: _int_range(0, 3000),
    Flag.IMAGE_WEIGHT: _image_weight,
    Flag.STYLE: _choice(_STYLES),
    Flag.STYLE_REF: _words(N_("image URLs, style codes (numbers) or 'random'"), _is_style),
    Flag.STYLE_WEIGHT: _int_range(0, 1000),
    Flag.STYLE_VERSION: _int_range(1, 6),
    Flag.CHARACTER_REF: _words(N_("image URLs"), _is_url),
    Flag.CHARACTER_WEIGHT: _int_range(0, 100),
    Flag.OMNI_REF: _words(N_("one image URL"), _is_url, most=1),
    Flag.OMNI_WEIGHT: _int_range(1, 1000),
    Flag.PROFILE: _words(N_("profile or moodboard codes (letters and digits)"), _is_code),
    Flag.EXPERIMENTAL: _int_range(0, 100),
    Flag.STOP: _int_range(10, 100),
    Flag.MOTION: _choice(("low", "high")),
}
_SWITCHES = frozenset({Flag.TILE, Flag.DRAFT, Flag.VIDEO})
_LISTS = frozenset({Flag.NO, Flag.STYLE_REF, Flag.CHARACTER_REF, Flag.OMNI_REF, Flag.PROFILE})
#: Flags that may stand alone, and their value then: --niji is 6, --p the default profile.
_BARE: dict[Flag, Any] = {Flag.NIJI: "6", Flag.PROFILE: (), Flag.STYLE_REF: (), Flag.OMNI_REF: ()}
#: --sref / --oref alone mean "the images given with the prompt": only an adapter that maps them
#: can do that; elsewhere they need their value (described here).
_REF_VALUES = {Flag.STYLE_REF: N_("--{flag} needs image URLs, style codes or 'random', e.g. {example}."),
               Flag.OMNI_REF: N_("--{flag} needs an image URL, e.g. {example}.")}
_ALIASES: dict[str, Flag] = {flag.value: flag for flag in Flag} | {
    "aspect": Flag.ASPECT,
    "version": Flag.VERSION,
    "stylize": Flag.STYLIZE,
    "chaos": Flag.CHAOS,
    "quality": Flag.QUALITY,
    "w": Flag.WEIRD,
    "profile": Flag.PROFILE,
}


@dataclass(frozen=True)
class _Provider:
    """The provider the prompt is for: its name (for messages) and its flag policy (None: any)."""

    name: str | None
    policy: FlagPolicy | None

    def serves(self, flag: Flag) -> bool:
        return self.policy is None or self.policy.serves(flag)

    def maps(self, flag: Flag) -> bool:
        return self.policy is None or flag in self.policy.mapped

    def supported(self) -> str:
        """What the provider takes; without one, every flag (the speed switches are the bot's own)."""
        flags = [f"--{flag}" for flag in Flag if self.serves(flag)]
        if self.name is None:
            own = [f"--{name}" for name in (*_SPEEDS, _REMIX, _REPEAT[1])]
            return t("Supported flags: {flags}.", flags=", ".join([*flags, *own]))
        if not flags:
            return t("{provider} supports no flags.", provider=self.name)
        return t("{provider} supports {flags}.", provider=self.name, flags=", ".join(flags))


def _split(raw: str) -> tuple[str, list[tuple[str, str]]]:
    """Text before the first flag, and (flag, value) pairs; `--no` keeps every word up to the next flag."""
    parts = re.split(r"(?:^|\s)--([A-Za-z]\w*)", " " + raw.replace("\u2014", "--"))
    text, rest = parts[0], parts[1:]
    return text.strip(), [(rest[i].lower(), rest[i + 1].strip()) for i in range(0, len(rest), 2)]


def parse_prompt(
    raw: str, *, max_length: int = 4000, provider: str | None = None, policy: FlagPolicy | None = None,
    max_repeat: int = MAX_REPEAT,
) -> ParsedPrompt:
    """Parse a prompt as typed by a user. Raises InvalidPrompt naming the bad flag or value.

    With a `policy` (the chosen provider's, named `provider`), flags it cannot serve are refused.
    `--repeat` takes 1 to `max_repeat` (the config's cap, never above Midjourney's 40)."""
    raw = raw.strip()
    if not raw:
        raise InvalidPrompt(t("The prompt is empty: describe the image you want, "
                              "e.g. 'a lighthouse at dusk'."))
    if len(raw) > max_length:
        raise InvalidPrompt(t(
            "The prompt is {length} characters long; this provider takes at most {limit}.",
            length=len(raw), limit=max_length,
        ))
    text, pairs = _split(raw)
    words = text.split()
    urls: list[str] = []
    while words and _URL_RE.match(words[0]):
        urls.append(words.pop(0))
    text = " ".join(words)
    target = _Provider(provider, policy)
    fields: dict[str, Any] = {}
    speed: Speed | None = None
    remix = False
    repeat: int | None = None
    for typed, value in pairs:
        if typed in _REPEAT:  # the bot's own: the service makes that many jobs
            if repeat is not None:
                raise InvalidPrompt(t("--{flag} is given twice.", flag=typed))
            repeat = _repeat(typed, value, min(max_repeat, MAX_REPEAT))
            continue
        if typed in _SPEEDS or typed == _REMIX:  # the bot's own switches, never sent to a provider
            if value:
                raise InvalidPrompt(t("--{flag} takes no value; move '{value}' before the flags.", flag=typed,
                                      value=value))
            speed, remix = _SPEEDS.get(typed, speed), remix or typed == _REMIX
            continue
        flag = _flag(typed, target)
        if FLAG_FIELDS[flag] in fields:
            raise InvalidPrompt(t("--{flag} is given twice.", flag=typed))
        fields[FLAG_FIELDS[flag]] = _value(flag, typed, value, target)
    if "version" in fields and "niji" in fields:
        raise InvalidPrompt(t("Use either --v or --niji, not both."))
    if not text:
        raise InvalidPrompt(t("The prompt has flags but no text: put what you want to see before the flags."))
    return ParsedPrompt(PromptParams(text=text, image_urls=tuple(urls), **fields), speed, remix, repeat or 1)


def _repeat(typed: str, value: str, most: int) -> int:
    if not value:
        raise InvalidPrompt(t("--{flag} needs a number of runs, e.g. --{flag} 4.", flag=typed))
    if " " in value:
        raise InvalidPrompt(t("--{flag} takes one value; got '{value}'. Put text before the flags.",
                              flag=typed, value=value))
    try:
        number = int(value)
    except ValueError:
        raise InvalidPrompt(t("--{flag} takes a whole number from 1 to {most}, not '{value}'.", flag=typed,
                              most=most, value=value)) from None
    if not 1 <= number <= most:
        if most == MAX_REPEAT:
            raise InvalidPrompt(t("--{flag} must be between 1 and {most}; got {number}.", flag=typed,
                                  most=most, number=number))
        raise InvalidPrompt(t("--{flag} must be between 1 and {most} (this bot's limit); got {number}.",
                              flag=typed, most=most, number=number))
    return number


def _flag(typed: str, target: _Provider) -> Flag:
    """The flag `typed` names, if it is one the provider serves."""
    flag = _ALIASES.get(typed)
    if flag is None:
        near = difflib.get_close_matches(typed, [*_ALIASES, *_SPEEDS, _REMIX, *_REPEAT], n=1, cutoff=0.6)
        hint = t("Did you mean --{flag}?", flag=near[0]) if near else target.supported()
        raise InvalidPrompt(t("Unknown flag --{flag}. {hint}", flag=typed, hint=hint))
    if target.policy is not None and not target.policy.serves(flag):
        raise InvalidPrompt(shown(target.policy.rejection(target.name or t("This provider"), flag, typed)))
    return flag


def _value(flag: Flag, typed: str, value: str, target: _Provider) -> Any:
    if flag in _SWITCHES:
        if value:
            raise InvalidPrompt(t("--{flag} takes no value; move '{value}' before the flags.", flag=typed,
                                      value=value))
        return True
    if not value:
        if flag not in _BARE:
            raise InvalidPrompt(t("--{flag} needs a value.", flag=typed))
        if flag in _REF_VALUES and not target.maps(flag):
            example = f"--{typed} https://example.com/reference.png"
            raise InvalidPrompt(t(_REF_VALUES[flag], flag=typed, example=example))
        return _BARE[flag]
    if " " in value and flag not in _LISTS:
        raise InvalidPrompt(t("--{flag} takes one value; got '{value}'. Put text before the flags.",
                              flag=typed, value=value))
    return _READERS[flag](typed, value)
