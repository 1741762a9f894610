"""A config document checked in one pass: every problem with its exact key path and in plain words, what
would work but is probably not meant (warnings), and what the config turns on (a summary).

Checks build on each other without repeating themselves: a key that already has a problem (an unset
environment variable, a value of the wrong kind) gets no second one, and an entry that could not be read
(an unknown provider type) still lends its name to the checks of the keys that refer to it. No message
shows a value that may be a secret (a token, a key, a password in a URL); unknown keys and misspelt
choices are named, with the closest known one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.config import (
    CHECKED,
    AppConfig,
    DiscordConfig,
    Loc,
    database_location,
    did_you_mean,
    key_path,
    reference_problems,
    url_problem,
)
from bot.config_paths import config_base_dir, resolve_paths
from bot.errors import ConfigError
from providers import PROVIDERS
from providers.base import ProviderConfig


@dataclass
class ConfigCheck:
    """What `check_config` found. `config` is None exactly when there are `problems`."""

    source: str  # the config file, or "defaults" without one
    base_dir: Path | None  # where relative paths in it resolve (None: left relative)
    problems: list[str] = field(default_factory=list)  # "key.path: what is wrong", in file order
    warnings: list[str] = field(default_factory=list)  # "key.path: what is probably not meant"
    summary: list[str] = field(default_factory=list)  # what the config turns on, one line each
    config: AppConfig | None = None

    def loaded(self) -> AppConfig:
        """The config, or ConfigError listing every problem."""
        if self.config is None:
            raise ConfigError(self.source, self.problems)
        return self.config


def check_config(path: Path | None, env: Mapping[str, str]) -> ConfigCheck:
    """Read and check the config file at `path` (None: the defaults, kept in `default_data_dir`)."""
    base = config_base_dir(path, env)
    if path is None:
        return check_document({}, env, "defaults", base)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return ConfigCheck(str(path), base, [f"cannot read the file: {exc.strerror}"])
    except UnicodeDecodeError:
        return ConfigCheck(str(path), base, ["is not UTF-8 text"])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return ConfigCheck(str(path), base, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"])
    return check_document(data, env, str(path), base)


def check_document(data: Any, env: Mapping[str, str], source: str, base_dir: Path | None) -> ConfigCheck:
    """Check an already-parsed YAML document (see `check_config`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return ConfigCheck(source, base_dir, ["the top level must be a mapping of keys (`key: value` lines)"])
    found = _Problems()
    refs: dict[Loc, list[str]] = {}
    data = _interpolate(data, env, (), found, refs)
    document = dict(data)
    providers = _provider_entries(data, found)
    if providers is None:
        document.pop("providers", None)
    else:
        document["providers"] = providers
    config = _validated(document, data, found)
    for loc, message in _references(data):  # after the types: `default_provider: 5` is about its type
        found.add(loc, message)
    _required_secrets(data, env, refs, found)
    _token_shapes(data, env, refs, found)
    if found.problems or config is None:
        return ConfigCheck(source, base_dir, found.lines(data))
    if base_dir is not None:
        config = resolve_paths(config, base_dir)
    return ConfigCheck(source, base_dir, [], config_warnings(config), _summary(config), config)


class _Problems:
    """Problems by key; a key (or a section) with one is not checked again."""

    def __init__(self) -> None:
        self.problems: list[tuple[Loc, str]] = []

    def add(self, loc: Loc, message: str) -> None:
        if not self.covers(loc):
            self.problems.append((loc, message))

    def covers(self, loc: Loc) -> bool:
        return any(loc[: len(known)] == known for known, _ in self.problems)

    def lines(self, data: Any) -> list[str]:
        """Each as "key.path: message", in the order of the keys in the file."""
        order = _positions(data)

        def position(loc: Loc) -> int:
            return next((order[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in order), -1)

        ranked = sorted(enumerate(self.problems), key=lambda item: (position(item[1][0]), item[0]))
        return [f"{key_path(loc)}: {message}" for _, (loc, message) in ranked]


def _positions(node: Any, loc: Loc = (), order: dict[Loc, int] | None = None) -> dict[Loc, int]:
    order = {} if order is None else order
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        order[(*loc, key)] = len(order)
        _positions(value, (*loc, key), order)
    return order


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(
    node: Any, env: Mapping[str, str], loc: Loc, found: _Problems, refs: dict[Loc, list[str]]
) -> Any:
    """`node` with ${VAR} and ${VAR:-default} filled in from `env`; `refs` records each key's variables."""
    if isinstance(node, dict):
        return {k: _interpolate(v, env, (*loc, str(k)), found, refs) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, (*loc, i), found, refs) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        refs.setdefault(loc, []).append(name)
        if name in env:
            return env[name]
        if default is None:
            found.add(loc, f"environment variable {name} is not set")
        return default or ""

    return _ENV_RE.sub(substitute, node)


def _from_env(loc: Loc, env: Mapping[str, str], refs: Mapping[Loc, list[str]]) -> str:
    """Where an empty or odd value came from, e.g. " (environment variable X is set but empty)"."""
    notes = [f"environment variable {name} is set but empty" if name in env and not env[name]
             else f"environment variable {name} is not set and its default is empty" if name not in env
             else f"read from environment variable {name}"
             for name in refs.get(loc, [])]  # fmt: skip
    return f" ({'; '.join(notes)})" if notes else ""


def _provider_entries(data: dict[str, Any], found: _Problems) -> list[ProviderConfig] | None:
    """Each entry validated as its `type`'s own config class; None when there is no usable list."""
    if "providers" not in data:
        return None
    raw = data["providers"]
    if not isinstance(raw, list):
        found.add(("providers",), "must be a list of provider entries (`- name: ...` lines with a type each)")
        return None
    built: list[ProviderConfig] = []
    types = ", ".join(sorted(PROVIDERS))
    for i, entry in enumerate(raw):
        loc: Loc = ("providers", i)
        kind = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(entry, dict):
            found.add(loc, "must be a provider entry: keys such as name, type and api_key")
        elif "type" not in entry:
            found.add((*loc, "type"), f"is missing; the types are: {types}")
        elif not isinstance(kind, str) or kind not in PROVIDERS:
            hint = did_you_mean(kind, PROVIDERS) if isinstance(kind, str) else ""
            found.add((*loc, "type"), f"unknown provider type '{kind}'{hint}; the types are: {types}")
        else:
            config_class = PROVIDERS[kind].config_class
            try:
                config = config_class.model_validate(entry)
            except ValidationError as exc:
                _add_errors(exc, config_class, loc, entry, found)
                continue
            problem = url_problem(config.base_url) if config.base_url else None  # "" = the adapter decides
            if problem:
                found.add((*loc, "base_url"), problem)
            built.append(config)
    return built


def _references(data: dict[str, Any]) -> list[tuple[Loc, str]]:
    """How the raw document's parts name each other (see `reference_problems`)."""
    entries = data.get("providers")
    if "providers" not in data:
        entries = [{"name": "local"}]  # the default
    elif not isinstance(entries, list):
        return []  # reported as such: what it might have named is unknown
    names: list[str | None] = []
    fallbacks: list[list[str]] = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        names.append(name if isinstance(name, str) and name else None)
        wanted = entry.get("fallbacks") if isinstance(entry, dict) else None
        fallbacks.append([f for f in wanted if isinstance(f, str)] if isinstance(wanted, list) else [])
    default = data.get("default_provider")
    telegram, webhooks = data.get("telegram"), data.get("webhooks")
    webhook_mode = isinstance(telegram, dict) and telegram.get("mode") == "webhook" and not webhooks
    web = data.get("web")
    web_on = isinstance(web, dict) and web.get("enabled") is True and not webhooks
    return reference_problems(names, fallbacks, None if default is None else str(default), webhook_mode,
                              web_without_webhooks=web_on)


def _validated(document: dict[str, Any], data: dict[str, Any], found: _Problems) -> AppConfig | None:
    try:
        return AppConfig.model_validate(document, context=CHECKED)
    except ValidationError as exc:
        _add_errors(exc, AppConfig, (), data, found)
        return None


def _add_errors(
    exc: ValidationError, model: type[BaseModel], prefix: Loc, raw: Any, found: _Problems
) -> None:
    """pydantic's errors in plain words, one per key: the alternatives of a union are joined."""
    grouped: dict[Loc, list[ErrorDetails]] = {}
    for error in exc.errors():
        grouped.setdefault(_data_loc(error, raw), []).append(error)
    for loc, errors in grouped.items():
        messages: list[str] = []
        for error in errors:
            where, message = _plain(error, model, loc)
            if where != loc:  # a model's own check naming one of its keys ("lease: must be ...")
                found.add((*prefix, *where), message)
            elif message not in messages:
                messages.append(message)
        if messages:
            musts = [m.removeprefix("must be ") for m in messages if m.startswith("must be ")]
            joined = f"must be {' or '.join(musts)}" if len(musts) == len(messages) else "; ".join(messages)
            found.add((*prefix, *loc), joined)


def _data_loc(error: ErrorDetails, raw: Any) -> Loc:
    """The error's key path within the document: pydantic's loc without the names it adds for the
    alternatives of a union (`shard_count.int`), plus the key a `missing` error names."""
    loc: list[str | int] = []
    node = raw
    for part in error["loc"]:
        listed = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if listed or (isinstance(node, dict) and part in node):
            node = node[part]
        elif error["type"] != "missing" or part != error["loc"][-1]:
            break
        loc.append(part)
    return tuple(loc)


def _plain(error: ErrorDetails, model: type[BaseModel], loc: Loc) -> tuple[Loc, str]:
    """One error as (key path, plain message)."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        hint = did_you_mean(str(loc[-1]), known) or (f"; known keys: {', '.join(known)}" if known else "")
        return loc, f"unknown key '{loc[-1]}'{hint}"
    if kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error", error["msg"]))
        key, _, rest = message.partition(": ")
        if rest and key in _fields_at(model, loc):  # a model's own check names its key first
            return (*loc, key), rest
        return loc, _without_secrets(message, value, str(loc[-1]) if loc else "")
    if kind in ("literal_error", "enum"):
        expected = str(ctx.get("expected", ""))
        hint = did_you_mean(value, re.findall(r"'([^']*)'", expected)) if isinstance(value, str) else ""
        return loc, f"must be {expected}{hint}"
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        return loc, "must be text (put it in quotes)"
    if kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        return loc, f"{words} {_number(ctx.get(bound))}"
    if kind in _LENGTHS:
        limit = ctx.get("min_length" if "short" in kind else "max_length")
        return loc, "must not be empty" if limit == 1 and "short" in kind else _LENGTHS[kind].format(limit)
    return loc, _MESSAGES.get(kind) or error["msg"].replace("Input should be", "must be")


_MESSAGES = {
    "missing": "is missing (it is required)",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list, e.g. [a, b]",
    "dict_type": "must be a section of keys (`key: value` lines below it)",
    "model_type": "must be a section of keys (`key: value` lines below it)",
    "model_attributes_type": "must be a section of keys (`key: value` lines below it)",
}
_BOUNDS = {
    "greater_than_equal": ("ge", "must be at least"),
    "greater_than": ("gt", "must be more than"),
    "less_than_equal": ("le", "must be at most"),
    "less_than": ("lt", "must be less than"),
}
_LENGTHS = {
    "string_too_short": "must be at least {} characters long",
    "string_too_long": "must be at most {} characters long",
    "too_short": "must have at least {} items",
    "too_long": "must have at most {} items",
}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys of the section at `loc` (list indexes skipped), or [] where it is not a section."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = current.model_fields.get(part)
        current = _model_in(info.annotation) if info is not None else None
    return list(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for m in map(_model_in, get_args(annotation)) if m is not None), None)


#: Keys whose values may be secrets or carry one (tokens, keys, URLs with credentials, addresses).
_SENSITIVE_KEY = re.compile(r"url|listen|token|secret|key|password|dsn|api_base|database", re.IGNORECASE)
_MIN_HIDDEN = 6  # a shorter value is no secret, and hiding it could garble the message's own words


def _without_secrets(message: str, value: Any, key: str) -> str:
    """A validator's message with any value of a key that may hold a secret (its own, or one inside the
    section it was given) replaced by ***."""
    for secret in _sensitive_values(value, key):
        message = message.replace(secret, "***").replace(repr(secret)[1:-1], "***")
    return message


def _sensitive_values(value: Any, key: str) -> list[str]:
    if isinstance(value, dict):
        return [s for name, item in value.items() for s in _sensitive_values(item, str(name))]
    if isinstance(value, list):
        return [s for item in value for s in _sensitive_values(item, key)]
    if isinstance(value, str) and len(value) >= _MIN_HIDDEN and _SENSITIVE_KEY.search(key):
        return [value]
    return []


def _required_secrets(data: dict[str, Any], env: Mapping[str, str], refs: Mapping[Loc, list[str]],
                      found: _Problems) -> None:  # fmt: skip
    """Each provider entry's `required_secrets` (see ProviderConfig) present and not empty."""
    entries = data.get("providers")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or not isinstance(kind, str) or kind not in PROVIDERS:
            continue
        for key in PROVIDERS[kind].config_class.required_secrets:
            value = entry.get(key)
            if key not in entry:
                found.add(("providers", i, key), f"is missing: a provider of type {kind} needs it")
            elif value is None or (isinstance(value, str) and not value.strip()):
                found.add(("providers", i, key), f"is empty{_from_env(('providers', i, key), env, refs)}: "
                                                 f"a provider of type {kind} needs it")


_TELEGRAM_TOKEN = re.compile(r"[0-9]+:[A-Za-z0-9_-]{35}")
_DISCORD_TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def _token_shapes(data: dict[str, Any], env: Mapping[str, str], refs: Mapping[Loc, list[str]],
                  found: _Problems) -> None:  # fmt: skip
    """A token that cannot be one is refused here rather than by the platform at start-up. The messages
    describe the shape, never the token."""
    for platform, check in (("telegram", _telegram_token_problem), ("discord", _discord_token_problem)):
        section = data.get(platform)
        token = section.get("token") if isinstance(section, dict) else None
        if isinstance(token, str) and token:
            problem = check(token)
            if problem:
                found.add((platform, "token"), problem + _from_env((platform, "token"), env, refs))


def _telegram_token_problem(token: str) -> str | None:
    if _TELEGRAM_TOKEN.fullmatch(token):
        return None
    if token != token.strip():
        return "has spaces or a line break around it: give the token alone"
    if token.lower().startswith("bot"):
        return "starts with 'bot': give the token alone, without the prefix"
    return ("does not look like a Telegram bot token: that is the bot's numeric id, a colon, then 35 "
            "letters, digits, '_' or '-', as @BotFather gives it")


def _discord_token_problem(token: str) -> str | None:
    if _DISCORD_TOKEN.fullmatch(token):
        return None
    if token != token.strip():
        return "has spaces or a line break around it: give the token alone"
    if token.lower().startswith("bot "):
        return "starts with 'Bot ': give the token alone, without the prefix"
    if token.isdigit():
        return ("is a number (an application or user id?), not a bot token: copy the token from the "
                "Developer Portal's Bot page")
    return ("does not look like a Discord bot token: that is three parts of letters, digits, '_' or '-' "
            "joined by dots (Developer Portal → Bot → Reset Token; not the client secret)")


def config_warnings(config: AppConfig) -> list[str]:
    """What works but is probably not meant, on a config without problems (check-config prints them,
    `run` logs them): first the keys that moved (AppConfig folds them into their new place)."""
    warnings = config.deprecations
    on = config.chat_frontends
    if not on:
        return warnings
    if config.provider(config.default_provider).type == "local":
        verb = "is" if len(on) == 1 else "are"
        warnings.append(f"default_provider: '{config.default_provider}' is the built-in simulator and "
                        f"{' and '.join(on)} {verb} on: members would get simulator images (set "
                        "default_provider to a provider with an image API)")
    if config.webhooks is None and not config.metrics.listen:
        warnings.append("metrics.listen: not set and there is no webhooks section: /healthz and /metrics are "
                        "served nowhere, so nothing can tell whether the bot is up (set e.g. "
                        "metrics.listen: 127.0.0.1:9100)")
    return warnings


def _summary(config: AppConfig) -> list[str]:
    """What the config turns on, one line each (no secrets: the database without its password)."""
    parts = []
    if "telegram" in config.chat_frontends and config.telegram is not None:
        parts.append(f"telegram ({config.telegram.mode})")
    if "discord" in config.chat_frontends and config.discord is not None:
        parts.append(f"discord ({_shards(config.discord)})")
    frontends = ", ".join(parts) or "none (no telegram.token or discord.token: only the CLI uses this config)"
    providers = ", ".join(f"{p.name} ({p.type})" for p in config.providers)
    lines = [f"frontends: {frontends}", f"providers: {providers}; default: {config.default_provider}",
             f"database: {database_location(config.database)}", f"media cache: {config.media_cache_dir}"]
    if config.webhooks is not None:
        listen = config.webhooks.listen
        lines.append(f"webhooks: listening on {listen} (provider callbacks, /healthz and /metrics)")
    elif config.metrics.listen:
        lines.append(f"health and metrics: /healthz and /metrics on {config.metrics.listen}")
    else:
        lines.append("health and metrics: not served (no webhooks section, no metrics.listen)")
    return lines


def _shards(discord: DiscordConfig) -> str:
    if discord.shard_count is None:
        return "one connection, unsharded"
    if discord.shard_count == "auto":
        return "shards: as many as Discord recommends, all in this process"
    if discord.shard_ids is None:
        return f"{discord.shard_count} shards, all in this process"
    return f"shards {', '.join(map(str, discord.shard_ids))} of {discord.shard_count}"
