"""Configuration: YAML with ${ENV} interpolation, validated once at start into pydantic models.

Every problem is reported with its key path (and a missing environment variable by name), all at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from bot.errors import ConfigError
from providers import PROVIDERS
from providers.base import ProviderConfig
from providers.local import LocalConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MediaConfig(_Section):
    max_download_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    download_timeout: float = Field(default=30.0, gt=0)
    allow_private_addresses: bool = False  # true only for tests and local setups
    cache_dir: Path | None = None  # default: "<database>.media" beside the database


class PollingConfig(_Section):
    idle_interval: float = Field(default=1.0, gt=0)  # longest sleep when nothing is due
    backoff_base: float = Field(default=2.0, gt=0)  # first retry delay after a failed poll or submit
    backoff_max: float = Field(default=60.0, gt=0)
    max_submit_attempts: int = Field(default=5, ge=1)  # per provider, for unavailable errors


class TelegramConfig(_Section):
    token: SecretStr = SecretStr("")
    base_url: str | None = None
    base_file_url: str | None = None
    allowed_chat_ids: list[int] = Field(default_factory=list)
    owner_only_buttons: bool = True


class DiscordConfig(_Section):
    token: SecretStr = SecretStr("")
    guild_ids: list[int] = Field(default_factory=list)  # sync targets and allowlist; empty = global, any
    api_base: str | None = None  # REST reverse proxy, e.g. http://127.0.0.1:8082/api/v10
    gateway_url: str | None = None  # gateway reverse proxy, e.g. ws://127.0.0.1:8082/gw
    owner_only_buttons: bool = True
    channel_edits: int = Field(default=5, ge=1)  # message edits per channel per `channel_period`
    channel_period: float = Field(default=5.0, gt=0)  # seconds (Discord: about 5 edits / 5 s)
    global_per_second: int = Field(default=40, ge=1)  # all requests of the bot (Discord: 50/s)
    guild_ready_timeout: float = Field(default=2.0, ge=0)  # discord.py's wait for GUILD_CREATEs


class WebhooksConfig(_Section):
    listen: str = "0.0.0.0:8080"
    public_url: str


def _default_providers() -> list[ProviderConfig]:
    """With no config at all the built-in simulator is the one provider."""
    return [LocalConfig(name="local")]


class AppConfig(_Section):
    database: Path = Path("imagine-bot.sqlite3")
    default_provider: str = "local"
    providers: list[ProviderConfig] = Field(default_factory=_default_providers)
    telegram: TelegramConfig | None = None
    discord: DiscordConfig | None = None
    webhooks: WebhooksConfig | None = None
    media: MediaConfig = Field(default_factory=MediaConfig)
    polling: PollingConfig = Field(default_factory=PollingConfig)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _names_resolve(self) -> AppConfig:
        names = [p.name for p in self.providers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"provider names must be unique; repeated: {', '.join(dupes)}")
        if self.default_provider not in names:
            raise ValueError(f"default_provider '{self.default_provider}' is not one of: {', '.join(names)}")
        for p in self.providers:
            unknown = [f for f in p.fallbacks if f not in names or f == p.name]
            if unknown:
                raise ValueError(f"provider '{p.name}' names unknown fallbacks: {', '.join(unknown)}")
        return self

    def provider(self, name: str) -> ProviderConfig:
        return next(p for p in self.providers if p.name == name)

    @property
    def media_cache_dir(self) -> Path:
        return self.media.cache_dir or self.database.with_name(self.database.name + ".media")


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(node: Any, env: Mapping[str, str], path: str, problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, env, f"{path}.{k}" if path else str(k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, f"{path}.{i}", problems) for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{path}: environment variable {name} is not set")
        return ""

    return _ENV_RE.sub(substitute, node)


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _provider_configs(raw: Any, problems: list[str]) -> list[ProviderConfig] | None:
    if not isinstance(raw, list):
        problems.append("providers: must be a list of provider entries")
        return None
    built: list[ProviderConfig] = []
    for i, entry in enumerate(raw):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind not in PROVIDERS:
            types = ", ".join(sorted(PROVIDERS))
            problems.append(f"providers.{i}.type: must be one of {types} (got {kind!r})")
            continue
        try:
            built.append(PROVIDERS[kind].config_class.model_validate(entry))
        except ValidationError as exc:
            problems.extend(f"providers.{i}.{_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
    return built


def parse_config(data: Any, env: Mapping[str, str], source: str = "<config>") -> AppConfig:
    """Validate an already-parsed YAML document. Raises ConfigError listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["the top level must be a mapping of keys"])
    problems: list[str] = []
    data = _interpolate(data, env, "", problems)
    if "providers" in data:
        data["providers"] = _provider_configs(data["providers"], problems)
        if data["providers"] is None:
            del data["providers"]
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        problems.extend(f"{_loc(e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(source, problems) from exc
    if problems:
        raise ConfigError(source, problems)
    return config


def load_config(path: Path | None, env: Mapping[str, str]) -> AppConfig:
    """Load `path` (or the defaults when None). Raises ConfigError with every problem found."""
    if path is None:
        return parse_config({}, env)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(path), [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from exc
    return parse_config(data, env, str(path))
