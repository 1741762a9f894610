"""Moderation: the community's banned words, checked on prompts before anything is spent, and the
friendly wording of a provider's own moderation refusal."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from bot.config import ModerationConfig
from bot.errors import ConfigError, PromptRefused, shown
from bot.i18n import N_, t
from providers.errors import ProviderError, ProviderRejected

#: Words in a provider's refusal that mean its moderation (not a bad parameter) said no.
_PROVIDER_MODERATION = re.compile(
    r"moderat|banned|nsfw|sensitive|inappropriate|content polic|safety|flagged|prohibited|violat",
    re.IGNORECASE,
)
PROVIDER_REFUSAL = N_(
    "The image provider's content filter refused this prompt. Rephrase it and try again."
)


def read_words_file(path: Path) -> list[str]:
    """One word or phrase per line; blank lines and '#' comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = f"moderation.banned_words_file: cannot read it ({exc.strerror})"
        raise ConfigError(str(path), [problem]) from exc
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


class Moderator:
    """Whole-word, case-insensitive matching of banned words and phrases (one compiled pattern)."""

    def __init__(self, words: Iterable[str]) -> None:
        cleaned = sorted({w.strip().lower() for w in words if w.strip()}, key=len, reverse=True)
        self.words = cleaned
        # A phrase's inner spaces match any run of whitespace; edges are not letters/digits/underscore.
        parts = [r"\s+".join(re.escape(piece) for piece in w.split()) for w in cleaned]
        self._pattern = re.compile(rf"(?<!\w)(?:{'|'.join(parts)})(?!\w)", re.IGNORECASE) if parts else None

    @classmethod
    def from_config(cls, config: ModerationConfig) -> Moderator:
        words = list(config.banned_words)
        if config.banned_words_file is not None:
            words += read_words_file(config.banned_words_file)
        return cls(words)

    def banned_word(self, text: str) -> str | None:
        """The first banned word or phrase in `text`, as written there, or None."""
        if self._pattern is None:
            return None
        match = self._pattern.search(text)
        return match.group(0) if match else None

    def check(self, text: str) -> None:
        """Raise PromptRefused naming the word when `text` uses a banned one."""
        word = self.banned_word(text)
        if word is not None:
            raise PromptRefused(t(
                "Your prompt was not sent: “{word}” is not allowed here. Remove it and try again.", word=word,
            ))


def is_provider_refusal(exc: ProviderError) -> bool:
    return isinstance(exc, ProviderRejected) and bool(_PROVIDER_MODERATION.search(exc.message))


def refusal_message(exc: ProviderError) -> str:
    """What the user sees for a provider error at submit: a friendly line for a moderation refusal
    (keeping the provider's detail, which is user-safe), the provider's own message otherwise."""
    if is_provider_refusal(exc):
        return t("The image provider's content filter refused this prompt. Rephrase it and try again. "
                 "({reason}.)", reason=shown(exc).rstrip("."))
    return shown(exc)
