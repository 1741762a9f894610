"""`check_config`: every problem of a config file in one pass, each with its exact key path and in plain
words, no follow-on problems, required secrets and token shapes checked (the values never shown),
warnings for what is probably not meant, and a summary of what a good config turns on. The same problems
come out of `load_config` and out of `imagine-bot check-config`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_config
from bot.config_check import check_config
from bot.config_paths import find_config
from bot.errors import ConfigError

TG_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawq"  # the shape @BotFather gives
DC_TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAx.GfAkEt.ZmFrZS1ib3QtdG9rZW4tZm9yLXRlc3Rz"  # id.timestamp.hmac
SECRET = "Sekr1t"  # inside every bad token below: it must never appear in a message

BAD = """\
database: data/bot.sqlite3
default_provider: mj
providers:
  - name: local
    type: local
    duraton: 3
  - name: mj
    type: midjourney
    api_key: ${MJAPI_KEY}
  - name: paid
    type: midjourney_api
  - name: other
    type: midapi
    api_key: ${EMPTY_KEY}
    fallbacks: [mj, nope]
telegram:
  tokne: abc
  token: "abc-Sekr1t"
  mode: poling
discord:
  token: "Sekr1t-discord-value"
  guild_id: [1]
  shard_count: many
webhooks:
  listen: nowhere
  public_url: https://bot.example.com
log_level: debug
workers:
  lease: 1
colour: blue
"""

BAD_PROBLEMS = [
    "providers[0].duraton: unknown key 'duraton' (did you mean 'duration'?)",
    "providers[1].type: unknown provider type 'midjourney' (did you mean 'midjourney_api'?); the types are: "
    "gpt_image, local, midapi, midjourney_api, mj_proxy, mj_rest, ohmygpt",
    "providers[2].api_key: is missing: a provider of type midjourney_api needs it",
    "providers[3].api_key: is empty (environment variable EMPTY_KEY is set but empty): a provider of type "
    "midapi needs it",
    "providers[3].fallbacks: 'nope': not a provider here; the providers are: local, mj, paid, other",
    "telegram.tokne: unknown key 'tokne' (did you mean 'token'?)",
    "telegram.token: does not look like a Telegram bot token: that is the bot's numeric id, a colon, then 35 "
    "letters, digits, '_' or '-', as @BotFather gives it",
    "telegram.mode: must be 'polling' or 'webhook' (did you mean 'polling'?)",
    "discord.token: does not look like a Discord bot token: that is three parts of letters, digits, '_' or "
    "'-' joined by dots (Developer Portal → Bot → Reset Token; not the client secret)",
    "discord.guild_id: unknown key 'guild_id' (did you mean 'guild_ids'?)",
    "discord.shard_count: must be a whole number or 'auto'",
    "webhooks.listen: must be HOST:PORT, e.g. 0.0.0.0:8080 or [::]:8080",
    "log_level: must be 'DEBUG', 'INFO', 'WARNING' or 'ERROR' (did you mean 'DEBUG'?)",
    "workers.lease: must be at least twice workers.heartbeat",
    "colour: unknown key 'colour'; known keys: database, default_provider, providers, telegram, discord, "
    "webhooks, web, media, polling, log_level, limits, moderation, access, admins, logging, metrics, "
    "retention, workers",
]
ENV = {"MJAPI_KEY": "mj-key-1234", "EMPTY_KEY": ""}
JARGON = ("Value error", "Extra inputs", "Input should", "(top level)", "Field required", "validation error")


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_every_problem_in_one_pass_in_file_order_and_plain_words(tmp_path: Path) -> None:
    checked = check_config(write(tmp_path, BAD), ENV)
    assert checked.problems == BAD_PROBLEMS
    assert checked.config is None and checked.summary == []
    shown = "\n".join(checked.problems)
    assert not [word for word in JARGON if word in shown]
    assert SECRET not in shown and ENV["MJAPI_KEY"] not in shown


def test_load_config_raises_the_same_problems(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    assert caught.value.source == str(path)
    assert caught.value.problems == BAD_PROBLEMS
    assert SECRET not in str(caught.value)


def test_check_config_command_prints_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **ENV}
    run = subprocess.run([sys.executable, "-m", "bot", "--config", str(path), "check-config"],
                         capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert run.returncode != 0
    printed = [line.removeprefix("  - ") for line in run.stderr.splitlines() if line.startswith("  - ")]
    assert printed == BAD_PROBLEMS, run.stderr
    assert SECRET not in run.stdout + run.stderr and "OK" not in run.stdout


def test_an_unknown_provider_type_is_the_one_problem(tmp_path: Path) -> None:
    """The entry still names `mj`: default_provider and fallbacks that refer to it are fine."""
    text = """\
