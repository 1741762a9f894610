"""The `webhooks` config section: bad addresses fail at start with the key named."""

from __future__ import annotations

import pytest

from bot.config import parse_config
from bot.errors import ConfigError
from bot.webhooks import parse_listen


def test_a_valid_section_parses_with_its_defaults() -> None:
    config = parse_config({"webhooks": {"public_url": "https://bot.example.com/imagine"}}, {})
    assert config.webhooks is not None
    assert (config.webhooks.listen, config.webhooks.poll_interval) == ("0.0.0.0:8080", 60.0)
    assert parse_listen(config.webhooks.listen) == ("0.0.0.0", 8080)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen(":9000") == ("0.0.0.0", 9000)


@pytest.mark.parametrize(
    ("section", "word"),
    [
        ({"listen": "8080", "public_url": "https://bot.example.com"}, "listen"),
        ({"listen": "0.0.0.0:http", "public_url": "https://bot.example.com"}, "listen"),
        ({"public_url": "bot.example.com"}, "public_url"),
        ({"public_url": "https://bot.example.com/?token=1"}, "public_url"),
        ({"public_url": "https://bot.example.com", "max_body_bytes": 10}, "max_body_bytes"),
    ],
)
def test_a_bad_section_is_refused_naming_the_key(section: dict[str, object], word: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"webhooks": section}, {})
    assert any(problem.startswith("webhooks") and word in problem for problem in caught.value.problems)


@pytest.mark.parametrize(
    ("section", "key", "secret"),
    [
        ({"listen": "hook-sekrit-7f3a:80x"}, "listen", "sekrit-7f3a"),
        ({"listen": "[::1]:8080 hunter2-pass"}, "listen", "hunter2-pass"),
        ({"public_url": "https://bot.example.com/hook?token=tok-9d8c7b6a"}, "public_url", "tok-9d8c7b6a"),
        ({"public_url": "https://admin:hunter2-pass@ bot.example.com"}, "public_url", "hunter2-pass"),
        ({"public_url": "bot.example.com/tok-9d8c7b6a"}, "public_url", "tok-9d8c7b6a"),
    ],
)
def test_a_bad_address_is_refused_without_echoing_it(
    section: dict[str, object], key: str, secret: str
) -> None:
    """The value may carry a secret (a token in a query or path, a password in the URL): the problem names
    the key and what is wrong, never the value."""
    section = {"public_url": "https://bot.example.com"} | section
    with pytest.raises(ConfigError) as caught:
        parse_config({"webhooks": section}, {})
    (problem,) = caught.value.problems
    assert problem.startswith(f"webhooks.{key}: must be ")
    assert secret not in problem and secret not in str(caught.value)
