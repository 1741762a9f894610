"""Configuration: YAML with ${ENV} interpolation, validated once at start into pydantic models.

This module holds the models; bot/config_paths.py where the config is found and what its relative paths
mean; bot/config_check.py checks a document in one pass (every problem with its key path, in plain
words) and builds these models from it.
"""

from __future__ import annotations

import difflib
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from providers import PROVIDERS
from providers.base import Action, ProviderConfig
from providers.local import LocalConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def url_problem(value: str, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
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
    problem = url_problem(value) if value is not None else None
    if problem:
        raise ValueError(problem)
    return value


def _ws_url(value: str | None) -> str | None:
    problem = url_problem(value, ("ws", "wss")) if value is not None else None
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
    # Deprecated (folded into the access section by AppConfig, with a warning): use access.allow_chats
    # ("telegram:<id>") and access.owner_only_buttons.
    allowed_chat_ids: list[int] | None = None
    owner_only_buttons: bool | None = None
    # Flood limits (Telegram: ~1 message/s per chat, 20/min per group, ~30/s overall; edits count).
    chat_rate: RateLimit = RateLimit(count=1, period=1.0)
    group_rate: RateLimit = RateLimit(count=20, period=60.0)
    global_rate: RateLimit = RateLimit(count=30, period=1.0)
    # A chat showing more unfinished jobs than this is congested: further jobs get no placeholder and
    # no progress, one status message says how many are in the works, each result is posted when ready
    # (one message per job instead of two or more). null: never.
    congestion_jobs: int | None = Field(default=5, ge=1)
    album_wait: float = Field(default=1.0, ge=0)  # how long /blend waits for the rest of an album
    poll_timeout: float = Field(default=10.0, ge=0)  # getUpdates long-poll timeout
    # polling: this process long-polls getUpdates (one process only: Telegram allows one consumer).
    # webhook: Telegram posts updates to `webhooks.public_url` + /updates/telegram, taken by any worker.
    mode: Literal["polling", "webhook"] = "polling"

    _urls = field_validator("base_url", "base_file_url")(_http_url)


class DiscordConfig(_Section):
    token: SecretStr = SecretStr("")
    # Where the slash commands are registered (synced at every start); with ids, also the only servers
    # served (AccessPolicy decides, see AccessConfig.served); empty = global commands, every server, DMs.
    guild_ids: list[int] = Field(default_factory=list)
    api_base: str | None = None  # REST reverse proxy, e.g. http://127.0.0.1:8082/api/v10
    gateway_url: str | None = None  # gateway reverse proxy, e.g. ws://127.0.0.1:8082/gw
    owner_only_buttons: bool | None = None  # deprecated: access.owner_only_buttons (folded in, warned)
    channel_edits: int = Field(default=5, ge=1)  # message edits per channel per `channel_period`
    channel_period: float = Field(default=5.0, gt=0)  # seconds (Discord: about 5 edits / 5 s)
    global_per_second: int = Field(default=40, ge=1)  # all requests of the bot (Discord: 50/s)
    # Seconds after a command during which its job's message is edited through the interaction's own
    # webhook (a bucket per interaction, outside the global limit); the token lives 15 minutes. 0: never.
    interaction_edit_window: float = Field(default=840.0, ge=0, le=900)
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
            raise ValueError("shard_count: must be at least 1 (or \"auto\", or null)")
        if self.shard_ids is not None:
            if not isinstance(self.shard_count, int):
                raise ValueError("shard_ids: needs a numeric discord.shard_count (every worker must agree "
                                 "on it)")
            wrong = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if wrong or not self.shard_ids or len(set(self.shard_ids)) != len(self.shard_ids):
                last = self.shard_count - 1
                raise ValueError(f"shard_ids: must be distinct numbers from 0 to {last}")
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


class WebConfig(_Section):
    """The web pages (bot/web/): served on `webhooks.listen`, linked at `webhooks.public_url`. Sign-in
    is by one-time links the bot signs with `secret` (default: one generated at the first start and
    kept in the database, so every worker shares it); a link works once, for `link_expiry` seconds,
    and opens a session of `session_lifetime` seconds."""

    enabled: bool = False
    session_lifetime: float = Field(default=7 * 86400.0, gt=0)
    link_expiry: float = Field(default=600.0, gt=0, le=86400)
    init_data_max_age: float = Field(default=86400.0, gt=0)  # Telegram Web App initData older is refused
    secret: SecretStr | None = None

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (or leave it out: one is generated and stored)")
        return value


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
    # One prompt's jobs: its permutations ({red, green}) times its --repeat, at most this many (admins
    # too: a typo in braces can multiply fast). Each job is charged as one.
    max_permutations: int = Field(default=40, ge=1)
    max_repeat: int = Field(default=40, ge=1, le=40)  # --repeat N; Midjourney's own ceiling is 40

    @field_validator("costs")
    @classmethod
    def _known_kinds(cls, costs: dict[str, float]) -> dict[str, float]:
        kinds = [a.value for a in Action]
        unknown = ", ".join(f"'{k}'{did_you_mean(k, kinds)}" for k in sorted(set(costs) - set(kinds)))
        if unknown:
            raise ValueError(f"unknown action kinds: {unknown}; the kinds are: {', '.join(kinds)}")
        if any(v < 0 for v in costs.values()):
            raise ValueError("must not be negative")
        return costs


class ModerationConfig(_Section):
    banned_words: list[str] = Field(default_factory=list)  # whole words/phrases, case-insensitive
    banned_words_file: Path | None = None  # one word or phrase per line; '#' starts a comment


class AccessConfig(_Section):
    """Ids as "123" (any platform) or "discord:123"; chats are Discord server or channel ids and
    Telegram chat ids. An empty allowlist allows everyone; the blocklists always win. `allow_chats`
    restricts a platform only when it names that platform's chats ("telegram:-100123") or bare ids.
    Every rule is applied by bot.access.AccessPolicy, the same on every platform."""

    owner_only_buttons: bool = True  # a job's buttons (and /cancel) are its owner's (and chat admins' cancel)
    allow_users: IdList = Field(default_factory=list)
    block_users: IdList = Field(default_factory=list)
    allow_chats: IdList = Field(default_factory=list)
    block_chats: IdList = Field(default_factory=list)
    # platform -> the only servers it serves: set by AppConfig from `discord.guild_ids` (not a key).
    _served: dict[str, frozenset[str]] = PrivateAttr(default_factory=dict)

    @property
    def served(self) -> dict[str, frozenset[str]]:
        return self._served


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
            raise ValueError("lease: must be at least twice workers.heartbeat")
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


#: Where a key sits in the config, e.g. ("providers", 1, "api_key").
Loc = tuple[str | int, ...]


def key_path(loc: Sequence[str | int]) -> str:
    """`loc` the way problems name a key: `providers[1].api_key`, `webhooks.listen`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def reference_problems(
    names: Sequence[str | None],
    fallbacks: Sequence[Sequence[str]],
    default_provider: str | None,
    webhook_mode_without_webhooks: bool,
    *,
    web_without_webhooks: bool = False,
) -> list[tuple[Loc, str]]:
    """What is wrong with how the config's parts name each other. `names[i]` and `fallbacks[i]` are
    provider entry i's (a name None where the entry has none: it is reported on its own, and then
    nothing is said about names that might have meant it); `default_provider` None = not given."""
    problems: list[tuple[Loc, str]] = []
    first: dict[str, int] = {}
    for i, name in enumerate(names):
        if name is not None and name in first:
            problems.append((("providers", i, "name"), f"'{name}' is already the name of "
                                                       f"providers[{first[name]}]; names must be unique"))
        elif name is not None:
            first[name] = i
    known = f"the providers are: {', '.join(first)}"
    if not names:
        problems.append((("providers",), "is empty: list at least one provider (the built-in simulator is "
                                         "`- {name: local, type: local}`)"))
    elif None not in names:
        chosen = default_provider or "local"
        if chosen not in first:
            given = f"'{chosen}' is" if default_provider else "is not set, and the default 'local' is"
            hint = did_you_mean(chosen, first)
            problems.append((("default_provider",), f"{given} not a provider here{hint}; {known}"))
        for i, (name, wanted) in enumerate(zip(names, fallbacks, strict=True)):
            unknown = ", ".join(f"'{f}'{did_you_mean(f, first)}" for f in wanted if f not in first)
            wrong = [f"{unknown}: not a provider here; {known}"] if unknown else []
            wrong += [f"'{name}' cannot fall back to itself"] if name in wanted else []
            if wrong:
                problems.append((("providers", i, "fallbacks"), "; ".join(wrong)))
    if web_without_webhooks:
        problems.append((("web", "enabled"), "needs a webhooks section (the pages are served on "
                                             "webhooks.listen and linked at webhooks.public_url)"))
    if webhook_mode_without_webhooks:
        problems.append((("telegram", "mode"), "webhook needs a webhooks section (Telegram posts updates to "
                                               "webhooks.public_url + /updates/telegram)"))
    return problems


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` when one of `choices` is close to `word`, else nothing."""
    lowered = {choice.lower(): choice for choice in choices}
    close = lowered.get(word.lower()) or next(iter(difflib.get_close_matches(word, lowered.values(), 1)), "")
    return f" (did you mean '{close}'?)" if close else ""


