"""Midjourney's permutation prompts: `a {red, green} bird` is two prompts, one per option in braces.

Braces nest (`a {big {red, blue}, small} bird` is three prompts) and may hold flags
(`{--ar 1:1, --ar 16:9}`), so the text is expanded here, before `bot.prompt` parses any flag; every
expansion is then an ordinary prompt. `\\{`, `\\}` and `\\,` are a literal brace or comma. Several groups
multiply, as Midjourney does. The count is known before anything is expanded, so a prompt that would
make thousands of prompts is refused without building them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from bot.errors import InvalidPrompt
from bot.i18n import t

_ESCAPABLE = "{},"
_MAX_DEPTH = 20  # braces nested deeper are refused (a 4000-character prompt could nest 2000 deep)


@dataclass(frozen=True)
class _Group:
    """`{a, b, ...}`: one option at a time, each option a sequence of its own."""

    options: tuple[_Sequence, ...]

    def count(self) -> int:
        return sum(option.count() for option in self.options)

    def texts(self) -> Iterator[str]:
        for option in self.options:
            yield from (text.strip() for text in option.texts())


@dataclass(frozen=True)
class _Sequence:
    """Literal text and groups, one after the other."""

    parts: tuple[str | _Group, ...]

    def count(self) -> int:
        return math.prod(part.count() for part in self.parts if isinstance(part, _Group))

    def texts(self) -> Iterator[str]:
        choices = [(part,) if isinstance(part, str) else tuple(part.texts()) for part in self.parts]
        for combination in itertools.product(*choices):
            yield "".join(combination)


def too_many(jobs: int, limit: int) -> str:
    """The one wording of a prompt over the cap (permutations and --repeat alike)."""
    return t("This prompt expands to {jobs} jobs; the limit is {limit}.", jobs=jobs, limit=limit)


def count(prompt: str) -> int:
    """How many prompts `prompt` expands to (1 without braces). Raises InvalidPrompt on unbalanced braces."""
    return _parse(prompt).count()


def expand(prompt: str, limit: int) -> list[str]:
    """Every prompt `prompt` stands for, in Midjourney's order (the first group varies slowest), with
    runs of spaces made one. Raises InvalidPrompt on unbalanced braces, or when there are more than
    `limit` (before building any)."""
    tree = _parse(prompt)
    total = tree.count()
    if total > limit:
        raise InvalidPrompt(too_many(total, limit))
    return [" ".join(text.split()) for text in tree.texts()]


def _parse(prompt: str) -> _Sequence:
    sequence, end = _sequence(prompt, 0, depth=0)
    assert end == len(prompt)
    return sequence


def _sequence(text: str, at: int, *, depth: int) -> tuple[_Sequence, int]:
    """The sequence starting at `at`, up to the end (top level) or to the `,` / `}` closing its option."""
    parts: list[str | _Group] = []
    chars: list[str] = []
    while at < len(text):
        char = text[at]
        if char == "\\" and text[at + 1 : at + 2] in tuple(_ESCAPABLE):
            chars.append(text[at + 1])
            at += 2
            continue
        if char == "{":
            parts.append("".join(chars))
            chars = []
            group, at = _group(text, at, depth + 1)
            parts.append(group)
            continue
        if depth and char in ",}":
            break
        if char == "}":
            raise InvalidPrompt(t(
                "Unbalanced braces: the }} at character {at} has no {{ before it. "
                "Write \\}} for a literal brace.", at=at + 1,
            ))
        chars.append(char)
        at += 1
    parts.append("".join(chars))
    return _Sequence(tuple(part for part in parts if part != "")), at


def _group(text: str, opening: int, depth: int) -> tuple[_Group, int]:
    """The group whose `{` is at `opening`; returns it and the index after its `}`."""
    if depth > _MAX_DEPTH:
        raise InvalidPrompt(t(
            "Braces may nest at most {depth} deep; the {{ at character {at} "
            "is deeper. Write \\{{ for a literal brace.", depth=_MAX_DEPTH, at=opening + 1,
        ))
    options: list[_Sequence] = []
    at = opening + 1
    while True:
        option, at = _sequence(text, at, depth=depth)
        options.append(option)
        if at >= len(text):
            raise InvalidPrompt(t(
                "Unbalanced braces: the {{ at character {at} is never closed "
                "with }}. Write \\{{ for a literal brace.", at=opening + 1,
            ))
        at += 1
        if text[at - 1] == "}":
            return _Group(tuple(options)), at
