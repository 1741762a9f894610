"""Permutation prompts as Midjourney documents them (bot/permutations.py) and the bot's `--repeat`."""

from __future__ import annotations

import pytest

from bot.errors import InvalidPrompt
from bot.permutations import count, expand
from bot.prompt import parse_prompt


def test_each_group_multiplies_in_midjourneys_order() -> None:
    assert expand("a {red, green} bird {--ar 1:1, --ar 16:9}", 40) == [
        "a red bird --ar 1:1",
        "a red bird --ar 16:9",
        "a green bird --ar 1:1",
        "a green bird --ar 16:9",
    ]


def test_nested_braces_expand_recursively() -> None:
    assert expand("a {big {red, blue}, small} bird", 40) == [
        "a big red bird",
        "a big blue bird",
        "a small bird",
    ]
    assert count("{a {b, c {d, e}}, f} {g, h}") == 8


def test_escaped_braces_and_commas_are_literal() -> None:
    assert expand(r"a \{logo\} {red\, white, blue} flag", 40) == [
        "a {logo} red, white flag",
        "a {logo} blue flag",
    ]
    assert expand("no braces, just a comma", 40) == ["no braces, just a comma"]


def test_empty_options_leave_no_double_spaces() -> None:
    assert expand("a {, very} big {} cat", 40) == ["a big cat", "a very big cat"]


@pytest.mark.parametrize(
    ("prompt", "told"),
    [
        ("a {red, green bird", "Unbalanced braces: the { at character 3 is never closed with }."),
        ("a red} bird", "Unbalanced braces: the } at character 6 has no { before it."),
        ("a {red, {green} bird", "Unbalanced braces: the { at character 3 is never closed with }."),
        ("a {red} bird}", "Unbalanced braces: the } at character 13 has no { before it."),
    ],
)
def test_unbalanced_braces_are_named(prompt: str, told: str) -> None:
    with pytest.raises(InvalidPrompt) as refused:
        expand(prompt, 40)
    assert refused.value.message.startswith(told)
    assert "Write \\" in refused.value.message  # how to get a literal brace


def test_over_the_cap_is_refused_before_anything_is_built() -> None:
    with pytest.raises(InvalidPrompt) as refused:
        expand("a {1, 2, 3, 4, 5, 6} {a, b, c, d, e, f, g, h} bird", 40)
    assert refused.value.message == "This prompt expands to 48 jobs; the limit is 40."
    with pytest.raises(InvalidPrompt, match=r"expands to 1267650600228229401496703205376 jobs"):
        expand("{a, b} " * 100, 40)  # counted, never expanded


def test_nesting_is_bounded() -> None:
    with pytest.raises(InvalidPrompt, match="Braces may nest at most 20 deep"):
        expand("{" * 500 + "x" + "}" * 500, 40)


def test_repeat_is_the_bots_own_flag() -> None:
    parsed = parse_prompt("a fox --r 3 --ar 2:3")
    assert parsed.repeat == 3
    assert parsed.params.full() == "a fox --ar 2:3"  # never sent to a provider
    assert parse_prompt("a fox --repeat 40").repeat == 40
    assert parse_prompt("a fox").repeat == 1


@pytest.mark.parametrize(
    ("prompt", "told"),
    [
        ("a fox --repeat 0", "--repeat must be between 1 and 40; got 0."),
        ("a fox --r 41", "--r must be between 1 and 40; got 41."),
        ("a fox --r 11", "--r must be between 1 and 10 (this bot's limit); got 11."),
        ("a fox --r many", "--r takes a whole number from 1 to 10, not 'many'."),
        ("a fox --repeat", "--repeat needs a number of runs, e.g. --repeat 4."),
        ("a fox --r 2 --repeat 3", "--repeat is given twice."),
    ],
)
def test_bad_repeats_are_named(prompt: str, told: str) -> None:
    with pytest.raises(InvalidPrompt) as refused:
        parse_prompt(prompt, max_repeat=10 if "11" in prompt or "many" in prompt else 40)
    assert refused.value.message == told