def fold_access(access: AccessConfig, telegram: TelegramConfig | None, discord: DiscordConfig | None
                ) -> tuple[AccessConfig, list[str]]:
    """`access` with the deprecated per-platform keys folded in (`telegram.owner_only_buttons`,
    `discord.owner_only_buttons`, `telegram.allowed_chat_ids`), and a warning for each. A key set in
    `access` too wins over the old one (the warning says the old one is ignored)."""
    given = access.model_fields_set
    updates: dict[str, Any] = {}
    notes: list[str] = []
    old_buttons = {f"{name}.owner_only_buttons": section.owner_only_buttons
                   for name, section in (("telegram", telegram), ("discord", discord))
                   if section is not None and section.owner_only_buttons is not None}  # fmt: skip
    for key in old_buttons:
        if "owner_only_buttons" in given:
            notes.append(f"{key}: deprecated and ignored: access.owner_only_buttons is set and wins (one "
                         f"rule for every platform); remove {key}")
        else:
            notes.append(f"{key}: deprecated, read as access.owner_only_buttons (one rule for every "
                         "platform): move it there")
    if old_buttons and "owner_only_buttons" not in given:
        updates["owner_only_buttons"] = any(old_buttons.values())  # they disagree: owner-only, the safer
        if len(set(old_buttons.values())) > 1:
            notes.append("access.owner_only_buttons: telegram's and discord's old keys disagree: read as "
                         "true (only a job's owner presses its buttons) on both")
    old_chats = telegram.allowed_chat_ids if telegram is not None else None
    if old_chats is not None and "allow_chats" in given:
        notes.append("telegram.allowed_chat_ids: deprecated and ignored: access.allow_chats is set and "
                     "wins; list the Telegram chats there as \"telegram:<id>\" and remove "
                     "telegram.allowed_chat_ids")
    elif old_chats is not None:
        updates["allow_chats"] = [f"telegram:{chat}" for chat in old_chats]
        listed = ", ".join(f'"telegram:{chat}"' for chat in old_chats)
        notes.append(f"telegram.allowed_chat_ids: deprecated, read as access.allow_chats: [{listed}]: move "
                     "the ids there")
    return (access.model_copy(update=updates) if updates else access), notes


