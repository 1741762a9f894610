"""Configuration: YAML with ${ENV} interpolation, validated once at start into pydantic models.

Every problem is reported with its key path (and a missing environment variable by name), all at once.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from bot.errors import ConfigError
from providers import PROVIDERS
from providers.base import Action, ProviderConfig
from providers.local import LocalConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _url_problem(value: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """Why `value` is not a base URL `scheme://host[:port][/path]` (no query: paths are appended to it),
    or None. The message never repeats the value: a URL may carry credentials or a token."""
    shape = f"must be a URL like {schemes[-1]}://host[:port][/path] ({' or '.join(schemes)})"
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError when it is not a number from 0 to 65535
    except ValueError:
        return shape
    if parts.scheme not in schemes or not parts.hostname or port == 0 or re.search(r"\s", value):
        return shape
    if parts.query or parts.fragment or "?" in value or "#" in value:
        return f"{shape}, without a query or fragment"
    return None


def _http_url(value: str | None) -> str | None:
    problem = _url_problem(value) if value is not None else None
    if problem:
        raise ValueError(problem)
    return value


def _ws_url(value: str | None) -> str | None:
    problem = _url_problem(value, ("ws", "wss")) if value is not None else None
    if problem:
        raise ValueError(problem)
    return value


#: Pillow's own decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`): above it Pillow warns or refuses
#: by itself, and `Image.crop` checks it again, so our limit must not exceed it.
PILLOW_MAX_PIXELS = 89_478_485
DEFAULT_MAX_PIXELS = 50_000_000


class MediaConfig(_Section):
    max_download_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    download_timeout: float = Field(default=30.0, gt=0)  # longest wait for any one read (connect, bytes)
    download_deadline: float = Field(default=60.0, gt=0)  # longest time for a whole download
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, ge=1, le=PILLOW_MAX_PIXELS)  # width * height
    allow_private_addresses: bool = False  # true only for tests and local setups
    cache_dir: Path | None = None  # default: "<database>.media" beside the database


class PollingConfig(_Section):
    idle_interval: float = Field(default=1.0, gt=0)  # longest sleep when nothing is due
    backoff_base: float = Field(default=2.0, gt=0)  # first retry delay after a failed poll or submit
    backoff_max: float = Field(default=60.0, gt=0)
    max_submit_attempts: int = Field(default=5, ge=1)  # per provider, for unavailable errors
    reconcile_delay: float = Field(default=3.0, ge=0)  # wait before asking about an unanswered submit
    gather: float = Field(default=0.02, ge=0)  # after a wake, wait for more commands to claim at once


class RateLimit(_Section):
    """At most `count` messages per `period` seconds."""

    count: int = Field(ge=1)
    period: float = Field(gt=0)


class TelegramConfig(_Section):
    token: SecretStr = SecretStr("")
    base_url: str | None = None  # a self-hosted Bot API server, e.g. http://127.0.0.1:8081/bot
    base_file_url: str | None = None
    allowed_chat_ids: list[int] = Field(default_factory=list)  # empty = every chat
    owner_only_buttons: bool = True
    # Flood limits (Telegram: ~1 message/s per chat, 20/min per group, ~30/s overall; edits count).
    chat_rate: RateLimit = RateLimit(count=1, period=1.0)
    group_rate: RateLimit = RateLimit(count=20, period=60.0)
    global_rate: RateLimit = RateLimit(count=30, period=1.0)
    album_wait: float = Field(default=1.0, ge=0)  # how long /blend waits for the rest of an album
    poll_timeout: float = Field(default=10.0, ge=0)  # getUpdates long-poll timeout
    # polling: this process long-polls getUpdates (one process only: Telegram allows one consumer).
    # webhook: Telegram posts updates to `webhooks.public_url` + /updates/telegram, taken by any worker.
    mode: Literal["polling", "webhook"] = "polling"

    _urls = field_validator("base_url", "base_file_url")(_http_url)


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
    # Sharding (Discord requires it past ~2,500 guilds). shard_count: null = one unsharded connection;
    # "auto" = Discord's recommended count (GET /gateway/bot), every shard in this process; a number =
    # that many shards, all here or only `shard_ids` (each worker its own ids, together all of them).
    shard_count: int | Literal["auto"] | None = Field(default=None)
    shard_ids: list[int] | None = None
    identify_interval: float = Field(default=5.0, ge=0)  # seconds between IDENTIFYs of one bucket

    @model_validator(mode="after")
    def _shards(self) -> DiscordConfig:
        if isinstance(self.shard_count, int) and self.shard_count < 1:
            raise ValueError("discord.shard_count must be at least 1 (or \"auto\", or null)")
        if self.shard_ids is not None:
            if not isinstance(self.shard_count, int):
                raise ValueError("discord.shard_ids needs a numeric discord.shard_count (every worker "
                                 "must agree on it)")
            wrong = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if wrong or not self.shard_ids or len(set(self.shard_ids)) != len(self.shard_ids):
                last = self.shard_count - 1
                raise ValueError(f"discord.shard_ids must be distinct numbers from 0 to {last}")
        return self

    _api_base = field_validator("api_base")(_http_url)
    _gateway_url = field_validator("gateway_url")(_ws_url)


class WebhooksConfig(_Section):
    listen: str = "0.0.0.0:8080"  # host:port the receiver binds
    public_url: str  # how providers reach it, e.g. https://bot.example.com (a reverse proxy's URL)
    poll_interval: float = Field(default=60.0, gt=0)  # fallback polling for jobs that expect a callback
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)  # larger callback bodies get 413

    # Neither message repeats the value: an address or a URL may carry a secret (a token in a path).
    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        if not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\s]*):\d{1,5}", value):
            raise ValueError("must be HOST:PORT, e.g. 0.0.0.0:8080 or [::]:8080")
        return value

    _public_url = field_validator("public_url")(_http_url)


def _as_strings(value: Any) -> Any:
    """YAML gives ids as ints; access lists and admin ids compare as strings."""
    return [str(v) for v in value] if isinstance(value, list) else value


IdList = Annotated[list[str], BeforeValidator(_as_strings)]


class LimitsConfig(_Section):
    """Usage limits in credits (each job costs `costs[kind]`, else `default_cost`); null = unlimited."""

    user_per_hour: float | None = Field(default=None, ge=0)
    user_per_day: float | None = Field(default=None, ge=0)
    user_concurrent: int | None = Field(default=None, ge=0)  # live (queued/running) jobs per user
    chat_per_hour: float | None = Field(default=None, ge=0)  # per Discord server / Telegram chat
    chat_per_day: float | None = Field(default=None, ge=0)
    default_cost: float = Field(default=1.0, ge=0)
    costs: dict[str, float] = Field(default_factory=dict)  # action kind -> cost, e.g. {upscale: 0}
    exempt_chat_admins: bool = True  # chat/server admins are not limited (operators never are)

    @field_validator("costs")
    @classmethod
    def _known_kinds(cls, costs: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(costs) - {a.value for a in Action})
        if unknown:
            kinds = ", ".join(a.value for a in Action)
            raise ValueError(f"unknown action kinds: {', '.join(unknown)}; use: {kinds}")
        if any(v < 0 for v in costs.values()):
            raise ValueError("costs must not be negative")
        return costs


class ModerationConfig(_Section):
    banned_words: list[str] = Field(default_factory=list)  # whole words/phrases, case-insensitive
    banned_words_file: Path | None = None  # one word or phrase per line; '#' starts a comment


class AccessConfig(_Section):
    """Ids as "123" (any platform) or "discord:123"; chats are Discord server or channel ids and
    Telegram chat ids. An empty allowlist allows everyone; the blocklists always win."""

    allow_users: IdList = Field(default_factory=list)
    block_users: IdList = Field(default_factory=list)
    allow_chats: IdList = Field(default_factory=list)
    block_chats: IdList = Field(default_factory=list)


class AdminsConfig(_Section):
    users: IdList = Field(default_factory=list)  # operators: admins everywhere (the CLI always is)
    discord_role_ids: IdList = Field(default_factory=list)  # members with one of these roles
    discord_manage_server: bool = True  # members with Manage Server are admins of that server
    telegram_chat_admins: bool = True  # chat administrators are admins of that chat


class LoggingConfig(_Section):
    format: Literal["plain", "json"] = "plain"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None  # default: top-level log_level


class MetricsConfig(_Section):
    listen: str | None = None  # host:port for /metrics and /healthz when there is no webhooks server


class RetentionConfig(_Section):
    """Finished jobs (with their charges, callback secrets and the inputs only they used) older than
    `keep_days` are pruned in the background every `every_hours`; /jobs, old buttons and /admin stats
    reach no further back. `keep_days: null` keeps everything."""

    keep_days: float | None = Field(default=90.0, gt=0)
    every_hours: float = Field(default=6.0, gt=0)


class WorkersConfig(_Section):
    """This process among several `run` processes sharing one PostgreSQL database. Each chat's messages
    are shown by one worker at a time, the holder of the chat's lease; a worker renews its leases every
    `heartbeat` seconds, and one that stops renewing (it died) loses them after `lease` seconds. `id`
    names this worker (default: the host name, which a restart keeps, so a restarted worker takes its
    chats straight back); several workers on one host need an `id` each."""

    id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=64)
    heartbeat: float = Field(default=2.0, gt=0)
    lease: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _lease_outlives_heartbeats(self) -> WorkersConfig:
        if self.lease < 2 * self.heartbeat:
            raise ValueError("workers.lease must be at least twice workers.heartbeat")
        return self


def is_database_url(database: Path | str) -> bool:
    """`database:` names a PostgreSQL server (a URL) rather than a SQLite file (a path)."""
    return str(database).startswith(("postgresql://", "postgres://"))


def database_location(database: Path | str) -> str:
    """Where the database is, without credentials: a path, or `postgresql://host:port/name`."""
    if not is_database_url(database):
        return str(database)
    parts = urlsplit(str(database))
    return f"postgresql://{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def database_password(database: Path | str) -> str | None:
    """The password in a database URL (a secret: never logged), if any."""
    return urlsplit(str(database)).password if is_database_url(database) else None


def _default_providers() -> list[ProviderConfig]:
    """With no config at all the built-in simulator is the one provider."""
    return [LocalConfig(name="local")]


class AppConfig(_Section):
    database: Path | str = Path("imagine-bot.sqlite3")  # a SQLite file, or a postgresql:// URL
    default_provider: str = "local"
    providers: list[ProviderConfig] = Field(default_factory=_default_providers)
    telegram: TelegramConfig | None = None
    discord: DiscordConfig | None = None
    webhooks: WebhooksConfig | None = None
    media: MediaConfig = Field(default_factory=MediaConfig)
    polling: PollingConfig = Field(default_factory=PollingConfig)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    moderation: ModerationConfig = Field(default_factory=ModerationConfig)
    access: AccessConfig = Field(default_factory=AccessConfig)
    admins: AdminsConfig = Field(default_factory=AdminsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: Any) -> Any:
        return value if isinstance(value, str) and is_database_url(value) else Path(value)

    @field_validator("providers", mode="before")
    @classmethod
    def _typed_providers(cls, value: Any) -> Any:
        """Entries given as mappings become their `type`'s own config class (not the bare base class,
        which would drop every type-specific key); `parse_config` does the same with better messages."""
        if not isinstance(value, list):
            return value
        return [
            PROVIDERS[entry["type"]].config_class.model_validate(entry)
            if isinstance(entry, dict) and entry.get("type") in PROVIDERS
            else entry
            for entry in value
        ]

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
        if self.telegram is not None and self.telegram.mode == "webhook" and self.webhooks is None:
            raise ValueError("telegram.mode: webhook needs a webhooks section (Telegram posts updates to "
                             "webhooks.public_url + /updates/telegram)")
        return self

    def provider(self, name: str) -> ProviderConfig:
        return next(p for p in self.providers if p.name == name)

    @property
    def media_cache_dir(self) -> Path:
        if self.media.cache_dir is not None:
            return self.media.cache_dir
        if isinstance(self.database, str):  # a server: the cache is this machine's own
            return Path("imagine-bot.media")
        return self.database.with_name(self.database.name + ".media")


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


#: Keys whose values may be secrets or carry one (tokens, keys, URLs with credentials, addresses).
_SENSITIVE_KEY = re.compile(r"url|listen|token|secret|key|password|dsn|api_base", re.IGNORECASE)
_MIN_HIDDEN = 6  # a shorter value is no secret, and hiding it could garble the message's own words


def _sensitive_values(value: Any, key: str) -> Iterator[str]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _sensitive_values(item, str(name))
    elif isinstance(value, list):
        for item in value:
            yield from _sensitive_values(item, key)
    elif isinstance(value, str) and len(value) >= _MIN_HIDDEN and _SENSITIVE_KEY.search(key):
        yield value


def _problem(error: ErrorDetails, prefix: str = "") -> str:
    """One pydantic error as `key.path: message`. Whatever validator wrote the message, it never shows
    the value of a key that may hold a secret (its own, or one inside a section it was given)."""
    loc = error["loc"]
    message = error["msg"].removeprefix("Value error, ")  # pydantic's prefix says nothing to an admin
    for value in _sensitive_values(error.get("input"), str(loc[-1]) if loc else ""):
        message = message.replace(value, "***").replace(repr(value)[1:-1], "***")
    return f"{prefix}{_loc(loc) or '(top level)'}: {message}"


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
            config = PROVIDERS[kind].config_class.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_problem(e, f"providers.{i}.") for e in exc.errors())
            continue
        problem = _url_problem(config.base_url) if config.base_url else None  # "" = the adapter decides
        if problem:
            problems.append(f"providers.{i}.base_url: {problem}")
        built.append(config)
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
        problems.extend(_problem(e) for e in exc.errors())
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