default_provider: mj
providers:
  - {name: mj, type: dalle, api_key: k}
  - {name: local, type: local, fallbacks: [mj]}
"""
    assert check_config(write(tmp_path, text), {}).problems == [
        "providers[0].type: unknown provider type 'dalle'; the types are: gpt_image, local, midapi, "
        "midjourney_api, mj_proxy, mj_rest, ohmygpt"
    ]


def test_an_unset_variable_is_the_one_problem_of_its_key(tmp_path: Path) -> None:
    text = """\
database: ${DB_FILE}
providers:
  - {name: local, type: local, max_concurrency: "${CONCURRENCY}"}
"""
    assert check_config(write(tmp_path, text), {}).problems == [
        "database: environment variable DB_FILE is not set",
        "providers[0].max_concurrency: environment variable CONCURRENCY is not set",
    ]


def test_required_secrets_of_each_provider_type(tmp_path: Path) -> None:
    text = """\
providers:
  - {name: local, type: local}
  - {name: a, type: midjourney_api}
  - {name: b, type: midapi, api_key: "${UNSET_KEY}"}
  - {name: c, type: ohmygpt, api_key: "${EMPTY_KEY}"}
  - {name: d, type: mj_rest, api_key: "${UNSET_WITH_DEFAULT:-}"}
  - {name: e, type: gpt_image, api_key: ""}
  - {name: f, type: gpt_image, api_key: null}
  - {name: g, type: mj_proxy}
"""
    assert check_config(write(tmp_path, text), {"EMPTY_KEY": ""}).problems == [
        "providers[1].api_key: is missing: a provider of type midjourney_api needs it",
        "providers[2].api_key: environment variable UNSET_KEY is not set",
        "providers[3].api_key: is empty (environment variable EMPTY_KEY is set but empty): a provider of "
        "type ohmygpt needs it",
        "providers[4].api_key: is empty (environment variable UNSET_WITH_DEFAULT is not set and its default "
        "is empty): a provider of type mj_rest needs it",
        "providers[5].api_key: is empty: a provider of type gpt_image needs it",
        "providers[6].api_key: is empty: a provider of type gpt_image needs it",
    ]  # a self-hosted midjourney-proxy may run without a secret: mj_proxy requires none


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("Sekr1t", "does not look like a Telegram bot token"),
        ("123456:Sekr1t-too-short", "does not look like a Telegram bot token"),
        ("123456:Sekr1t" + "A" * 30, "does not look like a Telegram bot token"),  # 36 after the colon
        ("bot123456:Sekr1t" + "A" * 29, "starts with 'bot'"),
        ("123456:Sekr1t" + "A" * 29 + "\n", "has spaces or a line break around it"),
    ],
)
def test_telegram_token_shape(tmp_path: Path, token: str, expected: str) -> None:
    text = "telegram:\n  token: ${TELEGRAM_TOKEN}\n"
    (problem,) = check_config(write(tmp_path, text), {"TELEGRAM_TOKEN": token}).problems
    assert problem.startswith(f"telegram.token: {expected}")
    assert problem.endswith("(read from environment variable TELEGRAM_TOKEN)")
    assert SECRET not in problem


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("Sekr1t-one-part", "does not look like a Discord bot token"),
        ("MTAw.Sekr1t", "does not look like a Discord bot token"),
        ("MTAw.Sekr1t.abc.def", "does not look like a Discord bot token"),
        ("Bot MTAw.Sekr1t.abc", "starts with 'Bot '"),
        ("MTAw.Sekr1t.abc ", "has spaces or a line break around it"),
        ("100000000000000001", "is a number"),
    ],
)
def test_discord_token_shape(tmp_path: Path, token: str, expected: str) -> None:
    text = "discord:\n  token: ${DISCORD_TOKEN}\n"
    (problem,) = check_config(write(tmp_path, text), {"DISCORD_TOKEN": token}).problems
    assert problem.startswith(f"discord.token: {expected}")
    assert problem.endswith("(read from environment variable DISCORD_TOKEN)")
    assert SECRET not in problem and token.strip() not in problem


def test_tokens_of_the_right_shapes_pass_and_an_empty_one_turns_the_platform_off(tmp_path: Path) -> None:
    text = "telegram:\n  token: ${TG}\ndiscord:\n  token: ${DC}\nmetrics:\n  listen: 127.0.0.1:9100\n"
    checked = check_config(write(tmp_path, text), {"TG": TG_TOKEN, "DC": DC_TOKEN})
    assert checked.problems == [] and checked.config is not None
    assert checked.config.chat_frontends == ["telegram", "discord"]
    checked = check_config(write(tmp_path, text), {"TG": "", "DC": ""})
    assert checked.problems == [] and checked.config is not None and checked.config.chat_frontends == []


def test_summary_of_a_good_config(tmp_path: Path) -> None:
    text = """\
