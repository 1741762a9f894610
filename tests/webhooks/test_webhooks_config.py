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
