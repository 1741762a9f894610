"""Config: defaults, ${ENV} interpolation, every problem reported with its key path, secrets kept secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import AppConfig, load_config, parse_config
from bot.errors import ConfigError
from providers.local import LocalConfig
from providers.midapi import MidapiConfig

GOOD = """\
database: ${DATA_DIR:-/tmp}/bot.sqlite3
default_provider: mj
providers:
  - name: mj
    type: midjourney_api
    api_key: ${MJAPI_KEY}
    fallbacks: [local]
  - name: local
    type: local
    duration: 0
"""

BAD = """\
default_provider: nowhere
colour: blue
providers:
  - name: mj
    type: midjourney_api
    api_key: ${MISSING_KEY}
    max_concurrency: 0
  - name: x
    type: dalle
media:
  max_download_bytes: lots
"""


def problems(text: str, tmp_path: Path, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env or {})
    assert err.value.source == str(path)
    return err.value.problems


def test_no_file_gives_working_defaults(tmp_path: Path) -> None:
    config = load_config(None, {"XDG_DATA_HOME": str(tmp_path)})
    assert config.default_provider == "local"
    assert [(p.name, p.type) for p in config.providers] == [("local", "local")]
    assert config.database == tmp_path / "imagine-bot" / "imagine-bot.sqlite3"  # the data dir, not the cwd
    assert config.telegram is None and config.discord is None
    assert not config.media.allow_private_addresses


def test_interpolation_with_and_without_default(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(GOOD)
    config = load_config(path, {"MJAPI_KEY": "sk-live-123"})
    assert config.database == Path("/tmp/bot.sqlite3")
    key = config.provider("mj").api_key
    assert key is not None and key.get_secret_value() == "sk-live-123"
    local = config.provider("local")
    assert isinstance(local, LocalConfig) and local.duration == 0
    config = load_config(path, {"MJAPI_KEY": "k", "DATA_DIR": "/srv"})
    assert config.database == Path("/srv/bot.sqlite3")


def test_missing_env_var_named_with_its_key_path(tmp_path: Path) -> None:
    found = problems(GOOD, tmp_path)
    assert found == ["providers[0].api_key: environment variable MJAPI_KEY is not set"]


def test_every_problem_at_once_with_key_paths(tmp_path: Path) -> None:
    found = "\n".join(problems(BAD, tmp_path))
    assert "providers[0].api_key: environment variable MISSING_KEY is not set" in found
    assert "providers[0].max_concurrency: must be at least 1" in found
    assert "providers[1].type: unknown provider type 'dalle'" in found and "midjourney_api" in found
    assert "colour: unknown key 'colour'" in found  # extra="forbid" at the top level
    assert "media.max_download_bytes: must be a whole number" in found
    assert "default_provider: 'nowhere' is not a provider here; the providers are: mj, x" in found


def test_unknown_key_inside_a_section_and_a_provider(tmp_path: Path) -> None:
    found = problems(
        "media:\n  max_bytes: 3\nproviders:\n  - {name: local, type: local, speed: 9}\n", tmp_path
    )
    assert any(p.startswith("media.max_bytes: unknown key 'max_bytes'") for p in found)
    assert any(p.startswith("providers[0].speed: unknown key 'speed'") for p in found)


def test_names_must_resolve(tmp_path: Path) -> None:
    found = problems(
        "default_provider: mj\nproviders:\n  - {name: a, type: local, fallbacks: [b]}\n"
        "  - {name: a, type: local}\n",
        tmp_path,
    )
    assert found == [
        "default_provider: 'mj' is not a provider here; the providers are: a",
        "providers[0].fallbacks: 'b': not a provider here; the providers are: a",
        "providers[1].name: 'a' is already the name of providers[0]; names must be unique",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("providers: [\n", "not valid YAML"),
        ("a: b: c\n", "line 1"),
        ("- just\n- a list\n", "mapping"),
        ("providers: local\n", "providers: must be a list"),
    ],
)
def test_corrupt_files(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in "\n".join(problems(text, tmp_path))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml", {})


def test_secrets_stay_out_of_repr_and_errors(tmp_path: Path) -> None:
    secret = "sk-very-secret-4242"
    telegram = "123456789:AAsk-very-secret-4242-telegram-toke"
    discord = "MTIzNDU2Nzg5MDEy.sk-very.secret-4242-discord"
    config = parse_config(
        {"providers": [{"name": "mj", "type": "midjourney_api", "api_key": secret}], "default_provider": "mj",
         "telegram": {"token": telegram}, "discord": {"token": discord}},
        {},
    )  # fmt: skip
    for shown in (repr(config), str(config), repr(config.providers[0])):
        assert secret not in shown and telegram not in shown and discord not in shown
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "providers": [{"name": "mj", "type": "midjourney_api", "api_key": secret, "bad": 1}],
                "default_provider": "mj",
                "telegram": {"token": secret, "nope": 1},  # the wrong shape for a token, and still secret
            },
            {},
        )
    assert secret not in str(err.value) and secret not in repr(err.value)
    assert secret not in "\n".join(err.value.problems)


def _check_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "MJAPI_KEY": "k"},
    )


def test_check_config_command(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    run = _check_config(bad)
    assert run.returncode != 0
    for expected in (
        "providers[0].api_key: environment variable MISSING_KEY is not set",
        "providers[0].max_concurrency: must be at least 1",
        "providers[1].type: unknown provider type 'dalle'",
        "colour: unknown key 'colour'",
        "media.max_download_bytes: must be a whole number",
    ):
        assert f"  - {expected}" in run.stderr
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    run = _check_config(good)
    assert run.returncode == 0, run.stderr
    assert "OK" in run.stdout and "mj" in run.stdout


def test_a_config_built_in_code_gets_each_provider_type_s_own_class() -> None:
    config = AppConfig(default_provider="m", providers=[
        {"name": "m", "type": "midapi", "api_key": "k", "vary_index_base": 1}])  # fmt: skip
    entry = config.provider("m")
    assert isinstance(entry, MidapiConfig) and entry.vary_index_base == 1


@pytest.mark.parametrize(
    "url",
    ["api.example.com", "api.example.com/v1", "ftp://api.example.com", "https://", "https:///v1", "not a url",
     "http://api.example.com:port", "https://api.example.com/v1?key=sekrit-0", "https://api.example .com"],
)  # fmt: skip
def test_a_provider_base_url_must_be_an_http_url(url: str) -> None:
    entry = {"name": "mj", "type": "midjourney_api", "api_key": "k", "base_url": url}
    with pytest.raises(ConfigError) as err:
        parse_config({"providers": [{"name": "local", "type": "local"}, entry]}, {})
    shape = "providers[1].base_url: must be a URL like https://host[:port][/path] (http or https)"
    # exactly this, never the value: it may carry a key, and the key path says where to look
    assert err.value.problems in ([shape], [f"{shape}, without a query or fragment"])


def test_good_base_urls_and_other_endpoint_keys() -> None:
    config = parse_config(
        {"providers": [{"name": "mj", "type": "mj_proxy", "base_url": "http://127.0.0.1:8080/mj-proxy/"}],
         "default_provider": "mj",
         "telegram": {"base_url": "http://127.0.0.1:8081/bot", "base_file_url": "https://tg.example/file/bot"},
         "discord": {"api_base": "http://127.0.0.1:8082/api/v10", "gateway_url": "wss://gw.example/gw"}},
        {},
    )  # fmt: skip
    assert config.provider("mj").base_url == "http://127.0.0.1:8080/mj-proxy/"
    with pytest.raises(ConfigError) as err:
        parse_config({"telegram": {"base_url": "127.0.0.1:8081/bot"},
                      "discord": {"api_base": "ws://127.0.0.1/api", "gateway_url": "https://gw.example/gw"}},
                     {})  # fmt: skip
    assert sorted(p.split(":")[0] for p in err.value.problems) == [
        "discord.api_base", "discord.gateway_url", "telegram.base_url"]  # fmt: skip
    assert any("like wss://" in p for p in err.value.problems)


def test_check_config_refuses_a_base_url_that_is_not_a_url(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    fallbacks = "    fallbacks: [local]\n"
    path.write_text(GOOD.replace(fallbacks, f"{fallbacks}    base_url: api.mj.example\n"))
    run = _check_config(path)
    assert run.returncode != 0
    assert "providers[0].base_url: must be a URL like https://host" in run.stderr
    assert "OK" not in run.stdout
