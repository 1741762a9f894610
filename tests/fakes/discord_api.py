"""A stateful fake of Discord's REST API v10 and gateway on 127.0.0.1, for the real discord.py client.

    async with DiscordFake() as fake:
        with point_discord_at(fake):          # Route.BASE + DEFAULT_GATEWAY -> the fake
            await client.login(fake.token); task = asyncio.create_task(client.connect())
            itx = await fake.slash_command(fake.guild_id, fake.channel_id, fake.user, "imagine", {...})
            await fake.wait_for(lambda: fake.messages(fake.channel_id))

Every REST request is matched against Discord's own OpenAPI document (tests/fakes/specs/): an unknown
path or method answers 404/405, a JSON body (or multipart `payload_json`) that breaks the request schema
answers 400 50035; both land in `fake.violations`. On top of the schema it enforces the limits of
DESIGN.md §5 (custom_id, rows, content, embeds, upload sizes), the interaction ack deadline and token
lifetime (15 min: then 401 50027 Invalid Webhook Token), and rate limits as Discord's docs lay them out:
bot-token message edits share a per-channel bucket (`edit_limit`, ~5 per 5 s) and every bot-token request
counts against the bot's global limit (`global_limit`, 50/s: a 429 with `"global": true`); the
interaction routes (`/interactions/...` callbacks and the interaction's webhook `/webhooks/{app}/{token}`:
follow-ups and `@original` / follow-up edits) are outside the global limit, and the webhook ones have a
bucket per interaction (webhook id + token, `webhook_limit`), never the channel's. Every duration is
multiplied by `time_scale`. `limited` counts the 429s sent by scope (channel-edit, interaction-webhook,
global, injected); `sent_429` is their sum.
Besides guild text channels it has DMs (`dm_channel(user)`, `slash_command(None, ...)`: no guild_id,
`user` instead of `member`, global commands only) and public threads (`add_thread`, `archive_thread`:
edits there answer 400 50083 until a new message unarchives it; a locked one refuses that too).
Clients should pass `guild_ready_timeout=0.05` or so: discord.py waits that long after the last
GUILD_CREATE before `on_ready` (2 s by default).
Creating a message with `enforce_nonce` (discord.py always sends one) returns the message the same
author created with the same nonce within `nonce_window` seconds instead of creating another, as
Discord documents; an interaction acknowledged twice answers 400 40060 (a restarted bot does that).
Forms: a callback of type 9 (MODAL) records the form on the interaction (`it.modal`, checked against
the spec like every body); `submit_modal(it, {custom_id: value})` is its person submitting it, an
INTERACTION_CREATE of type 5 (MODAL_SUBMIT) carrying the pressed button's message, which may be answered
with 4/5, or 6/7 as a component's (a form never answers a form).
Sharding as Discord documents it: a guild's events go to shard (guild_id >> 22) % shard_count, DMs to
shard 0; GET /gateway/bot recommends `shards` and tells `max_concurrency`. IDENTIFYs share buckets
`shard_id % max_concurrency`, one per `identify_interval` (5 s) each: a faster one is answered with
Opcode 9 Invalid Session and lands in `identify_violations` (every one lands in `identifies`). A shard
outside [0, shard_count) closes 4010, fewer shards than `required_shards` closes 4011. discord.py sleeps
5 s before every IDENTIFY but a client's first (`before_identify_hook`), whatever `max_concurrency` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import mimetypes
import re
import secrets
import time
from collections import Counter, namedtuple
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yarl
from aiohttp import BodyPartReader, WSMsgType, web
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.fakes._server import FakeServer, serve_forever

SPEC_PATH = Path(__file__).parent / "specs" / "discord-openapi.json"
DISCORD_EPOCH_MS = 1_420_070_400_000
MiB = 1024 * 1024
ALL_PERMISSIONS = str((1 << 51) - 1)
ADMINISTRATOR, MANAGE_GUILD = 1 << 3, 1 << 5
MEMBER_PERMISSIONS = str(int(ALL_PERMISSIONS) & ~(ADMINISTRATOR | MANAGE_GUILD))  # an ordinary member
GUILD_MESSAGES_INTENT, DIRECT_MESSAGES_INTENT = 1 << 9, 1 << 12
GUILD_CONTEXT, BOT_DM_CONTEXT = 0, 1  # interaction context types (a guild-installed app has only these)
DM_CHANNEL, PUBLIC_THREAD = 1, 11  # channel types
THREAD_TYPES = (10, 11, 12)  # announcement, public and private threads
EPHEMERAL, LOADING, COMPONENTS_V2 = 1 << 6, 1 << 7, 1 << 15
JOINED = "2024-01-01T00:00:00+00:00"
WEBHOOK = "/webhooks/{webhook_id}/{webhook_token}"
CALLBACK = "/interactions/{interaction_id}/{interaction_token}/callback"
CHANNEL_MESSAGE = "/channels/{channel_id}/messages/{message_id}"
MESSAGE_BODIES = {"/channels/{channel_id}/messages", CHANNEL_MESSAGE, WEBHOOK,
                  WEBHOOK + "/messages/@original", WEBHOOK + "/messages/{message_id}"}

Button = namedtuple("Button", "custom_id label emoji style url disabled row")
Violation = namedtuple("Violation", "kind method path detail")  # kind: unknown-route, schema, limit, auth…
Identify = namedtuple("Identify", "at shard_id shard_count")  # an IDENTIFY received, `at` on fake.clock()
_Upload = namedtuple("_Upload", "index filename data content_type")
_Req = namedtuple("_Req", "p body uploads query method")  # what every REST handler receives


class _Spec:
    """Path templates, methods and request-body validators from Discord's OpenAPI document."""

    def __init__(self, doc: dict[str, Any]) -> None:
        # Discord accepts snowflakes as JSON integers too (discord.py sends attachment ids as ints).
        doc["components"]["schemas"]["SnowflakeType"] = {
            "anyOf": [{"type": "string", "pattern": "^(0|[1-9][0-9]*)$"}, {"type": "integer", "minimum": 0}]}
        self.doc = doc
        resource = Resource.from_contents(doc, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource("urn:discord", resource)
        self.routes: list[tuple[re.Pattern[str], str, int, set[str]]] = []
        for template, item in doc["paths"].items():
            parts = template.strip("/").split("/")
            regex = "/".join(f"(?P<{s[1:-1]}>[^/]+)" if s.startswith("{") else re.escape(s) for s in parts)
            literal, methods = sum(not s.startswith("{") for s in parts), {m.upper() for m in item}
            self.routes.append((re.compile(f"/{regex}"), template, literal, methods - {"PARAMETERS"}))
        self._validators: dict[tuple[str, str], Draft202012Validator | None] = {}

    def match(self, path: str) -> tuple[str, set[str], dict[str, str]] | None:
        found = [(lit, t, ms, m.groupdict()) for rx, t, lit, ms in self.routes if (m := rx.fullmatch(path))]
        if not found:
            return None
        _, template, methods, params = max(found, key=lambda f: f[0])  # literal segments win
        return template, methods, params

    def validator(self, template: str, method: str) -> Draft202012Validator | None:
        if (template, method) not in self._validators:
            steps = ("paths", template, method.lower(), "requestBody", "content", "application/json")
            node: Any = self.doc
            for step in steps:
                node = node.get(step) if isinstance(node, dict) else None
            pointer = "/".join(s.replace("~", "~0").replace("/", "~1") for s in steps)
            schema = {"$ref": f"urn:discord#/{pointer}/schema"}
            validator = Draft202012Validator(schema, registry=self.registry) if node else None
            self._validators[template, method] = validator
        return self._validators[template, method]


@cache
def load_spec() -> _Spec:
    return _Spec(json.loads(SPEC_PATH.read_text()))


@dataclass(frozen=True)
class FakeUser:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "username": self.username, "global_name": self.global_name,
                "discriminator": "0", "avatar": None, "bot": self.bot, "public_flags": 0, "flags": 0}