def _serving(access: AccessConfig, discord: DiscordConfig | None) -> AccessConfig:
    """A copy of `access` serving, on Discord, only `discord.guild_ids` (when there are any)."""
    guilds = discord.guild_ids if discord is not None else []
    served = access.model_copy()
    served._served = {"discord": frozenset(map(str, guilds))} if guilds else {}
    return served


#: `AppConfig.model_validate(..., context=CHECKED)`: the caller (bot/config_check.py) reports how the
#: parts name each other itself, key by key, together with every other problem.
CHECKED = {"references_checked": True}


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
    web: WebConfig = Field(default_factory=WebConfig)
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
    _deprecations: list[str] = PrivateAttr(default_factory=list)

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: Any) -> Any:
        if isinstance(value, Path):
            return value
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a SQLite file (e.g. imagine-bot.sqlite3) or a postgresql:// URL")
        return value if is_database_url(value) else Path(value)

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
    def _names_resolve(self, info: ValidationInfo) -> AppConfig:
        if info.context == CHECKED:
            return self
        webhook_mode = self.telegram is not None and self.telegram.mode == "webhook" and self.webhooks is None
        problems = reference_problems([p.name for p in self.providers], [p.fallbacks for p in self.providers],
                                      self.default_provider, webhook_mode,
                                      web_without_webhooks=self.web.enabled and self.webhooks is None)
        if problems:
            raise ValueError("; ".join(f"{key_path(loc)}: {message}" for loc, message in problems))
        return self

    @model_validator(mode="after")
    def _one_access_section(self) -> AppConfig:
        """AccessPolicy reads the `access` section alone: the keys that moved there are folded in here,
        each with a warning naming its new key (see `deprecations`), and `discord.guild_ids` becomes
        the servers Discord serves (`AccessConfig.served`)."""
        access, self._deprecations = fold_access(self.access, self.telegram, self.discord)
        self.access = _serving(access, self.discord)
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's copy, which validates nothing again: `access.served` is derived again here, so a
        copy with another discord section (tests change `guild_ids` this way) serves its servers."""
        copied = super().model_copy(update=update, deep=deep)
        copied.access = _serving(copied.access, copied.discord)
        return copied

    @property
    def deprecations(self) -> list[str]:
        """Keys of an older config that still work, as "key.path: what to write instead"."""
        return list(self._deprecations)

    def provider(self, name: str) -> ProviderConfig:
        return next(p for p in self.providers if p.name == name)

    @property
    def chat_frontends(self) -> list[str]:
        """The chat platforms this config turns on: a section with a non-empty token."""
        names = []
        if self.telegram and self.telegram.token.get_secret_value():
            names.append("telegram")
        if self.discord and self.discord.token.get_secret_value():
            names.append("discord")
        return names

    @property
    def web_enabled(self) -> bool:
        """The web pages are served (`web.enabled`, on the webhooks server)."""
        return self.web.enabled and self.webhooks is not None

    @property
    def media_cache_dir(self) -> Path:
        if self.media.cache_dir is not None:
            return self.media.cache_dir
        if isinstance(self.database, str):  # a server: the cache is this machine's own
            return Path("imagine-bot.media")
        return self.database.with_name(self.database.name + ".media")


def parse_config(
    data: Any, env: Mapping[str, str], source: str = "<config>", base_dir: Path | None = None
) -> AppConfig:
    """Validate an already-parsed YAML document; relative paths in it resolve against `base_dir` (None:
    left as they are, relative to the working directory). Raises ConfigError listing every problem."""
    from bot.config_check import check_document  # the checks build on this module's models

    return check_document(data, env, source, base_dir).loaded()


def load_config(path: Path | None, env: Mapping[str, str]) -> AppConfig:
    """Load `path` (or the defaults when None), relative paths resolved by `config_paths.base_dir`.
    Raises ConfigError listing every problem (what `check_config` reports)."""
    from bot.config_check import check_config

    return check_config(path, env).loaded()