database: postgresql://imagine:${PG_PASSWORD}@db.internal:5433/imagine
default_provider: mj
providers:
  - {name: mj, type: midjourney_api, api_key: "${MJAPI_KEY}"}
  - {name: local, type: local}
telegram: {token: "${TELEGRAM_TOKEN}", mode: webhook}
discord: {token: "${DISCORD_TOKEN}", shard_count: 4, shard_ids: [1, 3]}
webhooks: {listen: "0.0.0.0:8080", public_url: "https://bot.example.com"}
"""
    env = {"PG_PASSWORD": "pg-Sekr1t", "MJAPI_KEY": "mj-Sekr1t", "TELEGRAM_TOKEN": TG_TOKEN,
           "DISCORD_TOKEN": DC_TOKEN}
    checked = check_config(write(tmp_path, text), env)
    assert checked.problems == [] and checked.warnings == []
    assert checked.summary == [
        "frontends: telegram (webhook), discord (shards 1, 3 of 4)",
        "providers: mj (midjourney_api), local (local); default: mj",
        "database: postgresql://db.internal:5433/imagine",
        f"media cache: {tmp_path / 'imagine-bot.media'}",
        "webhooks: listening on 0.0.0.0:8080 (provider callbacks, /healthz and /metrics)",
    ]
    shown = "\n".join(checked.summary)
    assert SECRET not in shown and TG_TOKEN not in shown and DC_TOKEN not in shown


def test_summary_without_webhooks(tmp_path: Path) -> None:
    text = """\