@dataclass
class FakeAttachment:
    id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str  # served by the fake under /cdn/
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "filename": self.filename, "size": self.size, "url": self.url,
                "proxy_url": self.url, "content_type": self.content_type, "description": self.description,
                "ephemeral": self.ephemeral}


@dataclass
class FakeMessage:
    id: int
    channel_id: int
    guild_id: int | None  # None in a DM
    author: FakeUser
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    reference: int | None = None  # id of the message this one replies to
    webhook_id: int | None = None
    interaction: dict[str, Any] | None = None  # interaction_metadata
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    edited_at: datetime | None = None
    nonce: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # a snapshot before each edit
    deleted: bool = False

    @property
    def edit_count(self) -> int:
        return len(self.history)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    def snapshot(self) -> dict[str, Any]:
        snapshot: dict[str, Any] = json.loads(json.dumps({
            "content": self.content, "embeds": self.embeds, "components": self.components,
            "flags": self.flags, "attachments": [(a.filename, a.size) for a in self.attachments]}))
        return snapshot


@dataclass
class FakeInteraction:
    id: int
    token: str
    type: int  # 2 application command, 3 message component, 5 modal submit
    guild_id: int | None  # None: used in a DM with the bot
    channel_id: int
    user: FakeUser
    name: str  # command name or custom_id
    created_at: float
    message_id: int | None = None  # the message a pressed component sits on
    response_type: int | None = None  # the callback type the bot answered with
    response_message_id: int | None = None  # what `@original` means
    followup_ids: list[int] = field(default_factory=list)
    loading: bool = False  # a deferred "thinking…" message not yet filled in
    modal: dict[str, Any] | None = None  # the form a callback of type 9 showed (to `user` alone)
    triggered_by: int | None = None  # a modal submit: the interaction whose callback showed the form


@dataclass
class _Session:
    ws: web.WebSocketResponse
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seq: int = 0
    intents: int = 0
    shard: tuple[int, int] = (0, 1)
    dispatched: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (event, data) sent


class _Reject(Exception):
    def __init__(self, status: int, body: dict[str, Any], kind: str = "",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.status, self.body, self.kind, self.headers = status, body, kind, headers or {}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """discord.py only parses a body whose Content-Type is exactly `application/json`."""
    return web.Response(status=status, body=json.dumps(data).encode(),
                        headers={"Content-Type": "application/json", **(headers or {})})


def _reject(status: int, code: int, message: str, kind: str = "") -> _Reject:
    return _Reject(status, {"message": message, "code": code}, kind)


def _form_error(errors: list[tuple[tuple[Any, ...], str, str]], kind: str = "limit") -> _Reject:
    tree: dict[str, Any] = {}
    for path, code, message in errors:
        node = tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return _Reject(400, {"code": 50035, "message": "Invalid Form Body", "errors": tree}, kind)


def _limit_errors(body: dict[str, Any], at: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str, str]]:
    """The message limits the bot must respect (DESIGN.md §5), as Discord reports them."""
    errors: list[tuple[tuple[Any, ...], str, str]] = []
    too_long = "BASE_TYPE_MAX_LENGTH"
    if len(body.get("content") or "") > 2000:
        errors.append(((*at, "content"), too_long, "Must be 2000 or fewer in length."))
    rows = body.get("components") or []
    if not (body.get("flags") or 0) & COMPONENTS_V2:
        if len(rows) > 5:
            errors.append(((*at, "components"), too_long, "Must be 5 or fewer in length."))
        seen: set[str] = set()
        for i, row in enumerate(rows):
            where = (*at, "components", i, "components")
            if len(items := row.get("components") or []) > 5:
                errors.append((where, too_long, "Must be 5 or fewer in length."))
            for j, item in enumerate(items):
                custom_id = item.get("custom_id")
                if item.get("url") or item.get("sku_id"):
                    continue
                if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= 100:
                    errors.append(((*where, j, "custom_id"), "BASE_TYPE_BAD_LENGTH",
                                   "Must be between 1 and 100 in length."))
                elif custom_id in seen:
                    errors.append(((*where, j, "custom_id"), "COMPONENT_CUSTOM_ID_DUPLICATED",
                                   "Component custom id cannot be duplicated"))
                seen.add(str(custom_id))
    total = 0
    for i, embed in enumerate(body.get("embeds") or []):
        if len(description := embed.get("description") or "") > 4096:
            errors.append(((*at, "embeds", i, "description"), too_long, "Must be 4096 or fewer in length."))
        total += len(embed.get("title") or "") + len(description)
        for part, key in (("footer", "text"), ("author", "name")):
            total += len((embed.get(part) or {}).get(key) or "")
        total += sum(len(f.get("name") or "") + len(f.get("value") or "") for f in embed.get("fields") or [])
    if total > 6000:
        errors.append(((*at, "embeds"), "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"))
    return errors


def _resolve_attachment_urls(embeds: list[dict[str, Any]],
                             files: list[FakeAttachment]) -> list[dict[str, Any]]:
    """Discord replaces `attachment://name` in embed images with the uploaded file's URL (and drops
    the image when no attachment has that name)."""
    by_name = {a.filename: a.url for a in files}
    out: list[dict[str, Any]] = json.loads(json.dumps(embeds))
    for embed in out:
        for part in ("image", "thumbnail"):
            url = (embed.get(part) or {}).get("url") or ""
            if url.startswith("attachment://"):
                if (resolved := by_name.get(url.removeprefix("attachment://"))) is None:
                    del embed[part]
                else:
                    embed[part] = {**embed[part], "url": resolved, "proxy_url": resolved}
    return out


_OPTION_TYPES: dict[int, type | tuple[type, ...]] = {3: str, 4: int, 5: bool, 6: str, 10: (int, float)}


def _check_option(command: str, option: dict[str, Any], value: Any) -> None:
    """What Discord's own client enforces before a person can send a command: type, choices, ranges."""
    name, kind = option["name"], option["type"]
    wrong_bool = isinstance(value, bool) != (kind == 5)
    if kind in _OPTION_TYPES and (not isinstance(value, _OPTION_TYPES[kind]) or wrong_bool):
        raise ValueError(f"/{command} {name}: {value!r} is not of option type {kind}")
    if (choices := option.get("choices")) and value not in [c["value"] for c in choices]:
        raise ValueError(f"/{command} {name}: {value!r} is not one of its choices")
    low, high = option.get("min_value"), option.get("max_value")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"/{command} {name}: {value!r} is outside {low}..{high}")
    low, high = option.get("min_length"), option.get("max_length")
    if (low is not None and len(value) < low) or (high is not None and len(value) > high):
        raise ValueError(f"/{command} {name}: {len(value)} characters is outside {low}..{high}")


def _usable_in(command: dict[str, Any], context: int) -> bool:
    """Whether Discord offers a command in an interaction context: its `contexts` when set, else
    everywhere the app is installed, minus DMs for a command synced with `dm_permission: false`."""
    if (contexts := command.get("contexts")) is not None:
        return context in contexts
    return context != BOT_DM_CONTEXT or command.get("dm_permission") is not False


def _owners(guild_id: int | None) -> dict[str, str]:
    """authorizing_integration_owners of a guild-installed app: the guild, or "0" in the bot's DM."""
    return {"0": str(guild_id) if guild_id else "0"}


def find_buttons(message: FakeMessage) -> list[Button]:
    """Every button of a message, row by row, as a person would see them."""
    return [Button(item.get("custom_id"), item.get("label"), (item.get("emoji") or {}).get("name"),
                   item.get("style", 0), item.get("url"), bool(item.get("disabled")), row_index)
            for row_index, row in enumerate(message.components)
            for item in row.get("components") or [] if item.get("type") == 2]


