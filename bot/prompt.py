"""Midjourney-style prompt parsing: text, leading image URLs and `--flags`, each checked clearly."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.errors import InvalidPrompt
from providers.base import PromptParams, Speed

_URL_RE = re.compile(r"^https?://\S+$", re.IGNORECASE)
_RATIO_RE = re.compile(r"^([1-9][0-9]{0,2}):([1-9][0-9]{0,2})$")
_VERSIONS = ("1", "2", "3", "4", "5", "5.0", "5.1", "5.2", "6", "6.0", "6.1", "7", "7.0")
_NIJI = ("4", "5", "6", "7")
_QUALITY = (0.25, 0.5, 1.0, 2.0, 4.0)
_STYLES = ("raw", "cute", "expressive", "original", "scenic", "4a", "4b", "4c")
_SPEEDS: dict[str, Speed] = {"relax": "relax", "fast": "fast", "turbo": "turbo"}


@dataclass(frozen=True)
class ParsedPrompt:
    params: PromptParams
    speed: Speed | None


def _int_range(low: int, high: int) -> Callable[[str, str], int]:
    def parse(flag: str, value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            message = f"--{flag} takes a whole number from {low} to {high}, not '{value}'."
            raise InvalidPrompt(message) from None
        if not low <= number <= high:
            raise InvalidPrompt(f"--{flag} must be between {low} and {high}; got {number}.")
        return number

    return parse


def _choice(options: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(flag: str, value: str) -> str:
        if value.lower() not in options:
            raise InvalidPrompt(f"--{flag} must be one of {', '.join(options)}; got '{value}'.")
        return value.lower()

    return parse


def _aspect(flag: str, value: str) -> str:
    match = _RATIO_RE.match(value)
    if match is None:
        raise InvalidPrompt(f"--{flag} takes a ratio like 16:9 (whole numbers), not '{value}'.")
    w, h = int(match[1]), int(match[2])
    if max(w, h) / min(w, h) > 8:
        raise InvalidPrompt(f"--{flag} {value} is too extreme; the long side may be at most 8x the short.")
    return f"{w}:{h}"


def _quality(flag: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number not in _QUALITY:
        raise InvalidPrompt(f"--{flag} must be one of .25, .5, 1, 2 or 4; got '{value}'.")
    return number


def _image_weight(flag: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidPrompt(f"--{flag} takes a number from 0 to 3, not '{value}'.") from None
    if not 0 <= number <= 3:
        raise InvalidPrompt(f"--{flag} must be between 0 and 3; got {value}.")
    return number


#: flag (and aliases) -> (PromptParams field, value parser)
_FLAGS: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "ar": ("aspect_ratio", _aspect),
    "aspect": ("aspect_ratio", _aspect),
    "v": ("version", _choice(_VERSIONS)),
    "version": ("version", _choice(_VERSIONS)),
    "niji": ("niji", _choice(_NIJI)),
    "s": ("stylize", _int_range(0, 1000)),
    "stylize": ("stylize", _int_range(0, 1000)),
    "c": ("chaos", _int_range(0, 100)),
    "chaos": ("chaos", _int_range(0, 100)),
    "q": ("quality", _quality),
    "quality": ("quality", _quality),
    "seed": ("seed", _int_range(0, 4294967295)),
    "weird": ("weird", _int_range(0, 3000)),
    "w": ("weird", _int_range(0, 3000)),
    "iw": ("image_weight", _image_weight),
    "style": ("style", _choice(_STYLES)),
    "r": ("repeat", _int_range(1, 40)),
    "repeat": ("repeat", _int_range(1, 40)),
}
_ALL_FLAGS = sorted({*_FLAGS, "no", "tile", *_SPEEDS})


def _split(raw: str) -> tuple[str, list[tuple[str, str]]]:
    """Text before the first flag, and (flag, value) pairs; `--no` keeps every word up to the next flag."""
    parts = re.split(r"(?:^|\s)--([A-Za-z]\w*)", " " + raw.replace("\u2014", "--"))
    text, rest = parts[0], parts[1:]
    return text.strip(), [(rest[i].lower(), rest[i + 1].strip()) for i in range(0, len(rest), 2)]


def parse_prompt(raw: str, *, max_length: int = 4000) -> ParsedPrompt:
    """Parse a prompt as typed by a user. Raises InvalidPrompt naming the bad flag or value."""
    raw = raw.strip()
    if not raw:
        raise InvalidPrompt("The prompt is empty: describe the image you want, e.g. 'a lighthouse at dusk'.")
    if len(raw) > max_length:
        raise InvalidPrompt(
            f"The prompt is {len(raw)} characters long; this provider takes at most {max_length}."
        )
    text, pairs = _split(raw)
    words = text.split()
    urls: list[str] = []
    while words and _URL_RE.match(words[0]):
        urls.append(words.pop(0))
    text = " ".join(words)
    fields: dict[str, Any] = {}
    speed: Speed | None = None
    for flag, value in pairs:
        fields.update(_flag_value(flag, value, fields))
        if flag in _SPEEDS:
            speed = _SPEEDS[flag]
    if not text:
        raise InvalidPrompt("The prompt has flags but no text: put what you want to see before the flags.")
    return ParsedPrompt(PromptParams(text=text, image_urls=tuple(urls), **fields), speed)


def _flag_value(flag: str, value: str, seen: dict[str, Any]) -> dict[str, Any]:
    if flag in _SPEEDS or flag == "tile":
        if value:
            raise InvalidPrompt(f"--{flag} takes no value; move '{value}' before the flags.")
        return {"tile": True} if flag == "tile" else {}
    if flag == "no":
        if not value:
            raise InvalidPrompt("--no needs the things to leave out, e.g. '--no text, people'.")
        return {"no": value}
    if flag not in _FLAGS:
        supported = ", ".join("--" + f for f in _ALL_FLAGS)
        raise InvalidPrompt(f"Unknown flag --{flag}. Supported flags: {supported}.")
    field, parse = _FLAGS[flag]
    if flag == "niji" and not value:
        value = "6"
    if not value:
        raise InvalidPrompt(f"--{flag} needs a value.")
    if " " in value:
        raise InvalidPrompt(f"--{flag} takes one value; got '{value}'. Put text before the flags.")
    if field in seen:
        raise InvalidPrompt(f"--{flag} is given twice.")
    if (field == "niji" and "version" in seen) or (field == "version" and "niji" in seen):
        raise InvalidPrompt("Use either --v or --niji, not both.")
    return {field: parse(flag, value)}
