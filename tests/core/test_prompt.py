"""Midjourney prompt parsing: every flag, and errors that name the bad flag or value."""

from __future__ import annotations

import pytest

from bot.errors import InvalidPrompt
from bot.prompt import parse_prompt
from providers.base import FLAG_FIELDS, Flag


def test_every_flag_is_parsed() -> None:
    parsed = parse_prompt(
        "https://img.example/a.png a red fox in snow --ar 16:9 --v 6.1 --s 250 --c 20 --q 2 --seed 42"
        " --no text, people --weird 100 --tile --iw 1.5 --style raw --r 2 --fast"
    )
    p = parsed.params
    assert p.text == "a red fox in snow"
    assert p.image_urls == ("https://img.example/a.png",)
    assert (p.aspect_ratio, p.version, p.stylize, p.chaos, p.quality, p.seed) == (
        "16:9",
        "6.1",
        250,
        20,
        2.0,
        42,
    )
    assert (p.no, p.weird, p.tile, p.image_weight, p.style) == (
        "text, people",
        100,
        True,
        1.5,
        "raw",
    )
    assert (parsed.speed, parsed.repeat) == ("fast", 2)  # the bot's own: never sent to a provider
    assert p.full().endswith(
        "--ar 16:9 --v 6.1 --s 250 --c 20 --q 2.0 --seed 42 --no text, people --weird 100 "
        "--iw 1.5 --style raw --tile"
    )


def test_niji_and_aliases() -> None:
    assert parse_prompt("cat --niji").params.niji == "6"
    assert parse_prompt("cat --niji 5").params.niji == "5"
    parsed = parse_prompt("cat --aspect 2:3 --stylize 9 --chaos 3 --quality .5 --repeat 3 --w 7 --version 7")
    p = parsed.params
    assert (p.aspect_ratio, p.stylize, p.chaos, p.quality, parsed.repeat, p.weird, p.version) == (
        "2:3",
        9,
        3,
        0.5,
        3,
        7,
        "7",
    )
    assert parse_prompt("cat \u2014ar 3:2").params.aspect_ratio == "3:2"  # phones turn -- into an em dash
    assert parse_prompt("cat --relax").speed == "relax"


@pytest.mark.parametrize(
    ("prompt", "named"),
    [
        ("cat --ar 16", "--ar"), ("cat --ar 0:1", "--ar"), ("cat --ar 20:1", "--ar"),
        ("cat --v 9", "--v"), ("cat --niji 2", "--niji"), ("cat --s 1001", "--s"), ("cat --s lots", "lots"),
        ("cat --c -1", "--c"), ("cat --q 3", "--q"), ("cat --seed 4294967296", "--seed"),
        ("cat --weird 3001", "--weird"), ("cat --iw 4", "--iw"), ("cat --iw x", "--iw"),
        ("cat --style nope", "--style"), ("cat --r 41", "--r"), ("cat --tile yes", "--tile"),
        ("cat --no", "--no"), ("cat --bogus 1", "--bogus"), ("cat --ar", "--ar"), ("cat --s 1 2", "--s"),
        ("cat --s 1 --s 2", "--s"), ("cat --v 6 --niji 6", "--niji"), ("cat --fast now", "--fast"),
    ],
)  # fmt: skip
def test_bad_flags_are_named(prompt: str, named: str) -> None:
    with pytest.raises(InvalidPrompt) as err:
        parse_prompt(prompt)
    assert named in err.value.message


@pytest.mark.parametrize("prompt", ["", "   ", "\n"])
def test_empty_prompt(prompt: str) -> None:
    with pytest.raises(InvalidPrompt, match="empty"):
        parse_prompt(prompt)


def test_flags_without_text() -> None:
    with pytest.raises(InvalidPrompt, match="no text"):
        parse_prompt("--ar 16:9")
    with pytest.raises(InvalidPrompt, match="no text"):
        parse_prompt("https://img.example/a.png --ar 16:9")


def test_length_limit_is_per_provider() -> None:
    prompt = "a " * 60 + "fox"
    assert parse_prompt(prompt, max_length=len(prompt)).params.text.endswith("fox")
    with pytest.raises(InvalidPrompt) as err:
        parse_prompt(prompt, max_length=100)
    assert str(len(prompt)) in err.value.message and "100" in err.value.message


def test_oversized_prompt_at_the_default_limit() -> None:
    with pytest.raises(InvalidPrompt, match="4000"):
        parse_prompt("x" * 4001)


def test_every_flag_round_trips_through_the_prompt_sent() -> None:
    """What `PromptParams.full()` sends to Midjourney parses back to the same params: the flag table
    (providers.base.FLAG_FIELDS) and the parser agree on every flag."""
    typed = (
        "https://img.example/a.png a fox --ar 3:2 --v 7 --s 5 --c 0 --q .5 --seed 0 --no cats --weird 1"
        " --iw 2 --style raw --r 2 --tile --sref https://img.example/s.png 123 random --sw 0 --sv 6"
        " --cref https://img.example/c.png --cw 100 --oref https://img.example/o.png --ow 1 --p --exp 0"
        " --draft --stop 10 --video --motion high"
    )
    params = parse_prompt(typed).params
    assert set(params.given()) == set(FLAG_FIELDS) - {Flag.NIJI}  # --niji excludes --v
    assert parse_prompt(params.full()).params == params


def test_a_near_miss_of_a_speed_is_suggested() -> None:
    with pytest.raises(InvalidPrompt, match=r"^Unknown flag --fsat\. Did you mean --fast\?$"):
        parse_prompt("cat --fsat")