class DiscordFake(FakeServer):
    def __init__(self, *, token: str = "ZmFrZS1ib3Q.fake-bot.token-for-tests", time_scale: float = 1.0,
                 token_lifetime: float = 15 * 60, ack_deadline: float = 3.0,
                 edit_limit: tuple[int, float] = (5, 5.0), webhook_limit: tuple[int, float] = (5, 2.0),
                 global_limit: tuple[int, float] | None = (50, 1.0), max_file_size: int = 10 * MiB,
                 max_request_size: int = 25 * MiB, heartbeat_interval_ms: int = 41250,
                 nonce_window: float = 300.0, shards: int = 1, max_concurrency: int = 1,
                 required_shards: int = 1, identify_interval: float = 5.0) -> None:
        self.token = token
        self.time_scale = time_scale  # multiplies every duration below; all of them may change mid-test
        self.token_lifetime = token_lifetime  # seconds an interaction token works for webhooks
        self.ack_deadline = ack_deadline  # seconds to answer an interaction callback
        self.edit_limit = edit_limit  # (edits, per seconds) per channel, bot-token edits only
        # (requests, per seconds) per interaction token on its webhook (follow-ups, @original and follow-up
        # edits). Discord documents that this bucket is per webhook id + token and outside the global
        # limit, not its size: that comes in the X-RateLimit-* headers (5 per 2 s is what webhooks show)
        self.webhook_limit = webhook_limit
        self.global_limit = global_limit  # (requests, per seconds) of the bot token; None: unlimited
        self.max_file_size, self.max_request_size = max_file_size, max_request_size
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.nonce_window = nonce_window  # seconds an enforced nonce keeps returning its message
        self.shards = shards  # the shard count GET /gateway/bot recommends
        self.max_concurrency = max_concurrency  # IDENTIFY buckets: shard_id % max_concurrency
        self.required_shards = required_shards  # identifying with fewer shards closes 4011
        self.identify_interval = identify_interval  # seconds between two IDENTIFYs of one bucket
        self.identifies: list[Identify] = []  # every IDENTIFY received, accepted or not
        self.identify_violations: list[Identify] = []  # those too soon after their bucket's last one
        self._identified: dict[int, float] = {}  # rate_limit_key -> when its last IDENTIFY was accepted
        self.clock: Callable[[], float] = time.monotonic
        self.spec = load_spec()
        self._last_id = 0
        self.application_id = self._snowflake()
        self.bot_user = FakeUser(self.application_id, "imagine-bot", None, bot=True)
        self.owner = FakeUser(self._snowflake(), "owner")
        self.users: list[FakeUser] = [self.bot_user]  # every user is a member of every guild
        self.permissions: dict[int, str] = {}  # user id -> permissions (default MEMBER_PERMISSIONS)
        self.roles: dict[int, dict[int, dict[str, Any]]] = {}  # guild id -> role id -> role payload
        self.member_roles: dict[int, set[int]] = {}  # user id -> role ids (of any guild)
        self.guilds: dict[int, str] = {}  # id -> name
        self.channels: dict[int, dict[str, Any]] = {}  # id -> channel payload
        self.msgs: dict[int, dict[int, FakeMessage]] = {}  # channel id -> message id -> message
        self.cdn: dict[str, tuple[bytes, str | None]] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None = global) -> commands
        self.interactions: dict[int, FakeInteraction] = {}
        self._nonces: dict[tuple[int, str], tuple[float, int, int]] = {}  # (author, nonce) -> (at, chan, msg)
        self.violations: list[Violation] = []
        self.limited: Counter[str] = Counter()  # 429s sent, by scope
        self.sessions: list[_Session] = []
        self._buckets: dict[str, list[float]] = {}  # key -> [reset_at, used]
        self._injected: list[list[Any]] = []  # [times_left, retry_after, method, path_contains]
        self._changed = asyncio.Event()
        self.guild_id, (self.channel_id,) = self.add_guild("Test Guild")
        self.user = self.add_user("alice", "Alice")
        super().__init__()
        self._handlers: dict[tuple[str, str], Callable[[_Req], Any]] = {
            ("GET", "/users/@me"): lambda r: _json(self.bot_user.payload()),
            ("GET", "/oauth2/applications/@me"): self._application,
            ("GET", "/applications/@me"): self._application,
            ("GET", "/gateway"): lambda r: _json({"url": self.gateway_url}),
            ("GET", "/gateway/bot"): self._gateway_bot,
            ("POST", CALLBACK): self._callback,
            ("POST", WEBHOOK): self._followup,
            ("GET", "/channels/{channel_id}"): lambda r: _json(self._channel(r.p["channel_id"])),
            ("POST", "/channels/{channel_id}/typing"): lambda r: web.Response(status=204),
            ("POST", "/channels/{channel_id}/messages"): self._create_message,
            ("GET", "/channels/{channel_id}/messages"): self._list_messages,
            ("POST", "/users/@me/channels"): self._open_dm,
        }
        for where in ("/applications/{application_id}", "/applications/{application_id}/guilds/{guild_id}"):
            self._handlers["PUT", f"{where}/commands"] = self._put_commands
            self._handlers["GET", f"{where}/commands"] = self._get_commands
        for method in ("GET", "PATCH", "DELETE"):
            self._handlers[method, CHANNEL_MESSAGE] = self._channel_message
            for tail in ("@original", "{message_id}"):
                self._handlers[method, f"{WEBHOOK}/messages/{tail}"] = self._webhook_message

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/gw", self._gateway), web.get("/cdn/{path:.*}", self._serve_cdn),
                web.route("*", "/api/v10/{path:.*}", self._api)]

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gw"

    async def stop(self) -> None:
        for session in list(self.sessions):
            await session.ws.close(code=1001)
        await super().stop()

    # ------------------------------------------------------------------------------ test-side helpers
    def add_user(self, username: str, global_name: str | None = None) -> FakeUser:
        self.users.append(user := FakeUser(self._snowflake(), username, global_name))
        return user

    def make_admin(self, user: FakeUser) -> None:
        """Give `user` every permission (Administrator, Manage Server ...) in every guild."""
        self.permissions[user.id] = ALL_PERMISSIONS

    async def add_role(self, guild_id: int, name: str, members: tuple[FakeUser, ...] = ()) -> int:
        """A role without extra permissions, given to `members`; a connected bot gets GUILD_ROLE_CREATE."""
        role = {"id": str(role_id := self._snowflake()), "name": name, "permissions": "0", "position": 1,
                "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}
        self.roles.setdefault(guild_id, {})[role_id] = role
        for user in members:
            self.member_roles.setdefault(user.id, set()).add(role_id)
        await self._dispatch("GUILD_ROLE_CREATE", {"guild_id": str(guild_id), "role": role}, guild_id)
        return role_id

    def _member(self, user: FakeUser, guild_id: int) -> dict[str, Any]:
        roles = sorted(r for r in self.member_roles.get(user.id, ()) if r in self.roles.get(guild_id, {}))
        return {"user": user.payload(), "roles": [str(r) for r in roles], "joined_at": JOINED, "deaf": False,
                "mute": False, "flags": 0, "pending": False, "nick": None, "avatar": None}

    def add_guild(self, name: str, channel_names: tuple[str, ...] = ("general",),
                  shard: tuple[int, int] | None = None) -> tuple[int, list[int]]:
        """A guild with text channels (add them before the bot connects); returns (guild id, channel ids).
        `shard` (shard_id, shard_count): an id that shard owns."""
        self.guilds[guild_id := self._snowflake(shard)] = name
        channel_ids = []
        for position, channel_name in enumerate(channel_names):
            channel_ids.append(channel_id := self._snowflake())
            self.channels[channel_id] = {
                "id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": channel_name,
                "position": position, "permission_overwrites": [], "nsfw": False, "parent_id": None,
                "topic": None, "last_message_id": None, "rate_limit_per_user": 0, "flags": 0}
            self.msgs[channel_id] = {}
        return guild_id, channel_ids

    async def add_thread(self, channel_id: int, name: str, owner: FakeUser | None = None) -> int:
        """A public thread (type 11) under a guild text channel, started by `owner` (default alice);
        a connected bot gets THREAD_CREATE, a later one finds it among the guild's active threads."""
        parent = self._channel(channel_id)
        if parent["type"] != 0:
            raise ValueError(f"channel {channel_id} is not a guild text channel: no threads under it")
        thread_id, now = self._snowflake(), datetime.now(UTC).isoformat()
        self.channels[thread_id] = {
            "id": str(thread_id), "type": PUBLIC_THREAD, "guild_id": parent["guild_id"],
            "parent_id": str(channel_id), "owner_id": str((owner or self.user).id), "name": name,
            "last_message_id": None, "rate_limit_per_user": 0, "flags": 0, "message_count": 0,
            "member_count": 1, "total_message_sent": 0,
            "thread_metadata": {"archived": False, "archive_timestamp": now, "auto_archive_duration": 1440,
                                "locked": False, "create_timestamp": now}}
        self.msgs[thread_id] = {}
        guild_id = int(parent["guild_id"])
        await self._dispatch("THREAD_CREATE", {**self.channels[thread_id], "newly_created": True}, guild_id)
        return thread_id

    async def archive_thread(self, channel_id: int, locked: bool = False) -> None:
        """Archive a thread (auto-archive, or a moderator closing it; `locked`: only managers may reopen
        it); a connected bot gets THREAD_UPDATE."""
        await self._set_archived(self._channel(channel_id), True, locked)

    async def _set_archived(self, thread: dict[str, Any], archived: bool, locked: bool = False) -> None:
        thread["thread_metadata"].update(archived=archived, locked=locked,
                                         archive_timestamp=datetime.now(UTC).isoformat())
        await self._dispatch("THREAD_UPDATE", thread, int(thread["guild_id"]))

    def dm_channel(self, user: FakeUser) -> int:
        """The DM channel (type 1) between the bot and `user`, opened on first use, as Discord keeps one."""
        for channel_id, channel in self.channels.items():
            if channel["type"] == DM_CHANNEL and channel["recipients"][0]["id"] == str(user.id):
                return channel_id
        channel_id = self._snowflake()
        self.channels[channel_id] = {
            "id": str(channel_id), "type": DM_CHANNEL, "last_message_id": None, "flags": 0,
            "recipients": [user.payload()]}
        self.msgs[channel_id] = {}
        return channel_id

    def shards_connected(self) -> list[tuple[int, int]]:
        """(shard_id, shard_count) of every identified gateway session, sorted."""
        return sorted(session.shard for session in self.sessions)

    def messages(self, channel_id: int) -> list[FakeMessage]:
        """The channel's live messages, oldest first (ephemeral ones included: check `.ephemeral`)."""
        return [m for m in self.msgs.get(channel_id, {}).values() if not m.deleted]

    def message(self, channel_id: int, message_id: int) -> FakeMessage:
        return self.msgs[channel_id][message_id]

    find_buttons = staticmethod(find_buttons)

    @property
    def sent_429(self) -> int:
        """Every 429 the fake answered (rate limits and injected ones)."""
        return sum(self.limited.values())

    def token_alive(self, interaction: FakeInteraction) -> bool:
        """Whether the interaction's token still works for webhook calls (edits, follow-ups)."""
        return self.clock() - interaction.created_at <= self.token_lifetime * self.time_scale

    def clear_429s(self) -> None:
        """Forget every injected 429 not yet served."""
        self._injected.clear()

    def inject_429(self, times: int = 1, retry_after: float = 0.05, *, method: str | None = "PATCH",
                   path_contains: str = "/messages/") -> None:
        """Answer the next `times` matching REST requests with 429 (default: message edits)."""
        self._injected.append([times, retry_after, method, path_contains])

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Wait until `predicate()` is truthy (checked on every state change and every 20 ms)."""
        async with asyncio.timeout(timeout):
            while not (result := predicate()):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.02)
            return result

    async def slash_command(self, guild_id: int | None, channel_id: int, user: FakeUser, name: str,
                            options: dict[str, Any] | None = None,
                            attachments: dict[str, tuple[str, bytes, str]] | None = None,
                            locale: str = "en-US") -> FakeInteraction:
        """A person runs `/name` (or `/group sub`) in a channel: dispatch INTERACTION_CREATE type 2.
        `locale`: the language of the person's Discord app (the interaction's `locale`).

        `guild_id` None: in the person's DM with the bot (`dm_channel(user)`), where only global
        commands allowed in the BOT_DM context exist, as in Discord's own client.
        A user option's value may be a FakeUser: it is sent as its id, with the user (and member) resolved.
        """
        top, _, sub = name.partition(" ")
        self._check_place(guild_id, channel_id, user)
        context = GUILD_CONTEXT if guild_id else BOT_DM_CONTEXT
        scopes = [*(self.commands.get(guild_id, []) if guild_id else []), *self.commands.get(None, [])]
        command = next((c for c in scopes if c["name"] == top and _usable_in(c, context)), None)
        if command is None:
            where = f"guild {guild_id}" if guild_id else "DMs"
            raise LookupError(f"/{top} is not registered for {where} (guild commands never are in DMs)")
        declared = {o["name"]: o for o in command.get("options") or []}
        if sub or any(o["type"] == 1 for o in declared.values()):
            if (subcommand := declared.get(sub)) is None or subcommand["type"] != 1:
                raise LookupError(f"/{top} has no subcommand {sub!r}")
            declared = {o["name"]: o for o in subcommand.get("options") or []}
        given = {**(options or {}), **(attachments or {})}
        if unknown := set(given) - set(declared):
            raise ValueError(f"/{name} has no option(s) {sorted(unknown)}")
        if missing := {n for n, o in declared.items() if o.get("required") and n not in given}:
            raise ValueError(f"/{name} needs option(s) {sorted(missing)}")
        resolved: dict[str, Any] = {}
        values = dict(options or {})
        for key, value in values.items():
            if isinstance(value, FakeUser) and declared[key]["type"] == 6:
                resolved.setdefault("users", {})[str(value.id)] = value.payload()
                if guild_id:  # members only exist in a guild
                    member = {k: v for k, v in self._member(value, guild_id).items() if k != "user"}
                    resolved.setdefault("members", {})[str(value.id)] = {
                        **member, "permissions": self.permissions.get(value.id, MEMBER_PERMISSIONS)}
                values[key] = str(value.id)
            _check_option(name, declared[key], values[key])
        opts = [{"name": k, "type": declared[k]["type"], "value": v} for k, v in values.items()]
        files = {}
        for key, (filename, data, content_type) in (attachments or {}).items():
            attachment = self._store_file(channel_id, filename, data, content_type, ephemeral=True)
            files[str(attachment.id)] = attachment.payload()
            opts.append({"name": key, "type": 11, "value": str(attachment.id)})
        if files:
            resolved["attachments"] = files
        if sub:
            opts = [{"name": sub, "type": 1, "options": opts}]
        body: dict[str, Any] = {"id": str(command["id"]), "name": top, "type": 1, "options": opts}
        if command.get("guild_id"):
            body["guild_id"] = command["guild_id"]
        if resolved:
            body["resolved"] = resolved
        return await self._interact(2, guild_id, channel_id, user, name, body, locale=locale)

    async def press(self, channel_id: int, message_id: int, user: FakeUser,
                    custom_id: str) -> FakeInteraction:
        """A person presses a button: dispatch INTERACTION_CREATE type 3 carrying the message."""
        message = self.message(channel_id, message_id)
        if not any(b.custom_id == custom_id and not b.disabled for b in find_buttons(message)):
            raise LookupError(f"message {message_id} has no enabled button {custom_id!r}")
        data = {"custom_id": custom_id, "component_type": 2}
        self._check_place(message.guild_id, channel_id, user)
        return await self._interact(3, message.guild_id, channel_id, user, custom_id, data, message)

    async def submit_modal(self, shown: FakeInteraction, values: dict[str, str]) -> FakeInteraction:
        """The person fills in the form `shown` was answered with (callback type 9) and submits it:
        INTERACTION_CREATE type 5 with each input's custom_id and value, in the form's layout (a Label,
        type 18, or an action row, type 1), carrying the message of the pressed button. Only the person
        who triggered it sees a form, and Discord's client enforces `required` and the lengths."""
        form = shown.modal
        if form is None:
            raise LookupError(f"interaction {shown.id} was not answered with a form")
        inputs = {c["custom_id"]: c for c in _form_inputs(form["components"])}
        if unknown := set(values) - set(inputs):
            raise ValueError(f"the form has no input(s) {sorted(unknown)}")
        typed = {key: values.get(key, c.get("value") or "") for key, c in inputs.items()}
        for key, c in inputs.items():
            if c.get("required", True) and not typed[key]:
                raise ValueError(f"input {key!r} is required: Discord's client does not submit it empty")
            if not (c.get("min_length") or 0) <= len(typed[key]) <= (c.get("max_length") or 4000):
                raise ValueError(f"input {key!r}: Discord's client keeps its value within the lengths")
        components = [_submitted(c, typed, n) for n, c in enumerate(form["components"], start=1)]
        data = {"custom_id": form["custom_id"], "components": components}
        message = self.message(shown.channel_id, shown.message_id) if shown.message_id else None
        it = await self._interact(5, shown.guild_id, shown.channel_id, shown.user, form["custom_id"], data,
                                  message, triggered_by=shown.id)  # fmt: skip
        return it

    def _check_place(self, guild_id: int | None, channel_id: int, user: FakeUser) -> None:
        """Where a person can act at all: a channel or thread of that guild, or their own DM with the bot."""
        channel = self._channel(channel_id)
        if guild_id is None:
            recipients = [r["id"] for r in channel.get("recipients") or []]
            if channel["type"] != DM_CHANNEL or recipients != [str(user.id)]:
                raise ValueError(f"channel {channel_id} is not {user.username}'s DM with the bot")
        elif channel.get("guild_id") != str(guild_id):
            raise ValueError(f"channel {channel_id} is not in guild {guild_id}")

    # ------------------------------------------------------------------------------------- internals
    def _snowflake(self, shard: tuple[int, int] | None = None) -> int:
        """A new id, later than every other; with `shard`, one whose timestamp that shard owns."""
        self._last_id = max(self._last_id + 1, (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22)
        if shard is not None:
            ms = self._last_id >> 22
            self._last_id = max(self._last_id, (ms + (shard[0] - ms) % shard[1]) << 22)
        return self._last_id

    def _touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _guild(self, guild_id: int) -> dict[str, Any]:
        everyone = {"id": str(guild_id), "name": "@everyone", "permissions": MEMBER_PERMISSIONS,
                    "position": 0, "color": 0, "hoist": False, "managed": False, "mentionable": False,
                    "flags": 0}
        members = [self._member(u, guild_id) for u in self.users]
        here = [c for c in self.channels.values() if c.get("guild_id") == str(guild_id)]
        channels = [c for c in here if c["type"] not in THREAD_TYPES]
        threads = [c for c in here if c["type"] in THREAD_TYPES and not c["thread_metadata"]["archived"]]
        return {"id": str(guild_id), "name": self.guilds[guild_id], "icon": None, "features": [],
                "owner_id": str(self.owner.id), "roles": [everyone, *self.roles.get(guild_id, {}).values()],
                "emojis": [], "stickers": [],
                "channels": channels, "threads": threads,
                "members": members, "member_count": len(members), "large": False, "unavailable": False,
                "voice_states": [], "presences": [], "stage_instances": [], "premium_tier": 0,
                "guild_scheduled_events": [], "soundboard_sounds": [], "preferred_locale": "en-US",
                "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
                "mfa_level": 0, "nsfw_level": 0, "system_channel_id": None, "joined_at": JOINED}

    def _channel(self, channel_id: str | int) -> dict[str, Any]:
        try:
            return self.channels[int(channel_id)]
        except (KeyError, ValueError):
            raise _reject(404, 10003, "Unknown Channel") from None

    def _message(self, message_id: str | int | None, channel_id: str | int | None = None) -> FakeMessage:
        channels = [self.msgs[int(self._channel(channel_id)["id"])]] if channel_id else self.msgs.values()
        for messages in channels:
            if (m := messages.get(int(message_id or 0))) and not m.deleted:
                return m
        raise _reject(404, 10008, "Unknown Message")

    def _message_payload(self, m: FakeMessage, with_referenced: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(m.id), "channel_id": str(m.channel_id), "author": m.author.payload(),
            "content": m.content, "timestamp": m.created_at.isoformat(),
            "edited_timestamp": m.edited_at and m.edited_at.isoformat(), "tts": False, "pinned": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [], "embeds": m.embeds,
            "components": m.components,
            "attachments": [a.payload() for a in m.attachments], "type": m.type, "flags": m.flags}
        if m.webhook_id:
            data["webhook_id"] = str(m.webhook_id)
        if m.nonce is not None:
            data["nonce"] = m.nonce
        if m.interaction:
            data["interaction_metadata"] = m.interaction
        if m.reference:
            data["message_reference"] = {"type": 0, "message_id": str(m.reference),
                                         "channel_id": str(m.channel_id)}
            if m.guild_id:
                data["message_reference"]["guild_id"] = str(m.guild_id)
            if with_referenced and (ref := self.msgs[m.channel_id].get(m.reference)):
                data["referenced_message"] = self._message_payload(ref, False)
        return data

    def _store_file(self, channel_id: int, filename: str, data: bytes, content_type: str | None,
                    description: str | None = None, ephemeral: bool = False) -> FakeAttachment:
        if not content_type or content_type == "application/octet-stream":  # what discord.py sends
            content_type = mimetypes.guess_type(filename)[0] or content_type
        attachment_id = self._snowflake()
        path = f"attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        self.cdn[path] = (data, content_type)
        url = f"{self.base_url}/cdn/{path}"
        return FakeAttachment(attachment_id, filename, data, content_type, url, description, ephemeral)

    def _attachments(self, channel_id: int, listed: list[dict[str, Any]] | None, uploads: list[_Upload],
                     existing: list[FakeAttachment]) -> list[FakeAttachment]:
        """API v10: `attachments` lists all that remain: old ones by id, new files[n] by id n."""
        if listed is None:
            return [*existing, *(self._store_file(channel_id, *u[1:]) for u in uploads)]
        old, new = {a.id: a for a in existing}, {u.index: u for u in uploads}
        result = []
        for i, item in enumerate(listed):
            if (key := int(item["id"])) in old:
                result.append(old[key])
            elif u := new.get(key):
                result.append(self._store_file(channel_id, item.get("filename") or u.filename, u.data,
                                               u.content_type, item.get("description")))
            else:
                raise _form_error([(("attachments", i, "id"), "ATTACHMENT_NOT_FOUND", "Unknown attachment")])
        return result

    @staticmethod
    def _components(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = json.loads(json.dumps(rows))
        numbered = [item for row in out for item in [row, *(row.get("components") or [])]]
        for number, item in enumerate(numbered, 1):
            item.setdefault("id", number)
        return out

    async def _new_message(self, channel_id: int, body: dict[str, Any], uploads: list[_Upload],
                           **extra: Any) -> FakeMessage:
        channel = self._channel(channel_id)
        if (metadata := channel.get("thread_metadata")) and metadata["archived"]:
            if metadata["locked"]:  # the bot is no thread manager here
                raise _reject(400, 50083, "Thread is archived")
            await self._set_archived(channel, False)  # sending to an archived, unlocked thread reopens it
        guild_id = int(channel["guild_id"]) if channel.get("guild_id") else None
        m = FakeMessage(self._snowflake(), channel_id, guild_id, self.bot_user, **extra)
        m.content = body.get("content") or ""
        m.components = self._components(body.get("components") or [])
        m.attachments = self._attachments(channel_id, body.get("attachments"), uploads, [])
        m.embeds = _resolve_attachment_urls(body.get("embeds") or [], m.attachments)
        m.flags |= (body.get("flags") or 0) & (EPHEMERAL | COMPONENTS_V2 | 4)
        if not (m.content or m.embeds or m.attachments or m.components or m.flags & LOADING
                or body.get("sticker_ids") or body.get("poll")):
            raise _reject(400, 50006, "Cannot send an empty message")
        self.msgs[channel_id][m.id] = m
        channel["last_message_id"] = str(m.id)
        if channel["type"] in THREAD_TYPES and not m.ephemeral:  # a thread counts what was said in it
            channel["message_count"] += 1
            channel["total_message_sent"] += 1
        await self._dispatch("MESSAGE_CREATE", self._message_payload(m), m.guild_id, message=True)
        return m

    async def _edit(self, m: FakeMessage, body: dict[str, Any], uploads: list[_Upload]) -> FakeMessage:
        if (metadata := self.channels[m.channel_id].get("thread_metadata")) and metadata["archived"]:
            raise _reject(400, 50083, "Thread is archived")  # edits never reopen a thread
        attachments = m.attachments
        if "attachments" in body or uploads:
            attachments = self._attachments(m.channel_id, body.get("attachments"), uploads, m.attachments)
        content = (body.get("content") or "") if "content" in body else m.content
        embeds = (body.get("embeds") or []) if "embeds" in body else m.embeds
        components = self._components(body.get("components") or []) if "components" in body else m.components
        if not (content or embeds or attachments or components):
            raise _reject(400, 50006, "Cannot send an empty message")
        embeds = _resolve_attachment_urls(embeds, attachments)
        m.history.append(m.snapshot())
        m.content, m.embeds, m.components, m.attachments = content, embeds, components, attachments
        m.flags &= ~LOADING
        m.edited_at = datetime.now(UTC)
        await self._dispatch("MESSAGE_UPDATE", self._message_payload(m), m.guild_id, message=True)
        return m

    def _rate_limit(self, key: str, limit: int, per: float, scope: str) -> dict[str, str]:
        """Charge one request to bucket `key` (`limit` per `per` s, a fixed window from its first
        request); a 429 when it is spent. The headers tell the bucket's state, as Discord's do."""
        now, per = self.clock(), per * self.time_scale
        bucket = self._buckets.setdefault(key, [now + per, 0])
        if now >= bucket[0]:
            bucket[:] = [now + per, 0]
        reset_after = max(bucket[0] - now, 0.0)
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                   "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}", "X-RateLimit-Bucket": scope}
        if bucket[1] >= limit:
            raise self._too_many(reset_after, {**headers, "X-RateLimit-Remaining": "0"}, scope)
        bucket[1] += 1
        return {**headers, "X-RateLimit-Remaining": str(int(limit - bucket[1]))}

    def _global(self) -> None:
        """The bot token's global limit: no bucket headers on success, `"global": true` on a 429."""
        if self.global_limit is None:
            return
        count, per = self.global_limit
        now = self.clock()
        window = self._buckets.setdefault("global", [now + per * self.time_scale, 0])
        if now >= window[0]:
            window[:] = [now + per * self.time_scale, 0]
        if window[1] >= count:
            headers = {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
            raise self._too_many(max(window[0] - now, 0.0), headers, "global")
        window[1] += 1

    def _too_many(self, retry_after: float, headers: dict[str, str] | None = None,
                  scope: str = "injected") -> _Reject:
        """A 429 as discord.py needs it to retry: a `Via` header, a JSON body (else: a Cloudflare ban)."""
        self.limited[scope] += 1
        body = {"message": "You are being rate limited.", "retry_after": round(retry_after, 3),
                "global": scope == "global"}
        return _Reject(429, body, "", {"Via": "1.1 google", "Retry-After": str(max(1, round(retry_after))),
                                        "X-RateLimit-Scope": "user", **(headers or {})})

    # -------------------------------------------------------------------------------------- REST core
    async def _api(self, request: web.Request) -> web.StreamResponse:
        path, method = "/" + request.match_info["path"], request.method
        try:
            if (found := self.spec.match(path)) is None or method not in found[1]:
                status, text = (404, "Not Found") if found is None else (405, "Method Not Allowed")
                raise _reject(status, 0, f"{status}: {text}", "unknown-route")
            template, _, params = found
            if not template.startswith((WEBHOOK, "/interactions/")) and (
                    request.headers.get("Authorization") != f"Bot {self.token}"):
                raise _reject(401, 0, "401: Unauthorized", "auth")
            for injected in self._injected:
                if injected[0] > 0 and injected[2] in (None, method) and injected[3] in path:
                    injected[0] -= 1
                    raise self._too_many(injected[1])
            headers = {}
            if template.startswith(WEBHOOK):  # the interaction's own bucket; outside the global limit
                key = f"webhook:{params['webhook_id']}:{params['webhook_token']}"
                headers = self._rate_limit(key, *self.webhook_limit, "interaction-webhook")
            elif not template.startswith("/interactions/"):  # the bot token
                self._global()
                if method == "PATCH" and template == CHANNEL_MESSAGE:
                    key = f"edit:{params['channel_id']}"
                    headers = self._rate_limit(key, *self.edit_limit, "channel-edit")
            body, uploads = await self._read_body(request, template)
            if (handler := self._handlers.get((method, template))) is None:
                raise _reject(501, 0, f"the fake does not implement {method} {template}", "unimplemented")
            try:
                result = handler(_Req(params, body, uploads, request.query, method))
                response: web.StreamResponse = await result if asyncio.iscoroutine(result) else result
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # fail fast, not 500-and-retry
                raise _reject(400, 0, f"the fake could not handle it: {exc!r}", "fake-error") from exc
            response.headers.update(headers)
            self._touch()
            return response
        except _Reject as reject:
            if reject.kind:
                self.violations.append(Violation(reject.kind, method, path, json.dumps(reject.body)))
            return _json(reject.body, reject.status, reject.headers)

    async def _read_body(self, request: web.Request, template: str) -> tuple[Any, list[_Upload]]:
        body: Any = None
        uploads: list[_Upload] = []
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    continue
                if part.name == "payload_json":
                    body = json.loads(await part.text())
                elif part.name and (m := re.fullmatch(r"files\[(\d+)\]|file", part.name)):
                    data = bytes(await part.read())
                    content_type = part.headers.get("Content-Type")
                    uploads.append(_Upload(int(m.group(1) or 0), part.filename or "file", data, content_type))
        elif request.body_exists:
            try:
                body = await request.json()
            except ValueError:
                raise _reject(400, 50109, "The request body contains invalid JSON.", "schema") from None
        sizes = [len(u.data) for u in uploads]
        if any(s > self.max_file_size for s in sizes) or sum(sizes) > self.max_request_size:
            raise _reject(413, 40005, "Request entity too large", "limit")
        with contextlib.suppress(TypeError, AttributeError, ValueError):  # wrong types: the schema says why
            if template in MESSAGE_BODIES and (errors := _limit_errors(body)):
                raise _form_error(errors)
            if template == CALLBACK and (errors := _limit_errors(body.get("data") or {}, ("data",))):
                raise _form_error(errors)
        validator = self.spec.validator(template, request.method) if body is not None else None
        if validator and (error := best_match(validator.iter_errors(body))) is not None:
            raise _form_error([(tuple(error.absolute_path), "SCHEMA_INVALID", error.message[:300])], "schema")
        return body, uploads

    # ---------------------------------------------------------------------------------- REST handlers
    def _application(self, r: _Req) -> web.Response:
        return _json({"id": str(self.application_id), "name": self.bot_user.username, "icon": None,
                      "description": "", "summary": "", "bot_public": True, "bot_require_code_grant": False,
                      "owner": self.owner.payload(), "team": None, "verify_key": "0" * 64, "flags": 0,
                      "rpc_origins": [], "interactions_endpoint_url": None, "bot": self.bot_user.payload()})

    def _scope(self, p: dict[str, str]) -> int | None:
        if p["application_id"] != str(self.application_id):
            raise _reject(404, 10002, "Unknown Application", "auth")
        if "guild_id" in p and int(p["guild_id"]) not in self.guilds:
            raise _reject(403, 50001, "Missing Access", "auth")
        return int(p["guild_id"]) if "guild_id" in p else None

    def _get_commands(self, r: _Req) -> web.Response:
        return _json(self.commands.get(self._scope(r.p), []))

    def _put_commands(self, r: _Req) -> web.Response:
        """Bulk overwrite: the list replaces every command of the scope (ids kept by name)."""
        guild_id = self._scope(r.p)
        old = {c["name"]: c["id"] for c in self.commands.get(guild_id, [])}
        self.commands[guild_id] = [
            {"type": 1, "description": "", "options": [], "default_member_permissions": None, "nsfw": False,
             "contexts": None, "integration_types": [0], **spec,
             "id": old.get(spec["name"]) or str(self._snowflake()),
             "application_id": str(self.application_id), "version": str(self._snowflake()),
             **({"guild_id": str(guild_id)} if guild_id else {})}
            for spec in r.body]
        return _json(self.commands[guild_id])

    async def _create_message(self, r: _Req) -> web.Response:
        channel_id, body = int(self._channel(r.p["channel_id"])["id"]), r.body or {}
        nonce = str(body["nonce"]) if body.get("nonce") is not None else None
        if nonce is not None and body.get("enforce_nonce") and (earlier := self._by_nonce(nonce)):
            return _json(self._message_payload(earlier))
        reference, kind = None, 0
        if ref := body.get("message_reference"):
            target = self.msgs[channel_id].get(int(ref.get("message_id") or 0))
            if target is None and ref.get("fail_if_not_exists", True):
                raise _form_error([(("message_reference",), "REPLIES_UNKNOWN_MESSAGE", "Unknown message")])
            reference, kind = (target.id, 19) if target else (None, 0)
        m = await self._new_message(channel_id, body, r.uploads, reference=reference, type=kind, nonce=nonce)
        if nonce is not None:
            self._nonces[self.bot_user.id, nonce] = (self.clock(), channel_id, m.id)
        return _json(self._message_payload(m))

    def _by_nonce(self, nonce: str) -> FakeMessage | None:
        """The bot's live message created with `nonce` within the nonce window, if any."""
        seen = self._nonces.get((self.bot_user.id, nonce))
        if seen is None or self.clock() - seen[0] > self.nonce_window * self.time_scale:
            return None
        earlier = self.msgs[seen[1]].get(seen[2])
        return earlier if earlier is not None and not earlier.deleted else None

    def _open_dm(self, r: _Req) -> web.Response:
        """Create DM: the one DM channel with that user (discord.py's `User.create_dm`)."""
        user = next((u for u in self.users if str(u.id) == str(r.body["recipient_id"])), None)
        if user is None or user.bot:
            raise _reject(400, 50007, "Cannot send messages to this user")
        return _json(self._channel(self.dm_channel(user)))

    def _list_messages(self, r: _Req) -> web.Response:
        found = self.messages(int(self._channel(r.p["channel_id"])["id"]))[::-1]
        return _json([self._message_payload(m) for m in found[: int(r.query.get("limit", 50))]])

    async def _channel_message(self, r: _Req) -> web.Response:
        m = self._message(r.p["message_id"], r.p["channel_id"])
        if m.ephemeral:  # only the interaction token reaches those
            raise _reject(404, 10008, "Unknown Message")
        if r.method == "PATCH" and m.author.id != self.bot_user.id:
            raise _reject(403, 50005, "Cannot edit a message authored by another user", "auth")
        return await self._message_verb(r, m)

    async def _message_verb(self, r: _Req, m: FakeMessage) -> web.Response:
        if r.method == "GET":
            return _json(self._message_payload(m))
        if r.method == "DELETE":
            m.deleted = True
            gone = {"id": str(m.id), "channel_id": str(m.channel_id)}
            await self._dispatch("MESSAGE_DELETE", gone, m.guild_id, message=True)
            return web.Response(status=204)
        return _json(self._message_payload(await self._edit(m, r.body or {}, r.uploads)))

    # --------------------------------------------------------------------------- interactions/webhooks
    def _by_token(self, p: dict[str, str]) -> FakeInteraction:
        if p["webhook_id"] != str(self.application_id):
            raise _reject(404, 10015, "Unknown Webhook", "auth")
        it = next((i for i in self.interactions.values() if i.token == p["webhook_token"]), None)
        if it is None or not self.token_alive(it):
            raise _reject(401, 50027, "Invalid Webhook Token", "expired-token")
        return it

    def _metadata(self, it: FakeInteraction) -> dict[str, Any]:
        data = {"id": str(it.id), "type": it.type, "user": it.user.payload(),
                "authorizing_integration_owners": _owners(it.guild_id)}
        if it.type == 2:
            return {**data, "name": it.name}
        if it.type == 5 and it.triggered_by in self.interactions:
            trigger = self._metadata(self.interactions[it.triggered_by])
            return {**data, "triggering_interaction_metadata": trigger}
        return {**data, "interacted_message_id": str(it.message_id)}

    async def _callback(self, r: _Req) -> web.Response:
        it = self.interactions.get(int(r.p["interaction_id"]))
        if it is None or it.token != r.p["interaction_token"]:
            raise _reject(404, 10062, "Unknown interaction", "auth")
        if it.response_type is not None:
            raise _reject(400, 40060, "Interaction has already been acknowledged.", "double-ack")
        if self.clock() - it.created_at > self.ack_deadline * self.time_scale:
            raise _reject(404, 10062, "Unknown interaction", "late-ack")
        kind, data = r.body["type"], r.body.get("data") or {}
        if kind in (6, 7) and not (it.type == 3 or (it.type == 5 and it.message_id is not None)):
            raise _reject(400, 40004, "This callback type is only valid for component interactions", "schema")
        if kind == 9 and it.type == 5:  # a form can't answer a form
            raise _reject(400, 40004, "Interaction callback type 9 is not valid for modal submits", "schema")
        message: FakeMessage | None = None
        if kind in (4, 5):  # a new message; 5 shows "thinking…" until the first edit or follow-up
            flags = (data.get("flags") or 0) | (LOADING if kind == 5 else 0)
            message = await self._new_message(it.channel_id, data if kind == 4 else {}, r.uploads,
                                              flags=flags, webhook_id=self.application_id,
                                              interaction=self._metadata(it), type=20 if it.type == 2 else 0)
            it.loading, it.response_message_id = kind == 5, message.id
        elif kind in (6, 7):  # the pressed message itself is `@original`
            it.response_message_id = it.message_id
            if kind == 7:
                message = await self._edit(self._message(it.message_id), data, r.uploads)
        elif kind == 9:
            it.modal = data
        it.response_type = kind
        if r.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        interaction: dict[str, Any] = {"id": str(it.id), "type": it.type}
        resource: dict[str, Any] = {"type": kind}
        if message is not None:
            interaction.update(response_message_id=str(message.id), response_message_loading=kind == 5,
                               response_message_ephemeral=message.ephemeral)
            resource["message"] = self._message_payload(message)
        return _json({"interaction": interaction, "resource": resource})

    async def _followup(self, r: _Req) -> web.Response:
        it, body = self._by_token(r.p), r.body or {}
        if it.response_type is None:
            raise _reject(404, 10015, "Unknown Webhook", "followup-before-ack")
        if it.loading:  # the first follow-up fills in the deferred "thinking…" message
            message = await self._edit(self._message(it.response_message_id), body, r.uploads)
            it.loading = False
        else:
            message = await self._new_message(it.channel_id, body, r.uploads, webhook_id=self.application_id,
                                              interaction=self._metadata(it), flags=(body.get("flags") or 0))
            it.followup_ids.append(message.id)
        if r.query.get("wait", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        return _json(self._message_payload(message))

    async def _webhook_message(self, r: _Req) -> web.Response:
        it = self._by_token(r.p)
        message_id = int(r.p["message_id"]) if "message_id" in r.p else it.response_message_id
        if message_id is None or message_id not in (it.response_message_id, *it.followup_ids):
            raise _reject(404, 10008, "Unknown Message")
        response = await self._message_verb(r, self._message(message_id))
        if r.method in ("PATCH", "DELETE") and message_id == it.response_message_id:
            it.loading = False  # after deleting "thinking…", a follow-up is a new message
        return response

    async def _serve_cdn(self, request: web.Request) -> web.Response:
        if (item := self.cdn.get(quote(request.match_info["path"]))) is None:
            return web.Response(status=404)
        return web.Response(body=item[0], content_type=item[1] or "application/octet-stream")

    # ---------------------------------------------------------------------------------------- gateway
    async def _interact(self, kind: int, guild_id: int | None, channel_id: int, user: FakeUser, name: str,
                        data: dict[str, Any], message: FakeMessage | None = None,
                        triggered_by: int | None = None, locale: str = "en-US") -> FakeInteraction:
        if not self.sessions:
            raise RuntimeError("no bot is connected to the fake gateway")
        it = FakeInteraction(self._snowflake(), "itx." + secrets.token_urlsafe(48), kind, guild_id,
                             channel_id, user, name, self.clock(), message.id if message else None,
                             triggered_by=triggered_by)
        self.interactions[it.id] = it
        payload: dict[str, Any] = {
            "id": str(it.id), "application_id": str(self.application_id), "type": kind, "data": data,
            "channel_id": str(channel_id), "channel": self._channel(channel_id),
            "token": it.token, "version": 1, "app_permissions": ALL_PERMISSIONS, "locale": locale,
            "entitlements": [], "attachment_size_limit": self.max_file_size,
            "authorizing_integration_owners": _owners(guild_id)}
        if guild_id:
            member = {**self._member(user, guild_id),
                      "permissions": self.permissions.get(user.id, MEMBER_PERMISSIONS)}
            guild = {"id": str(guild_id), "locale": "en-US", "features": []}
            payload.update(guild_id=str(guild_id), guild=guild, member=member, guild_locale="en-US",
                           context=GUILD_CONTEXT)
        else:  # a DM: `user` instead of `member`, and no guild at all
            payload.update(user=user.payload(), context=BOT_DM_CONTEXT)
        if message is not None:
            payload["message"] = self._message_payload(message)
        await self._dispatch("INTERACTION_CREATE", payload, guild_id)
        return it

    async def _send(self, session: _Session, payload: dict[str, Any]) -> None:
        async with session.lock:
            if not session.ws.closed:
                await session.ws.send_str(json.dumps(payload))

    async def _emit(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        session.dispatched.append((event, data))
        await self._send(session, {"op": 0, "t": event, "s": session.seq, "d": data})

    async def _dispatch(self, event: str, data: dict[str, Any], guild_id: int | None,
                        message: bool = False) -> None:
        """Send an event to the shard that owns the guild, DM events to shard 0 (message events need
        the GUILD_MESSAGES intent, or DIRECT_MESSAGES in a DM)."""
        for session in list(self.sessions):
            if ((guild_id or 0) >> 22) % session.shard[1] != session.shard[0]:
                continue
            if not message:
                await self._emit(session, event, data)
            elif guild_id is None:
                if session.intents & DIRECT_MESSAGES_INTENT:
                    await self._emit(session, event, data)
            elif session.intents & GUILD_MESSAGES_INTENT:
                await self._emit(session, event, {**data, "guild_id": str(guild_id)})

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _Session(ws)
        await self._send(session, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        try:
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                op, d = message.get("op"), message.get("d")
                if op == 1:
                    await self._send(session, {"op": 11})
                elif op == 2:
                    await self._identify(session, d)
                elif op == 6:  # no resuming here: discord.py identifies afresh
                    await self._send(session, {"op": 9, "d": False})
                elif op == 8:
                    await self._emit(session, "GUILD_MEMBERS_CHUNK", {
                        "guild_id": d["guild_id"], "members": self._guild(int(d["guild_id"]))["members"],
                        "chunk_index": 0, "chunk_count": 1, "nonce": d.get("nonce")})
        finally:
            if session in self.sessions:
                self.sessions.remove(session)
        return ws

    def _gateway_bot(self, r: _Req) -> web.Response:
        limit = {"total": 1000, "remaining": max(0, 1000 - len(self.identifies)), "reset_after": 86_400_000,
                 "max_concurrency": self.max_concurrency}
        return _json({"url": self.gateway_url, "shards": self.shards, "session_start_limit": limit})

    async def _identify(self, session: _Session, d: dict[str, Any]) -> None:
        """READY and the shard's GUILD_CREATEs; or a close (4004, 4010, 4011), or Invalid Session when the
        shard's bucket identified less than `identify_interval` ago."""
        shard = d.get("shard") or [0, 1]
        valid = isinstance(shard, list) and len(shard) == 2 and all(type(n) is int for n in shard)
        shard_id, shard_count = shard if valid else (-1, 0)
        now = self.clock()
        self.identifies.append(attempt := Identify(now, shard_id, shard_count))
        if d.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        if not 0 <= shard_id < shard_count:
            await session.ws.close(code=4010, message=b"Invalid shard.")
            return
        if shard_count < self.required_shards:
            await session.ws.close(code=4011, message=b"Sharding required.")
            return
        key = shard_id % max(1, self.max_concurrency)
        if now - self._identified.get(key, -math.inf) < self.identify_interval * self.time_scale:
            self.identify_violations.append(attempt)
            await self._send(session, {"op": 9, "d": False})  # the client reconnects and identifies anew
            self._touch()
            return
        self._identified[key] = now
        session.intents = int(d.get("intents") or 0)
        session.shard = (shard_id, shard_count)
        self.sessions.append(session)
        mine = [g for g in self.guilds if (g >> 22) % session.shard[1] == session.shard[0]]
        await self._emit(session, "READY", {
            "v": 10, "user": self.bot_user.payload(), "session_id": secrets.token_hex(16),
            "guilds": [{"id": str(g), "unavailable": True} for g in mine],
            "resume_gateway_url": self.gateway_url,
            "shard": list(session.shard), "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [], "relationships": [], "user_settings": {}, "geo_ordered_rtc_regions": []})
        for guild_id in mine:
            await self._emit(session, "GUILD_CREATE", self._guild(guild_id))
        self._touch()


@contextlib.contextmanager
def point_discord_at(fake: DiscordFake) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at `fake` (restored on exit)."""
    import discord.gateway
    import discord.http

    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = f"{fake.base_url}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


if __name__ == "__main__":
    serve_forever(DiscordFake())


def _form_inputs(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The inputs of a form as sent: inside Labels (type 18) or action rows (type 1)."""
    found: list[dict[str, Any]] = []
    for c in components:
        inner = [c["component"]] if c["type"] == 18 else c.get("components") or [] if c["type"] == 1 else []
        found += [i for i in inner if "custom_id" in i]
    return found


def _submitted(component: dict[str, Any], typed: dict[str, str], n: int) -> dict[str, Any]:
    """One top-level component of a form as a modal submit carries it (ids numbered as Discord does)."""
    def value(item: dict[str, Any], m: int) -> dict[str, Any]:
        key = item["custom_id"]
        return {"type": item["type"], "id": m, "custom_id": key, "value": typed[key]}

    if component["type"] == 18:
        return {"type": 18, "id": n * 10, "component": value(component["component"], n * 10 + 1)}
    if component["type"] == 1:
        return {"type": 1, "id": n * 10,
                "components": [value(i, n * 10 + k) for k, i in enumerate(component["components"], start=1)]}
    return {"type": component["type"], "id": n * 10}
