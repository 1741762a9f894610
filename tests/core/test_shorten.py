"""The bot's own /shorten analysis (bot/shorten.py) and Custom Zoom's --zoom (bot/zoom.py)."""

from __future__ import annotations

import pytest

from bot.errors import InvalidPrompt
from bot.prompt import parse_prompt
from bot.shorten import MAX_SUGGESTIONS, analyse, score_words, snapshot
from bot.zoom import split_zoom, with_zoom
from providers.base import PromptParams, TaskStatus

PROMPT = "a very beautiful lighthouse on a rocky cliff at dusk, stormy sea, highly detailed, 8k, masterpiece"


def scores(text: str) -> dict[str, float]:
    return {t.word: t.score for t in score_words(text)}


def test_stop_words_carry_nothing_and_filler_little() -> None:
    weights = scores(PROMPT)
    assert weights["a"] == weights["on"] == weights["at"] == weights["very"] == 0
    assert 0 < weights["masterpiece"] < 0.2 and 0 < weights["beautiful"] < 0.2 and weights["8k"] < 0.2
    assert weights["lighthouse"] > weights["cliff"] > weights["masterpiece"]


def test_earlier_and_longer_words_weigh_more() -> None:
    assert scores("fox meadow")["fox"] < scores("meadow fox")["meadow"]  # a longer word, first
    early, late = scores("castle river forest"), scores("river forest castle")
    assert early["castle"] > late["castle"]  # the same word nearer the start


def test_a_repeated_word_counts_a_third() -> None:
    tokens = score_words("dragon dragon")
    rarity = 0.5 + len("dragon") / 14
    assert tokens[0].score == round(1.0 * rarity, 2)  # first of two words: position weight 1.0
    assert tokens[1].score == round(0.5 * rarity / 3, 2)  # last (0.5), and seen before (a third)


def test_suggestions_keep_the_best_words_in_order_with_the_flags() -> None:
    params = parse_prompt(f"{PROMPT} --ar 16:9 --seed 7", max_length=4000).params
    analysis = analyse(params)
    assert 1 <= len(analysis.suggestions) <= MAX_SUGGESTIONS
    assert len({*analysis.suggestions}) == len(analysis.suggestions)  # no suggestion twice
    lengths = [len(s) for s in analysis.suggestions]
    assert lengths == sorted(lengths, reverse=True)  # each shorter than the one before
    for suggestion in analysis.suggestions:
        assert suggestion.endswith("--ar 16:9 --seed 7") and "lighthouse" in suggestion
        assert " a " not in f" {suggestion} " and "very" not in suggestion.split()
    assert analysis.suggestions[-1].startswith("lighthouse rocky")  # the shortest: the two best words


def test_summary_names_the_most_and_least_significant_words() -> None:
    summary = analyse(PromptParams(text=PROMPT)).summary()
    most, least = summary.splitlines()[:2]
    assert most.startswith("Most significant: lighthouse (0.")
    assert least.startswith("Least significant:") and "(0.00)" in least


def test_a_prompt_with_nothing_to_cut_gets_no_suggestions() -> None:
    assert analyse(PromptParams(text="fox")).suggestions == []
    assert "as short as it gets" in analyse(PromptParams(text="fox")).summary()
    assert analyse(PromptParams(text="the of a")).suggestions == []


def test_snapshot_is_a_finished_task_with_a_stable_id() -> None:
    params = PromptParams(text=PROMPT)
    first, again = snapshot(params), snapshot(params)
    assert first.status is TaskStatus.SUCCEEDED and first.progress == 100
    assert first.task_id == again.task_id and first.task_id.startswith("shorten-")
    assert first.result is not None and first.result.prompts and first.result.summary


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a fox --zoom 1.5", ("a fox", 1.5)),
        ("a fox --zoom 2 --ar 3:2", ("a fox --ar 3:2", 2.0)),
        ("--zoom 1 a fox", ("a fox", 1.0)),
        ("a fox --ZOOM 1.25", ("a fox", 1.25)),
    ],
)
def test_split_zoom(text: str, expected: tuple[str, float]) -> None:
    assert split_zoom(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a fox --zoom 3", "out of range"),
        ("a fox --zoom 0.99", "out of range"),
        ("a fox --zoom nan", "out of range"),
        ("a fox --zoom two", "not a number"),
        ("a fox", "needs --zoom"),
        ("a fox --zoom", "needs --zoom"),
        ("a fox --zoom 1.5 --zoom 2", "only once"),
        ("a fox --zoomy 1.5", "needs --zoom"),
    ],
)
def test_split_zoom_refusals_say_the_range(text: str, message: str) -> None:
    with pytest.raises(InvalidPrompt, match=message):
        split_zoom(text)


def test_the_form_starts_with_zoom_2() -> None:
    assert with_zoom("a fox --ar 3:2") == "a fox --ar 3:2 --zoom 2"
    assert split_zoom(with_zoom("a fox")) == ("a fox", 2.0)