database: jobs.sqlite3
default_provider: mj
providers: [{name: mj, type: midapi, api_key: k}]
telegram: {token: "${TELEGRAM_TOKEN}"}
discord: {token: "", shard_count: auto}
metrics: {listen: "127.0.0.1:9100"}
"""
    checked = check_config(write(tmp_path, text), {"TELEGRAM_TOKEN": TG_TOKEN})
    assert checked.warnings == []
    assert checked.summary == [
        "frontends: telegram (polling)",
        "providers: mj (midapi); default: mj",
        f"database: {tmp_path / 'jobs.sqlite3'}",
        f"media cache: {tmp_path / 'jobs.sqlite3.media'}",
        "health and metrics: /healthz and /metrics on 127.0.0.1:9100",
    ]


def test_warnings_for_a_chat_bot_on_the_simulator_that_nobody_can_health_check(tmp_path: Path) -> None:
    text = "discord: {token: '${DISCORD_TOKEN}'}\n"
    checked = check_config(write(tmp_path, text), {"DISCORD_TOKEN": DC_TOKEN})
    assert checked.problems == [] and checked.config is not None  # warnings do not stop it
    assert checked.warnings == [
        "default_provider: 'local' is the built-in simulator and discord is on: members would get simulator "
        "images (set default_provider to a provider with an image API)",
        "metrics.listen: not set and there is no webhooks section: /healthz and /metrics are served nowhere, "
        "so nothing can tell whether the bot is up (set e.g. metrics.listen: 127.0.0.1:9100)",
    ]
    assert checked.summary[0] == "frontends: discord (one connection, unsharded)"


def test_no_warnings_without_a_chat_frontend(tmp_path: Path) -> None:
    checked = check_config(write(tmp_path, "telegram: {token: ''}\n"), {})
    assert checked.warnings == []
    none = "frontends: none (no telegram.token or discord.token: only the CLI uses this config)"
    assert checked.summary[0] == none


TYPES = "gpt_image, local, midapi, midjourney_api, mj_proxy, mj_rest, ohmygpt"
CASES = {
    "providers: local\n":
        "providers: must be a list of provider entries (`- name: ...` lines with a type each)",
    "providers: []\n":
        "providers: is empty: list at least one provider (the built-in simulator is "
        "`- {name: local, type: local}`)",
    "providers: [local]\n":
        "providers[0]: must be a provider entry: keys such as name, type and api_key",
    "providers: [{name: a}]\ndefault_provider: a\n":
        f"providers[0].type: is missing; the types are: {TYPES}",
    "providers: [{type: local}]\ndefault_provider: x\n":
        "providers[0].name: is missing (it is required)",
    "providers: [{name: a, type: local}]\n":
        "default_provider: is not set, and the default 'local' is not a provider here; the providers are: a",
    "providers: [{name: a, type: local, fallbacks: [a]}]\ndefault_provider: a\n":
        "providers[0].fallbacks: 'a' cannot fall back to itself",
    "telegram: {token: '', mode: webhook}\n":
        "telegram.mode: webhook needs a webhooks section (Telegram posts updates to webhooks.public_url + "
        "/updates/telegram)",
    "telegram: {token: 12345}\n": "telegram.token: must be text (put it in quotes)",
    "telegram: '123:abc'\n": "telegram: must be a section of keys (`key: value` lines below it)",
    "database: 5\nmedia: {max_pixels: 0}\n":
        "database: must be a SQLite file (e.g. imagine-bot.sqlite3) or a postgresql:// URL\n"
        "media.max_pixels: must be at least 1",
    "discord: {shard_count: 2, shard_ids: [2]}\n": "discord.shard_ids: must be distinct numbers from 0 to 1",
    "discord: {guild_ids: [1, x]}\nwebhooks: {}\n":
        "discord.guild_ids[1]: must be a whole number\nwebhooks.public_url: is missing (it is required)",
    "workers: {id: ''}\n": "workers.id: must not be empty",
    "- a\n- b\n": "the top level must be a mapping of keys (`key: value` lines)",
}  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CASES.items())
def test_each_problem_named_by_its_key(tmp_path: Path, text: str, expected: str) -> None:
    assert check_config(write(tmp_path, text), {}).problems == expected.splitlines()


def test_a_file_that_cannot_be_read_or_parsed(tmp_path: Path) -> None:
    missing = check_config(tmp_path / "absent.yaml", {})
    assert missing.problems == ["cannot read the file: No such file or directory"] and missing.config is None
    (problem,) = check_config(write(tmp_path, "providers: [\n"), {}).problems
    assert problem.startswith("line 2, column 1: not valid YAML")


def test_find_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"IMAGINE_BOT_CONFIG": "/etc/imagine-bot.yaml"}
    assert find_config("given.yaml", env) == Path("given.yaml")
    assert find_config(None, env) == Path("/etc/imagine-bot.yaml")
    assert find_config(None, {"IMAGINE_BOT_CONFIG": ""}) is None  # no ./config.yaml here
    write(tmp_path, "{}\n")
    assert find_config(None, {}) == Path("config.yaml")
    assert find_config(None, env) == Path("/etc/imagine-bot.yaml")  # the variable wins over ./config.yaml


def test_a_misspelt_action_kind_in_costs(tmp_path: Path) -> None:
    (problem,) = check_config(write(tmp_path, "limits: {costs: {upscal: 0, video: -1}}\n"), {}).problems
    assert problem.startswith("limits.costs: unknown action kinds: 'upscal' (did you mean 'upscale'?); "
                              "the kinds are: imagine, describe, blend")
