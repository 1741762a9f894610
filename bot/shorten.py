"""/shorten where the provider has none: which words carry a prompt, and up to five shorter prompts.

Midjourney's /shorten weighs each token of a prompt and suggests shorter ones. Without its model, the
bot uses a heuristic anyone can check by reading the scores it prints:

- stop words (articles, prepositions, pronouns, auxiliaries) carry nothing: 0;
- filler (intensifiers and quality boilerplate such as "highly", "detailed", "8k") carries little;
- every other word counts by its position (Midjourney reads the start of a prompt most closely: the
  first word weighs 1.0, the last 0.5) and by a rarity proxy (longer words are less common words and
  usually more specific: "lighthouse" says more than "big"); a word already seen counts a third.

The suggestions keep the highest-scoring words, in their original order and comma groups, at five
lengths; the prompt's flags (`--ar 16:9` ...) and image URLs are kept as they were. Pure functions: the
job runner serves a shorten job with `snapshot` instead of calling a provider (bot/runner.py).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from bot.i18n import t
from providers.base import PromptParams, TaskResult, TaskSnapshot, TaskStatus


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS = _words(
    "a an the and or but nor of in on at to for from by with without into onto over under above below "
    "between through during about against among as is are was were be been being am it its this that these "
    "those there here he she they them their his her him we us our you your i me my which who whom whose "
    "while where when than then so such some any each every all both very just also too can could would "
    "should will shall may might must do does did has have had not no"
)
FILLER = _words(
    "really highly extremely super ultra hyper incredibly insanely beautiful stunning amazing awesome "
    "gorgeous epic masterpiece best quality detailed intricate realistic photorealistic hyperrealistic "
    "4k 8k 16k hd uhd hdr trending artstation award winning sharp focus octane unreal engine render "
    "rendered cinematic professional perfect"
)
FILLER_WEIGHT = 0.15
REPEAT_WEIGHT = 1 / 3
SUGGESTION_SHARES = (0.8, 0.6, 0.45, 0.3, 0.15)  # share of the scored words each suggestion keeps
MAX_SUGGESTIONS = 5
_WORD = re.compile(r"[\w'’-]+", re.UNICODE)


@dataclass(frozen=True)
class Token:
    word: str
    score: float  # 0 (carries nothing) to 1
    group: int  # which comma-separated part of the prompt it is in
    position: int  # its place among all words


@dataclass(frozen=True)
class Analysis:
    tokens: list[Token]
    suggestions: list[str]

    def ranked(self) -> list[Token]:
        """The distinct words, most significant first (ties: the earlier word first)."""
        seen: dict[str, Token] = {}
        for token in self.tokens:
            key = token.word.lower()
            if key not in seen or token.score > seen[key].score:
                seen[key] = token
        return sorted(seen.values(), key=lambda t: (-t.score, t.position))

    def summary(self, count: int = 5) -> str:
        """The most and the least significant words with their scores, as /shorten shows them."""
        ranked = self.ranked()
        if not ranked:
            return t("There are no words in this prompt to weigh.")
        top = ", ".join(f"{token.word} ({token.score:.2f})" for token in ranked[:count])
        least = [token for token in reversed(ranked[-count:]) if token not in ranked[:count]]
        bottom = ", ".join(f"{token.word} ({token.score:.2f})" for token in least)
        lines = [t("Most significant: {words}", words=top)]
        if bottom:
            lines.append(t("Least significant: {words}", words=bottom))
        if not self.suggestions:
            lines.append(t("The prompt is as short as it gets."))
        return "\n".join(lines)


def score_words(text: str) -> list[Token]:
    """Each word of `text` with its score (see the module docstring)."""
    groups = [_WORD.findall(part) for part in text.split(",")]
    total = sum(len(words) for words in groups)
    tokens: list[Token] = []
    seen: set[str] = set()
    position = 0
    for group, words in enumerate(groups):
        for word in words:
            tokens.append(Token(word, _score(word, position, total, seen), group, position))
            seen.add(word.lower())
            position += 1
    return tokens


def _score(word: str, position: int, total: int, seen: set[str]) -> float:
    key = word.lower().strip("'’-")
    if not key or key in STOP_WORDS:
        return 0.0
    place = 1.0 - 0.5 * (position / max(1, total - 1))
    if key in FILLER:
        weight = FILLER_WEIGHT * place
    else:
        rarity = min(1.0, 0.5 + len(key) / 14)
        weight = place * rarity
    return round(weight * (REPEAT_WEIGHT if key in seen else 1.0), 2)


def _keep(tokens: list[Token], count: int) -> str:
    """The `count` best words in their original order and comma groups."""
    best = sorted((t for t in tokens if t.score > 0), key=lambda t: (-t.score, t.position))[:count]
    kept = {t.position for t in best}
    groups: dict[int, list[str]] = {}
    for token in tokens:
        if token.position in kept:
            groups.setdefault(token.group, []).append(token.word)
    return ", ".join(" ".join(words) for _, words in sorted(groups.items()))


def analyse(params: PromptParams) -> Analysis:
    """Scores for the words of `params.text` and up to five shorter prompts, flags kept."""
    tokens = score_words(params.text)
    scored = sum(1 for t in tokens if t.score > 0)
    original = " ".join(t.word for t in tokens)
    texts: list[str] = []
    for share in SUGGESTION_SHARES:
        text = _keep(tokens, max(1, round(scored * share)))
        if text and text not in texts and text.replace(",", "") != original:
            texts.append(text)
    tail = [*params.image_urls], params.flags()
    suggestions = [" ".join([*tail[0], text, *tail[1]]) for text in texts[:MAX_SUGGESTIONS]]
    return Analysis(tokens, suggestions)


def snapshot(params: PromptParams | None) -> TaskSnapshot:
    """A finished shorten task, served by the bot: the suggestions and the scores shown above them."""
    analysis = analyse(params or PromptParams(text=""))
    digest = hashlib.sha256((params.full() if params else "").encode()).hexdigest()[:16]
    result = TaskResult(prompts=analysis.suggestions, summary=analysis.summary())
    return TaskSnapshot(task_id=f"shorten-{digest}", status=TaskStatus.SUCCEEDED, progress=100, result=result)
