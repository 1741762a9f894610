"""A stateful loopback fake of the Telegram Bot API, checked against the published method/field list.

Point PTB at it with `ApplicationBuilder().token(fake.token).base_url(f"{fake.base_url}/bot")
.base_file_url(f"{fake.base_url}/file/bot")`. It keeps every chat's messages (text, captions, photos
with their bytes, documents, inline keyboards, media groups, deleted flags), answers like Telegram
(`{"ok":true,"result":...}` / `{"ok":false,"error_code":N,"description":...}`), enforces the limits
in DESIGN.md §5 and the flood limits (scalable by `time_scale`), and long-polls `getUpdates`.

Every request is checked against `telegram-bot-api.json`: an unknown method answers 404, a missing
required or wrongly typed parameter answers 400, and both land in `fake.violations`; a parameter the
method doesn't have is ignored as Telegram does but is recorded there too (tests assert it's empty).

Test side: `send_text`, `send_photo`, `send_album`, `press` enqueue real updates; `make_admin` makes a
user an administrator of a group (getChatAdministrators / getChatMember); `chat`, `message`,
`photo_bytes`, `calls`, `answered`, `wait_until` read the state.

Forums and senders other than a person, as Telegram has them:
- `open_chat(..., is_forum=True)` and `open_topic` make a forum supergroup and its topics. A topic's
  thread id is the id of its "topic created" service message, and every message in a topic that
  replies to nothing else carries that service message as `reply_to_message` (Telegram's way of
  saying which topic it is in). Messages in the General topic have no thread id.
- A bot's message goes to the topic named by `message_thread_id`; without one it goes to the topic of
  the message it replies to, and without either to General. A `message_thread_id` that is not a topic
  of a forum answers "message thread not found"; a reply to a message of another topic is a reply to a
  message that isn't there (so `allow_sending_without_reply` sends it unreplied).
- `send_text(..., as_chat=ID)` sends on behalf of a chat (`sender_chat`): with `ANONYMOUS_ADMIN` as the
  user and the group's own id, an anonymous administrator; with `user=None`, a message without `from`.

Webhook mode, as Telegram has it (`setWebhook`, `deleteWebhook`, `getWebhookInfo`):
- While a webhook is set, every pending and new update is POSTed to its URL as JSON, with the header
  `X-Telegram-Bot-Api-Secret-Token` when a secret was set, oldest first over up to `max_connections`
  (default 40) connections; so with more than one, a retried update may arrive after later ones.
- An update stays pending until the webhook answers 2xx. A failed attempt (another status, no answer)
  is retried after a short backoff (`webhook_retry`, times `time_scale`) and shows in getWebhookInfo's
  `last_error_date` / `last_error_message`; `webhook_deliveries` lists every attempt.
- getUpdates answers 409 while a webhook is set, and setWebhook ends a running long poll with 409.
  Removing or replacing the webhook ends its deliveries in flight; what they carried stays pending.
- Unlike Telegram, the fake takes http:// URLs and any port (the receivers of tests are local).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import io
import json
import math
import mimetypes
import re
import time
import urllib.parse
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from PIL import Image

from tests.fakes._server import FakeServer, serve_forever

_SPEC_NAME = "telegram-bot-api.json"
SPEC_PATHS = (
    Path(__file__).parent / "specs" / _SPEC_NAME,
    Path(__file__).resolve().parents[3] / "shared" / "platform-specs" / _SPEC_NAME,
)
MB = 1024 * 1024
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
FLOOD_METHODS_PREFIXES = ("send", "edit", "copymessage", "forwardmessage")
BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
GENERAL_TOPIC = None  # the thread of a forum message outside any topic
DEFAULT_UPDATES = {"message", "edited_message", "channel_post", "edited_channel_post", "callback_query"}
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the "
    "webhook first"
)
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
T = TypeVar("T")


@functools.cache
def load_spec() -> dict[str, Any]:
    for path in SPEC_PATHS:
        if path.exists():
            spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return spec
    raise FileNotFoundError(f"{_SPEC_NAME} not found in {[str(p) for p in SPEC_PATHS]}")


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


class _Invalid(Exception):
    pass


@dataclass
class Upload:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class FakeUser:
    id: int
    first_name: str
    username: str | None = None
    is_bot: bool = False
    language_code: str | None = None  # the IETF tag of the user's app language, when Telegram sends one

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.username:
            out["username"] = self.username
        if self.language_code:
            out["language_code"] = self.language_code
        return out


#: The fake sender Telegram puts in `from` of messages that anonymous group administrators send.
ANONYMOUS_ADMIN = FakeUser(1087968824, "Group", "GroupAnonymousBot", is_bot=True)
#: ... and of messages that members send on behalf of a channel (and of a linked channel's posts).
CHANNEL_SENDER = FakeUser(136817688, "Channel", "Channel_Bot", is_bot=True)
#: `from` of a linked channel's post as Telegram copies it into the channel's discussion group.
TELEGRAM_SERVICE = FakeUser(777000, "Telegram", None)


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    kind: str  # "photo" | "document"
    file_path: str


@dataclass
class FakeMessage:
    chat_id: int
    message_id: int
    from_user: dict[str, Any] | None  # None: a message without `from` (channels)
    date: int
    text: str | None = None
    entities: list[dict[str, Any]] | None = None
    caption: str | None = None
    caption_entities: list[dict[str, Any]] | None = None
    photo: list[dict[str, Any]] | None = None  # PhotoSize JSON, smallest first
    document: dict[str, Any] | None = None
    uploaded: bytes | None = None  # the bytes as uploaded (photo or document)
    reply_to_message_id: int | None = None
    reply_markup: dict[str, Any] | None = None  # InlineKeyboardMarkup JSON
    force_reply: dict[str, Any] | None = None  # the ForceReply it was sent with (clients open a reply to it)
    media_group_id: str | None = None
    edit_date: int | None = None
    deleted: bool = False
    delivered: bool = True  # False when privacy mode kept a user's group message from the bot
    formatted: str | None = None  # source text when parse_mode changed what is shown
    outgoing: bool = False  # sent by the bot under test (not by another bot or a fake sender)
    sender_chat: dict[str, Any] | None = None  # the chat it was sent on behalf of
    message_thread_id: int | None = None  # its forum topic (None: General, or not a forum)
    forum_topic_created: dict[str, Any] | None = None  # a topic's service message
    is_automatic_forward: bool | None = None  # a linked channel's post copied into its discussion group
    forward_origin: dict[str, Any] | None = None  # MessageOrigin JSON

    @property
    def from_bot(self) -> bool:
        return self.outgoing

    @property
    def keyboard(self) -> list[list[tuple[str, str | None]]]:
        """Rows of (button text, callback_data or url)."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [[(b["text"], b.get("callback_data", b.get("url"))) for b in row] for row in rows]

    @property
    def callback_data(self) -> list[str]:
        return [d for row in self.keyboard for _, d in row if d is not None]


@dataclass
class Webhook:
    """What setWebhook stored; `last_error_*` describe the latest failed delivery."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    has_custom_certificate: bool = False
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class FloodLimits:
    """(count, window seconds) budgets; windows are multiplied by the fake's time_scale."""

    per_chat: tuple[int, float] = (3, 3.0)  # ~1 msg/s per chat with a short burst
    per_group: tuple[int, float] = (20, 60.0)
    overall: tuple[int, float] = (30, 1.0)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _visible_text(text: str, parse_mode: str | None) -> str:
    mode = (parse_mode or "").lower()
    if not mode:
        return text
    if mode == "html":
        return html.unescape(re.sub(r"<[^>]*>", "", text))
    if mode in ("markdown", "markdownv2"):
        text = re.sub(r"(?<!\\)\[([^\]]*)\]\([^)]*\)", r"\1", text)
        text = re.sub(r"(?<!\\)[*_~`|]", "", text)
        return re.sub(r"\\(.)", r"\1", text)
    raise bad(f"unsupported parse_mode: {parse_mode}")


_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


def command_entities(text: str) -> list[dict[str, Any]]:
    return [
        {"type": "bot_command", "offset": _utf16_len(text[: m.start()]), "length": _utf16_len(m.group())}
        for m in _COMMAND.finditer(text)
    ]


def _check_type_constant(field_spec: dict[str, Any], value: Any, path: str) -> None:
    if field_spec["name"] != "type":
        return
    m = re.search(r"(?:must be|always) [\"“]?([a-z_]+)", field_spec.get("description", ""))
    if m and value != m.group(1):
        raise _Invalid(f'field "{path}" must be "{m.group(1)}"')


def coerce(value: Any, types: list[str], path: str) -> Any:
    """Validate `value` against Bot API types ("Integer", "Array of X", object names...)."""
    errors: list[_Invalid] = []
    for t in types:
        try:
            return _coerce_one(value, t, path)
        except _Invalid as exc:
            errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    raise _Invalid(f'field "{path}" must be of type {" or ".join(types)}')


def _coerce_one(value: Any, t: str, path: str) -> Any:
    wrong = _Invalid(f'field "{path}" must be of type {t}')
    if t.startswith("Array of "):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise _Invalid(f'can\'t parse "{path}" JSON array') from None
        if not isinstance(value, list):
            raise wrong
        return [coerce(v, [t[len("Array of ") :]], f"{path}[{i}]") for i, v in enumerate(value)]
    if t == "Integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise wrong
    if t == "Float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise wrong from None
    if t == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str | int) and str(value).lower() in ("true", "false", "1", "0"):
            return str(value).lower() in ("true", "1")
        raise wrong
    if t == "String":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise wrong
    if t == "InputFile":
        if isinstance(value, Upload):
            return value
        raise wrong
    spec = load_spec()["types"].get(t)
    if spec is None:
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Invalid(f"can't parse {t} JSON object") from None
    if not isinstance(value, dict):
        raise wrong
    if spec.get("subtypes"):
        return coerce(value, spec["subtypes"], path)
    out = dict(value)
    for f in spec.get("fields", []):
        v = value.get(f["name"])
        sub = f"{path}.{f['name']}"
        if v is None:
            if f["required"]:
                raise _Invalid(f'field "{sub}" must be specified')
            continue
        out[f["name"]] = coerce(v, f["types"], sub)
        _check_type_constant(f, out[f["name"]], sub)
    return out


def _image_info(data: bytes) -> tuple[Image.Image, str | None]:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception:
        raise bad("IMAGE_PROCESS_FAILED") from None
    return img, img.format


def _jpeg(img: Image.Image, box: int | None = None) -> tuple[bytes, int, int]:
    img = img.convert("RGB") if img.mode not in ("RGB", "L") else img
    if box is not None:
        img = img.copy()
        img.thumbnail((box, box))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=87)
    return buf.getvalue(), img.width, img.height


class TelegramFake(FakeServer):
    """The Bot API on 127.0.0.1; state lives on the instance. See the module docstring."""

    def __init__(
        self,
        token: str = "123456789:AAFakeTelegramTokenForTests_0123456",
        bot_username: str = "imagine_test_bot",
        bot_name: str = "Imagine",
        *,
        privacy_mode: bool = True,
        time_scale: float = 1.0,
        flood_limits: FloodLimits | None = None,
        flood_control: bool = True,
    ) -> None:
        self.token, self.bot_username, self.privacy_mode = token, bot_username, privacy_mode
        self.bot_user = FakeUser(int(token.split(":")[0]), bot_name, bot_username, is_bot=True)
        self.time_scale, self.flood_control = time_scale, flood_control
        self.flood_limits = flood_limits or FloodLimits()
        self.violations: list[str] = []
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[tuple[str, int, str]] = []  # (method, error_code, description) of failed calls
        self.rate_limited: list[tuple[str, int | None, int]] = []  # (method, chat_id, retry_after)
        self.chat_actions: list[tuple[int, str]] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}  # key: json of (scope, language_code)
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.admin_chats: set[int] = set()  # chats where the bot may delete other people's messages
        self.blocked_chats: set[int] = set()
        self.chat_admins: dict[int, dict[int, tuple[FakeUser, str]]] = defaultdict(dict)  # see make_admin
        self._chats: dict[int, dict[str, Any]] = {}
        self._messages: dict[int, dict[int, FakeMessage]] = defaultdict(dict)
        self._files: dict[str, StoredFile] = {}
        self._paths: dict[str, StoredFile] = {}
        self._queries: dict[str, FakeMessage] = {}
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 100_000_001
        self._counter = 0
        self._allowed_updates: set[str] = DEFAULT_UPDATES
        self._poll_owner: object | None = None
        self.webhook: Webhook | None = None  # set by setWebhook
        self.webhook_deliveries: list[tuple[int, int | None]] = []  # (update_id, status; None: no answer)
        self.webhook_retry = (0.05, 1.0)  # first and longest wait between attempts, seconds (× time_scale)
        self.webhook_timeout = 10.0  # seconds a delivery may take
        self._webhook_task: asyncio.Task[None] | None = None
        self._updates_event = asyncio.Event()
        self._changed = asyncio.Event()
        self._closing = False
        self._forced_429: list[tuple[int, str | None]] = []  # (retry_after, method or None)
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._methods = {name.lower(): name for name in load_spec()["methods"]}
        self._handlers: dict[str, Callable[[dict[str, Any], dict[str, Upload]], Any]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendMediaGroup": self._send_media_group,
            "editMessageText": self._edit_text,
            "editMessageCaption": self._edit_caption,
            "editMessageMedia": self._edit_media,
            "editMessageReplyMarkup": self._edit_markup,
            "answerCallbackQuery": self._answer_callback,
            "deleteMessage": self._delete_message,
            "getFile": self._get_file,
            "sendChatAction": self._send_chat_action,
            "getChatAdministrators": self._get_chat_administrators,
            "getChatMember": self._get_chat_member,
            "close": lambda p, u: True,
            "logOut": lambda p, u: True,
        }
        super().__init__()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.route("*", "/bot{token}/{method}", self._handle),
            web.get("/file/bot{token}/{path:.+}", self._download),
        ]

    async def stop(self) -> None:
        """Stop serving: end long polls and webhook deliveries, close the delivery client session."""
        self._closing = True
        self._bump_updates()
        await self._stop_delivery()
        await super().stop()  # closes the session of the deliveries

    # ---------------------------------------------------------------- test-side reading helpers
    def chat(self, chat_id: int, include_deleted: bool = False) -> list[FakeMessage]:
        """The chat's messages in order (what a member sees, unless include_deleted)."""
        return [m for m in self._messages[chat_id].values() if include_deleted or not m.deleted]

    def bot_messages(self, chat_id: int) -> list[FakeMessage]:
        return [m for m in self.chat(chat_id) if m.from_bot]

    def message(self, chat_id: int, message_id: int) -> FakeMessage:
        return self._messages[chat_id][message_id]

    def photo_bytes(self, message: FakeMessage) -> bytes:
        """The photo's bytes as uploaded (see `file_bytes` for what Telegram serves)."""
        assert message.photo, f"message {message.message_id} has no photo"
        assert message.uploaded is not None
        return message.uploaded

    def file_bytes(self, file_id: str) -> bytes:
        return self._files[file_id].data

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """Params of every call to `method` (any case), in order; all calls' params if None."""
        name = self._methods.get(method.lower(), method) if method else None
        return [p for m, p in self.log if name is None or m == name]

    def answered(self, query_id: str) -> dict[str, Any] | None:
        """The answerCallbackQuery params for the query (text, show_alert...), or None."""
        return self.callback_answers.get(query_id)

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    @property
    def last_update_id(self) -> int:
        """The id of the newest update queued for the bot."""
        return self._next_update_id - 1

    async def wait_until(self, predicate: Callable[[], T], within: float = 5.0) -> T:
        """Wait until predicate() is truthy (re-checked after every API call); return its value."""
        deadline = time.monotonic() + within
        while not (result := predicate()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not met within {within}s; last calls: {self.log[-5:]}")
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.05))
        return result

    def inject_429(self, times: int = 1, retry_after: int = 1, method: str | None = None) -> None:
        """The next `times` send/edit calls (of `method`, if given) answer 429 with retry_after."""
        name = self._methods.get(method.lower(), method) if method else None
        self._forced_429.extend([(retry_after, name)] * times)

    def make_admin(self, chat_id: int, user: FakeUser, status: str = "administrator") -> None:
        """`user` becomes an administrator (or, with status="creator", the owner) of the group."""
        assert status in ("administrator", "creator"), status
        self.chat_admins[chat_id][user.id] = (user, status)

    # ---------------------------------------------------------------- test-side user actions
    def delete(self, chat_id: int, message_id: int) -> None:
        """A person deletes a message (their own, or any as an admin); the bot is not told."""
        self._messages[chat_id][message_id].deleted = True
        self._bump()

    def open_chat(
        self,
        chat_id: int,
        chat_type: str | None = None,
        title: str | None = None,
        user: FakeUser | None = None,
        *,
        is_forum: bool = False,
    ) -> dict[str, Any]:
        if chat_id in self._chats:
            return self._chats[chat_id]
        chat_type = chat_type or ("private" if chat_id > 0 else "supergroup")
        assert not is_forum or chat_type == "supergroup", "only supergroups can be forums"
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if is_forum:
            chat["is_forum"] = True
        if chat_type == "private":
            chat["first_name"] = user.first_name if user else "User"
            if user and user.username:
                chat["username"] = user.username
        else:
            chat["title"] = title or f"Group {chat_id}"
        self._chats[chat_id] = chat
        return chat

    def open_topic(self, chat_id: int, creator: FakeUser, name: str) -> int:
        """`creator` opens a topic in the forum; returns its message_thread_id."""
        assert self._chats[chat_id].get("is_forum"), f"chat {chat_id} is not a forum"
        msg = self._new_message(chat_id, creator.to_json())
        msg.forum_topic_created = {"name": name, "icon_color": 7322096}
        msg.message_thread_id = msg.message_id
        self._bump()  # a service message: privacy mode keeps it from the bot
        return msg.message_id

    def send_text(
        self,
        chat_id: int,
        user: FakeUser | None,
        text: str,
        reply_to: int | None = None,
        chat_type: str | None = None,
        *,
        thread: int | None = GENERAL_TOPIC,
        as_chat: int | None = None,
    ) -> FakeMessage:
        """`user` sends `text` (in a forum, to the topic `thread`; on behalf of the chat `as_chat`)."""
        return self._deliver(self._text_message(chat_id, user, text, reply_to, chat_type, thread, as_chat))

    def post_in_linked_channel(self, group_id: int, channel_id: int, text: str) -> FakeMessage:
        """A post in the group's linked channel, as Telegram copies it into the discussion group:
        from the service account 777000, sent as the channel, marked `is_automatic_forward`."""
        msg = self._text_message(group_id, TELEGRAM_SERVICE, text, None, None, GENERAL_TOPIC, channel_id)
        msg.is_automatic_forward = True
        msg.forward_origin = {"type": "channel", "chat": self._chats[channel_id], "date": msg.date,
                              "message_id": msg.message_id}  # fmt: skip
        return self._deliver(msg)

    def _text_message(self, chat_id: int, user: FakeUser | None, text: str, reply_to: int | None,
                      chat_type: str | None, thread: int | None, as_chat: int | None) -> FakeMessage:
        self.open_chat(chat_id, chat_type, user=user)
        msg = self._new_message(chat_id, user.to_json() if user else None, text=text, reply_to=reply_to,
                                thread=self._user_thread(chat_id, thread, reply_to))  # fmt: skip
        msg.entities = command_entities(text) or None
        if as_chat is not None:
            msg.sender_chat = self._chats[as_chat]
        return msg

    def send_photo(
        self,
        chat_id: int,
        user: FakeUser,
        image_bytes: bytes,
        caption: str | None = None,
        reply_to: int | None = None,
        media_group_id: str | None = None,
        chat_type: str | None = None,
        *,
        thread: int | None = GENERAL_TOPIC,
    ) -> FakeMessage:
        self.open_chat(chat_id, chat_type, user=user)
        msg = self._new_message(chat_id, user.to_json(), caption=caption, reply_to=reply_to,
                                thread=self._user_thread(chat_id, thread, reply_to))  # fmt: skip
        msg.photo, msg.uploaded = self._store_photo(image_bytes, check=False), image_bytes
        msg.caption_entities = command_entities(caption or "") or None
        msg.media_group_id = media_group_id
        return self._deliver(msg)

    def send_document(
        self,
        chat_id: int,
        user: FakeUser,
        data: bytes,
        filename: str,
        mime_type: str,
        caption: str | None = None,
        reply_to: int | None = None,
        chat_type: str | None = None,
    ) -> FakeMessage:
        """A user sends a file (e.g. an image "as a file", or a PDF)."""
        self.open_chat(chat_id, chat_type, user=user)
        msg = self._new_message(chat_id, user.to_json(), caption=caption, reply_to=reply_to)
        stored = self._store(data, "document", Path(filename).suffix)
        msg.document = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                        "file_name": filename, "mime_type": mime_type, "file_size": len(data)}
        msg.uploaded = data
        msg.caption_entities = command_entities(caption or "") or None
        return self._deliver(msg)

    def send_album(
        self,
        chat_id: int,
        user: FakeUser,
        images: list[bytes],
        caption: str | None = None,
        chat_type: str | None = None,
        *,
        thread: int | None = GENERAL_TOPIC,
    ) -> list[FakeMessage]:
        group_id = self._new_id("album")
        return [
            self.send_photo(chat_id, user, data, caption if i == 0 else None, media_group_id=group_id,
                            chat_type=chat_type, thread=thread)
            for i, data in enumerate(images)
        ]

    def press(
        self,
        chat_id: int,
        message_id: int,
        user: FakeUser,
        callback_data: str | None = None,
        *,
        text: str | None = None,
        strict: bool = True,
    ) -> str:
        """Press a button (by callback_data or by its text); returns the callback query id."""
        msg = self._messages[chat_id].get(message_id)
        if strict:
            assert msg is not None and not msg.deleted, f"no message {message_id} in chat {chat_id}"
            if text is not None:
                found = [d for row in msg.keyboard for t, d in row if t == text]
                assert found, f"no button {text!r} on message {message_id}: {msg.keyboard}"
                callback_data = found[0]
            assert callback_data in msg.callback_data, f"no {callback_data!r} button: {msg.keyboard}"
        assert msg is not None
        query_id = self._new_id("")
        self._queries[query_id] = msg
        self._enqueue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.to_json(),
                    "message": self._json(msg),
                    "chat_instance": str(abs(chat_id) * 7919),
                    "data": callback_data,
                }
            }
        )
        return query_id

    # ---------------------------------------------------------------- internals: state
    def _new_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter:08d}"

    def _new_message(
        self,
        chat_id: int,
        sender: dict[str, Any],
        *,
        text: str | None = None,
        caption: str | None = None,
        reply_to: int | None = None,
        thread: int | None = GENERAL_TOPIC,
    ) -> FakeMessage:
        chat = self._messages[chat_id]
        message_id = max(chat, default=0) + 1
        msg = FakeMessage(
            chat_id,
            message_id,
            sender,
            int(time.time()),
            text=text,
            caption=caption or None,
            reply_to_message_id=reply_to,
            message_thread_id=thread,
        )
        chat[message_id] = msg
        return msg

    def _user_thread(self, chat_id: int, thread: int | None, reply_to: int | None) -> int | None:
        """The topic a person's message lands in: the one they are in, which a reply must match."""
        replied = self._messages[chat_id].get(reply_to or 0)
        if thread is not None:
            assert self._is_topic(chat_id, thread), f"no topic {thread} in chat {chat_id}"
        if replied is not None:
            assert replied.message_thread_id == thread, "a reply is in the topic of what it replies to"
        return thread

    def _is_topic(self, chat_id: int, thread: Any) -> bool:
        root = self._messages[chat_id].get(thread) if isinstance(thread, int) else None
        return bool(self._chats[chat_id].get("is_forum")) and root is not None and (
            root.forum_topic_created is not None)  # fmt: skip

    def _deliver(self, msg: FakeMessage) -> FakeMessage:
        chat = self._chats[msg.chat_id]
        msg.delivered = chat["type"] == "private" or not self.privacy_mode or self._addressed(msg)
        if msg.delivered:
            self._enqueue({"message": self._json(msg)})
        else:
            self._bump()
        return msg

    def _addressed(self, msg: FakeMessage) -> bool:
        replied = self._messages[msg.chat_id].get(msg.reply_to_message_id or 0)
        if replied is not None and replied.from_bot:
            return True
        text = msg.text or msg.caption or ""
        for ent in msg.entities or msg.caption_entities or []:
            if ent["type"] == "bot_command":
                command = text.encode("utf-16-le")[2 * ent["offset"] : 2 * (ent["offset"] + ent["length"])]
                _, _, target = command.decode("utf-16-le").partition("@")
                if not target or target.lower() == self.bot_username.lower():
                    return True
        return False

    def _enqueue(self, update: dict[str, Any]) -> None:
        update = {"update_id": self._next_update_id, **update}
        self._next_update_id += 1
        self._updates.append(update)
        self._bump_updates()
        self._bump()

    def _bump_updates(self) -> None:
        self._updates_event.set()
        self._updates_event = asyncio.Event()

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _json(self, m: FakeMessage, nested: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"message_id": m.message_id, "chat": self._chats[m.chat_id], "date": m.date}
        if m.from_user is not None:
            out["from"] = m.from_user
        if m.message_thread_id is not None:
            out.update(message_thread_id=m.message_thread_id, is_topic_message=True)
        for key in (
            "sender_chat",
            "forum_topic_created",
            "is_automatic_forward",
            "forward_origin",
            "text",
            "entities",
            "caption",
            "caption_entities",
            "photo",
            "document",
            "media_group_id",
            "edit_date",
            "reply_markup",
        ):
            if getattr(m, key) is not None:
                out[key] = getattr(m, key)
        # in a topic, a message replying to nothing else replies to the topic's service message
        topic_root = m.message_thread_id if m.forum_topic_created is None else None
        replied = self._messages[m.chat_id].get(m.reply_to_message_id or topic_root or 0)
        if nested and replied is not None and not replied.deleted:
            out["reply_to_message"] = self._json(replied, nested=False)
        return out

    def _store(self, data: bytes, kind: str, ext: str) -> StoredFile:
        n = self._new_id("")
        stored = StoredFile(f"Ag{kind[:2].upper()}-{n}", f"AQ{n}", data, kind, f"{kind}s/file_{n}{ext}")
        self._files[stored.file_id] = self._paths[stored.file_path] = stored
        return stored

    def _store_photo(self, data: bytes, check: bool = True) -> list[dict[str, Any]]:
        img, fmt = _image_info(data)
        w, h = img.size
        if check and len(data) > 10 * MB:
            raise bad("PHOTO_SAVE_FILE_INVALID")
        if check and (w + h > 10000 or max(w, h) > 20 * min(w, h)):
            raise bad("PHOTO_INVALID_DIMENSIONS")
        variants: list[tuple[bytes, int, int]] = []
        if max(w, h) > 320:
            variants.append(_jpeg(img, 320))
        if max(w, h) > 1280:
            variants.append(_jpeg(img, 1280))
        else:
            variants.append((data, w, h) if fmt == "JPEG" else _jpeg(img))
        sizes = []
        for blob, vw, vh in variants:
            f = self._store(blob, "photo", ".jpg")
            sizes.append(
                {
                    "file_id": f.file_id,
                    "file_unique_id": f.file_unique_id,
                    "file_size": len(blob),
                    "width": vw,
                    "height": vh,
                }
            )
        return sizes

    def _resolve_file(self, value: Any, uploads: dict[str, Upload], kind: str, field_name: str) -> Any:
        """-> Upload for new bytes, or StoredFile for a file_id."""
        if isinstance(value, str) and value.startswith("attach://"):
            upload = uploads.get(value[len("attach://") :])
            if upload is None:
                raise bad(f"can't parse InputMedia: media not found for {field_name}")
            value = upload
        if isinstance(value, Upload):
            if not value.data:
                raise bad("file must be non-empty")
            return value
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise bad("failed to get HTTP URL content")
        stored = self._files.get(str(value))
        if stored is None:
            raise bad("wrong file identifier/HTTP URL specified")
        if stored.kind != kind:
            raise bad(f"can't use file of type {stored.kind.capitalize()} as {kind.capitalize()}")
        return stored

    def _photo_of(
        self, value: Any, uploads: dict[str, Upload], name: str
    ) -> tuple[list[dict[str, Any]], bytes]:
        src = self._resolve_file(value, uploads, "photo", name)
        if isinstance(src, Upload):
            return self._store_photo(src.data), src.data
        for msgs in self._messages.values():  # resend by file_id: reuse the sizes of that photo
            for m in msgs.values():
                if m.photo and any(s["file_id"] == src.file_id for s in m.photo) and m.uploaded:
                    return m.photo, m.uploaded
        return [
            {"file_id": src.file_id, "file_unique_id": src.file_unique_id, "width": 1, "height": 1}
        ], src.data

    def _document_of(self, value: Any, uploads: dict[str, Upload], name: str) -> tuple[dict[str, Any], bytes]:
        src = self._resolve_file(value, uploads, "document", name)
        if isinstance(src, Upload):
            if len(src.data) > 50 * MB:
                raise ApiError(413, "Request Entity Too Large")
            filename = src.filename or "document"
            mime = src.content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
            stored = self._store(src.data, "document", Path(filename).suffix)
            doc = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": filename,
                "mime_type": mime,
                "file_size": len(src.data),
            }
            return doc, src.data
        for msgs in self._messages.values():
            for m in msgs.values():
                if m.document and m.document["file_id"] == src.file_id:
                    return m.document, src.data
        return {
            "file_id": src.file_id,
            "file_unique_id": src.file_unique_id,
            "file_size": len(src.data),
        }, src.data

    # ---------------------------------------------------------------- internals: checks
    def _chat_of(self, chat_id: Any) -> dict[str, Any]:
        chat = (
            self._chats.get(chat_id)
            if isinstance(chat_id, int)
            else next((c for c in self._chats.values() if f"@{c.get('username')}" == chat_id), None)
        )
        if chat is None:
            raise bad("chat not found")
        if chat["id"] in self.blocked_chats:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    @staticmethod
    def _text(
        raw: str | None, parse_mode: str | None, limit: int, what: str
    ) -> tuple[str | None, str | None]:
        if raw is None:
            return None, None
        visible = _visible_text(raw, parse_mode)
        if _utf16_len(visible) > limit:
            raise bad(f"message {what} is too long" if what == "caption" else "message is too long")
        return visible, (raw if parse_mode and raw != visible else None)

    @staticmethod
    def _markup(value: dict[str, Any] | None) -> dict[str, Any] | None:
        if not value or "inline_keyboard" not in value:
            return None
        rows = value["inline_keyboard"]
        if sum(len(r) for r in rows) > 100 or any(len(r) > 8 for r in rows):
            raise bad("reply markup is too long")
        clean_rows = []
        for row in rows:
            clean = []
            for button in row:
                if not str(button.get("text", "")).strip():
                    raise bad("can't parse inline keyboard button: Text must be non-empty")
                actions = [a for a in BUTTON_ACTIONS if button.get(a) is not None]
                if not actions:
                    raise bad(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                if len(actions) > 1:
                    raise bad(
                        "can't parse inline keyboard button: exactly one of the optional fields must be used"
                    )
                if "callback_data" in actions and not 1 <= len(button["callback_data"].encode()) <= 64:
                    raise bad("BUTTON_DATA_INVALID")
                if "url" in actions and not re.match(r"(https?|tg)://\S+$", button["url"]):
                    raise bad("BUTTON_URL_INVALID")
                if "web_app" in actions and not re.match(r"https://\S+$", str(button["web_app"].get("url"))):
                    raise bad(f"inline keyboard button Web App URL '{button['web_app'].get('url')}' is "
                              "invalid: Only HTTPS links are allowed")
                clean.append({k: v for k, v in button.items() if v is not None})
            clean_rows.append(clean)
        return {"inline_keyboard": clean_rows}

    def _reply_target(self, chat_id: int, p: dict[str, Any], thread: int | None) -> int | None:
        params = p.get("reply_parameters")
        if not params:
            return None
        target = self._messages[chat_id].get(params["message_id"])
        if thread is not None and target is not None and target.message_thread_id != thread:
            target = None  # a message of another topic can't be replied to from this one
        if target is None or target.deleted:
            if params.get("allow_sending_without_reply"):
                return None
            raise bad("message to be replied not found")
        return int(params["message_id"])

    def _editable(self, p: dict[str, Any]) -> FakeMessage:
        if p.get("inline_message_id"):
            raise bad("MESSAGE_ID_INVALID")
        if p.get("chat_id") is None or p.get("message_id") is None:
            raise bad("message to edit not found")
        chat = self._chat_of(p["chat_id"])
        msg = self._messages[chat["id"]].get(p["message_id"])
        if msg is None or msg.deleted:
            raise bad("message to edit not found")
        if not msg.from_bot:
            raise bad("message can't be edited")
        return msg

    def _flood_check(self, method: str, p: dict[str, Any]) -> list[str]:
        """Raise 429 if a budget is spent; return the budgets the call will be charged to."""
        if not method.lower().startswith(FLOOD_METHODS_PREFIXES) or method == "sendChatAction":
            return []
        chat_id = p.get("chat_id") if isinstance(p.get("chat_id"), int) else None
        for i, (retry_after, only) in enumerate(self._forced_429):
            if only is None or only == method:
                del self._forced_429[i]
                raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        if not self.flood_control:
            return []
        budgets = [("overall", self.flood_limits.overall)]
        if chat_id is not None:
            budgets.append((f"chat:{chat_id}", self.flood_limits.per_chat))
            if self._chats.get(chat_id, {}).get("type") in ("group", "supergroup"):
                budgets.append((f"group:{chat_id}", self.flood_limits.per_group))
        now = time.monotonic()
        for key, (count, window) in budgets:
            q = self._windows[key]
            span = window * self.time_scale
            while q and q[0] <= now - span:
                q.popleft()
            if len(q) >= count:
                retry = max(1, math.ceil((q[0] + span - now) / self.time_scale))
                raise ApiError(429, f"Too Many Requests: retry after {retry}", retry)
        return [key for key, _ in budgets]

    def _validate(self, method: str, params: dict[str, Any], uploads: dict[str, Upload]) -> dict[str, Any]:
        fields = {f["name"]: f for f in load_spec()["methods"][method].get("fields", [])}
        out: dict[str, Any] = {}
        for name in params:
            if name not in fields:
                self.violations.append(f"{method}: unknown parameter {name!r} (Telegram ignores it)")
        for name, f in fields.items():
            value = params.get(name)
            if value is None and name in uploads:
                value = uploads[name]
            if value is None:
                if f["required"]:
                    raise _Invalid(f'parameter "{name}" is required')
                continue
            out[name] = coerce(value, f["types"], name)
        return out

    # ---------------------------------------------------------------- HTTP
    async def _handle(self, request: web.Request) -> web.Response:
        token, raw_method = request.match_info["token"], request.match_info["method"]
        if not re.fullmatch(r"\d+:[\w-]+", token):
            return self._error(ApiError(404, "Not Found"))
        if token != self.token:
            return self._error(ApiError(401, "Unauthorized"))
        method = self._methods.get(raw_method.lower())
        if method is None:
            self.violations.append(f"{raw_method}: unknown method")
            return self._error(ApiError(404, "Not Found"))
        try:
            params, uploads = await self._read_params(request)
        except ValueError:
            return self._error(bad("can't parse request body"), method)
        try:
            p = self._validate(method, params, uploads)
        except _Invalid as exc:
            self.violations.append(f"{method}: {exc}")
            self.log.append((method, params))
            return self._error(bad(str(exc)), method)
        self.log.append((method, p))
        handler = self._handlers.get(method)
        try:
            if handler is None:
                self.violations.append(f"{method}: not implemented by the fake")
                raise bad(f"method {method} is not implemented by TelegramFake")
            charged = self._flood_check(method, p)
            result = handler(p, uploads)
            if asyncio.iscoroutine(result):
                result = await result
            for key in charged:  # only what Telegram carried out counts against the budgets
                self._windows[key].append(time.monotonic())
        except ApiError as exc:
            if exc.code == 429:
                self.rate_limited.append((method, p.get("chat_id"), exc.retry_after or 0))
            return self._error(exc, method)
        finally:
            self._bump()
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
        params: dict[str, Any] = dict(request.query)
        uploads: dict[str, Upload] = {}
        if request.content_type == "application/json":
            body = await request.json() if request.can_read_body else {}
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            params.update(body)
        elif request.can_read_body:
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    uploads[name] = Upload(value.filename, value.content_type, value.file.read())
                else:
                    params[name] = value
        return params, uploads

    def _error(self, exc: ApiError, method: str = "") -> web.Response:
        self.errors.append((method, exc.code, exc.description))
        body: dict[str, Any] = {"ok": False, "error_code": exc.code, "description": exc.description}
        if exc.retry_after is not None:
            body["parameters"] = {"retry_after": exc.retry_after}
        return web.json_response(body, status=exc.code)

    async def _download(self, request: web.Request) -> web.Response:
        stored = self._paths.get(request.match_info["path"])
        if request.match_info["token"] != self.token or stored is None:
            return web.Response(status=404, text="Not Found")
        ctype = "image/jpeg" if stored.kind == "photo" else "application/octet-stream"
        return web.Response(body=stored.data, content_type=ctype)

    # ---------------------------------------------------------------- methods
    def _get_me(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        return {
            **self.bot_user.to_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, p: dict[str, Any], u: dict[str, Upload]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, WEBHOOK_ACTIVE)
        owner = self._poll_owner = object()
        self._bump_updates()  # an older long poll is now terminated (409)
        if p.get("allowed_updates") is not None:
            self._allowed_updates = set(p["allowed_updates"]) or DEFAULT_UPDATES
        offset, limit = p.get("offset"), min(max(p.get("limit") or 100, 1), 100)
        deadline = time.monotonic() + max(p.get("timeout") or 0, 0)
        if offset is not None and offset < 0:
            self._updates = self._updates[offset:]
        elif offset:
            self._updates = [x for x in self._updates if x["update_id"] >= offset]
        while True:
            self._updates = [x for x in self._updates if self._allowed_updates & x.keys()]
            if self._updates or self._closing:
                return self._updates[:limit]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            event = self._updates_event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
            if self.webhook is not None:
                raise ApiError(409, "Conflict: terminated by setWebhook request")
            if self._poll_owner is not owner:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )

    async def _set_webhook(self, p: dict[str, Any], u: dict[str, Upload]) -> bool:
        if not p["url"]:  # an empty URL removes the webhook
            return await self._delete_webhook(p, u)
        parts = urllib.parse.urlsplit(p["url"])
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = p.get("secret_token") or None  # Telegram reads an empty secret as none
        if secret is not None and not SECRET_TOKEN.fullmatch(secret):
            raise bad("secret token contains unallowed characters")
        connections = p.get("max_connections")
        hook = Webhook(
            p["url"],
            secret,
            40 if connections is None else min(max(connections, 1), 100),
            p.get("allowed_updates"),
            has_custom_certificate=p.get("certificate") is not None,
        )
        if hook.allowed_updates is not None:
            self._allowed_updates = set(hook.allowed_updates) or DEFAULT_UPDATES
        if p.get("drop_pending_updates"):
            self._updates.clear()
        old = self.webhook
        if old is not None and (old.url, old.secret_token, old.max_connections) == (
            hook.url, hook.secret_token, hook.max_connections):  # fmt: skip
            old.allowed_updates = hook.allowed_updates  # "Webhook is already set": deliveries go on
            return True
        await self._stop_delivery()
        self.webhook = hook
        self._webhook_task = self.spawn(self._run_webhook(hook))
        self._bump_updates()  # a running long poll ends with 409
        return True

    async def _delete_webhook(self, p: dict[str, Any], u: dict[str, Upload]) -> bool:
        await self._stop_delivery()
        self.webhook = None
        if p.get("drop_pending_updates"):
            self._updates.clear()
        return True

    def _get_webhook_info(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        info: dict[str, Any] = {"url": "", "has_custom_certificate": False,
                                "pending_update_count": len(self._updates)}  # fmt: skip
        hook = self.webhook
        if hook is None:
            return info
        info.update(url=hook.url, has_custom_certificate=hook.has_custom_certificate,
                    max_connections=hook.max_connections)  # fmt: skip
        if hook.allowed_updates is not None:
            info["allowed_updates"] = hook.allowed_updates
        if hook.last_error_date is not None:
            info.update(last_error_date=hook.last_error_date, last_error_message=hook.last_error_message)
        return info

    # ---------------------------------------------------------------- webhook deliveries
    async def _stop_delivery(self) -> None:
        """End the deliveries to the current webhook; what they carried stays pending."""
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _run_webhook(self, hook: Webhook) -> None:
        claimed: set[int] = set()  # the update_ids being delivered
        async with asyncio.TaskGroup() as connections:
            for _ in range(hook.max_connections):
                connections.create_task(self._webhook_connection(hook, claimed))

    async def _webhook_connection(self, hook: Webhook, claimed: set[int]) -> None:
        """One connection: deliver the oldest update no other connection has, again and again."""
        while True:
            event = self._updates_event
            self._updates = [x for x in self._updates if self._allowed_updates & x.keys()]
            update = next((x for x in self._updates if x["update_id"] not in claimed), None)
            if update is None:
                await event.wait()
                continue
            claimed.add(update["update_id"])
            try:
                await self._deliver_update(hook, update)
            finally:
                claimed.discard(update["update_id"])

    async def _deliver_update(self, hook: Webhook, update: dict[str, Any]) -> None:
        """POST `update` until the webhook answers 2xx (then it is no longer pending) or it is dropped."""
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers[SECRET_HEADER] = hook.secret_token
        body = json.dumps(update)
        wait, longest = self.webhook_retry
        while any(x is update for x in self._updates):
            status, error = await self._post_update(hook.url, body, headers)
            self.webhook_deliveries.append((update["update_id"], status))
            if error is None:
                self._updates = [x for x in self._updates if x is not update]
                self._bump()
                return
            hook.last_error_date, hook.last_error_message = int(time.time()), error
            self._bump()
            await asyncio.sleep(wait * self.time_scale)
            wait = min(wait * 2, longest)

    async def _post_update(
        self, url: str, body: str, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        """-> (HTTP status or None, Telegram's last_error_message or None if accepted)."""
        timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
        try:
            async with self.session().post(
                url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                await response.read()
        except TimeoutError:
            return None, "Read timeout expired"
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            return None, "Connection refused" if refused else str(exc)
        except Exception as exc:  # whatever went wrong, Telegram records it and tries again
            return None, f"{type(exc).__name__}: {exc}"
        if 200 <= response.status < 300:
            return response.status, None
        return response.status, f"Wrong response from the webhook: {response.status} {response.reason}"

    @staticmethod
    def _commands_key(p: dict[str, Any]) -> str:
        return json.dumps(
            [p.get("scope") or {"type": "default"}, p.get("language_code") or ""], sort_keys=True
        )

    def _set_my_commands(self, p: dict[str, Any], u: dict[str, Upload]) -> bool:
        if len(p["commands"]) > 100:
            raise bad("BOT_COMMANDS_TOO_MUCH")
        for c in p["commands"]:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", c["command"]):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(c["description"]) <= 256:
                raise bad("command description is empty" if not c["description"] else "BOT_COMMAND_INVALID")
        self.commands[self._commands_key(p)] = [
            {"command": c["command"], "description": c["description"]} for c in p["commands"]
        ]
        return True

    def _get_my_commands(self, p: dict[str, Any], u: dict[str, Upload]) -> list[dict[str, Any]]:
        return self.commands.get(self._commands_key(p), [])

    def _delete_my_commands(self, p: dict[str, Any], u: dict[str, Upload]) -> bool:
        self.commands.pop(self._commands_key(p), None)
        return True

    def _send_chat_action(self, p: dict[str, Any], u: dict[str, Upload]) -> bool:
        self.chat_actions.append((self._chat_of(p["chat_id"])["id"], p["action"]))
        return True

    def _bot_message(self, chat: dict[str, Any], p: dict[str, Any], **fields: Any) -> FakeMessage:
        markup = self._markup(p.get("reply_markup"))
        buttons = [b for row in (markup or {}).get("inline_keyboard", []) for b in row]
        if chat["type"] != "private" and any("web_app" in b for b in buttons):
            raise bad("BUTTON_TYPE_INVALID")  # Web App buttons: private chats only
        force = self._force_reply(p.get("reply_markup"))
        thread = p.get("message_thread_id")
        if thread is not None and not self._is_topic(chat["id"], thread):
            raise bad("message thread not found")
        reply_to = self._reply_target(chat["id"], p, thread)
        if thread is None and reply_to is not None:  # a reply goes to the topic of what it replies to
            thread = self._messages[chat["id"]][reply_to].message_thread_id
        msg = self._new_message(chat["id"], self.bot_user.to_json(), reply_to=reply_to, thread=thread)
        for key, value in fields.items():
            setattr(msg, key, value)
        msg.reply_markup, msg.outgoing, msg.force_reply = markup, True, force
        return msg

    @staticmethod
    def _force_reply(value: dict[str, Any] | None) -> dict[str, Any] | None:
        """A ForceReply markup (sent, never kept as a keyboard: Telegram shows no buttons for it)."""
        if not value or "force_reply" not in value:
            return None
        if value["force_reply"] is not True:
            raise bad("can't parse reply keyboard markup JSON object")
        placeholder = value.get("input_field_placeholder")
        if placeholder is not None and not 1 <= len(placeholder) <= 64:
            raise bad("REPLY_MARKUP_INVALID")
        return dict(value)

    def _send_message(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        chat = self._chat_of(p["chat_id"])
        text, formatted = self._text(p["text"], p.get("parse_mode"), 4096, "text")
        if not (text or "").strip():
            raise bad("message text is empty")
        msg = self._bot_message(chat, p, text=text, formatted=formatted, entities=p.get("entities"))
        return self._json(msg)

    def _send_photo(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        chat = self._chat_of(p["chat_id"])
        caption, formatted = self._text(p.get("caption"), p.get("parse_mode"), 1024, "caption")
        self._markup(p.get("reply_markup"))
        sizes, data = self._photo_of(p["photo"], u, "photo")
        msg = self._bot_message(
            chat,
            p,
            photo=sizes,
            uploaded=data,
            caption=caption or None,
            formatted=formatted,
            caption_entities=p.get("caption_entities"),
        )
        return self._json(msg)

    def _send_document(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        chat = self._chat_of(p["chat_id"])
        caption, formatted = self._text(p.get("caption"), p.get("parse_mode"), 1024, "caption")
        self._markup(p.get("reply_markup"))
        doc, data = self._document_of(p["document"], u, "document")
        msg = self._bot_message(
            chat,
            p,
            document=doc,
            uploaded=data,
            caption=caption or None,
            formatted=formatted,
            caption_entities=p.get("caption_entities"),
        )
        return self._json(msg)

    def _send_media_group(self, p: dict[str, Any], u: dict[str, Upload]) -> list[dict[str, Any]]:
        chat = self._chat_of(p["chat_id"])
        media = p["media"]
        if not 2 <= len(media) <= 10:
            raise bad("wrong number of media specified: must include 2-10 items")
        kinds = {m["type"] for m in media}
        if len(kinds) > 1 and not kinds <= {"photo", "video"}:
            raise bad(f"{sorted(kinds - {'photo', 'video'})[0]} can't be mixed with other media types")
        prepared: list[dict[str, Any]] = []
        for i, item in enumerate(media):
            caption, formatted = self._text(item.get("caption"), item.get("parse_mode"), 1024, "caption")
            if item["type"] == "photo":
                sizes, data = self._photo_of(item["media"], u, f"media[{i}]")
                prepared.append(
                    {"photo": sizes, "uploaded": data, "caption": caption or None, "formatted": formatted}
                )
            elif item["type"] == "document":
                doc, data = self._document_of(item["media"], u, f"media[{i}]")
                prepared.append(
                    {"document": doc, "uploaded": data, "caption": caption or None, "formatted": formatted}
                )
            else:
                raise bad(f"media type {item['type']} is not supported by TelegramFake")
        group_id = self._new_id("1")
        return [
            self._json(self._bot_message(chat, p, media_group_id=group_id, **fields)) for fields in prepared
        ]

    def _finish_edit(self, msg: FakeMessage, changes: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
        changes["reply_markup"] = self._markup(p.get("reply_markup"))  # omitted markup removes the keyboard
        if all(getattr(msg, key) == value for key, value in changes.items()):
            raise ApiError(400, NOT_MODIFIED)
        for key, value in changes.items():
            setattr(msg, key, value)
        msg.edit_date = int(time.time())
        return self._json(msg)

    def _edit_text(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        msg = self._editable(p)
        if msg.text is None:
            raise bad("there is no text in the message to edit")
        if p.get("text") is None:
            raise bad("message text is empty")
        text, formatted = self._text(p["text"], p.get("parse_mode"), 4096, "text")
        if not (text or "").strip():
            raise bad("message text is empty")
        return self._finish_edit(
            msg, {"text": text, "formatted": formatted, "entities": p.get("entities")}, p
        )

    def _edit_caption(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        msg = self._editable(p)
        if msg.photo is None and msg.document is None:
            raise bad("there is no caption in the message to edit")
        caption, formatted = self._text(p.get("caption"), p.get("parse_mode"), 1024, "caption")
        return self._finish_edit(
            msg,
            {
                "caption": caption or None,
                "formatted": formatted,
                "caption_entities": p.get("caption_entities"),
            },
            p,
        )

    def _edit_media(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        msg = self._editable(p)
        if msg.photo is None and msg.document is None:
            raise bad("there is no media in the message to edit")
        item = p["media"]
        if msg.media_group_id and (item["type"] == "document") != (msg.document is not None):
            raise bad("can't change the media type of a media group message")
        caption, formatted = self._text(item.get("caption"), item.get("parse_mode"), 1024, "caption")
        changes: dict[str, Any] = {
            "caption": caption or None,
            "formatted": formatted,
            "caption_entities": item.get("caption_entities"),
        }
        self._markup(p.get("reply_markup"))
        if item["type"] == "photo":
            sizes, data = self._photo_of(item["media"], u, "media")
            changes.update(photo=sizes, document=None, uploaded=data)
        elif item["type"] == "document":
            doc, data = self._document_of(item["media"], u, "media")
            changes.update(document=doc, photo=None, uploaded=data)
        else:
            raise bad(f"media type {item['type']} is not supported by TelegramFake")
        return self._finish_edit(msg, changes, p)

    def _edit_markup(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        return self._finish_edit(self._editable(p), {}, p)

    def _answer_callback(self, p: dict[str, Any], u: dict[str, Upload]) -> bool:
        query_id = p["callback_query_id"]
        if query_id not in self._queries or query_id in self.callback_answers:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        if len(p.get("text") or "") > 200:
            raise bad("MESSAGE_TOO_LONG")
        self.callback_answers[query_id] = {k: v for k, v in p.items() if k != "callback_query_id"}
        return True

    def _delete_message(self, p: dict[str, Any], u: dict[str, Upload]) -> bool:
        chat = self._chat_of(p["chat_id"])
        msg = self._messages[chat["id"]].get(p["message_id"])
        if msg is None or msg.deleted:
            raise bad("message to delete not found")
        if not msg.from_bot and chat["type"] != "private" and chat["id"] not in self.admin_chats:
            raise bad("message can't be deleted")
        msg.deleted = True
        return True

    @staticmethod
    def _member_json(user: FakeUser, status: str) -> dict[str, Any]:
        member: dict[str, Any] = {"status": status, "user": user.to_json()}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            rights = ("can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                      "can_restrict_members", "can_change_info", "can_invite_users", "can_post_stories",
                      "can_edit_stories", "can_delete_stories")
            member.update({"can_be_edited": False, "is_anonymous": False, "can_promote_members": False,
                           **dict.fromkeys(rights, True)})
        return member

    def _get_chat_administrators(self, p: dict[str, Any], u: dict[str, Upload]) -> list[dict[str, Any]]:
        chat = self._chat_of(p["chat_id"])
        if chat["type"] == "private":
            raise bad("there are no administrators in the private chat")
        return [self._member_json(user, status) for user, status in self.chat_admins[chat["id"]].values()]

    def _get_chat_member(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        chat = self._chat_of(p["chat_id"])
        user_id = p["user_id"]
        if chat["type"] == "private":
            if user_id not in (chat["id"], self.bot_user.id):
                raise bad("user not found")
            return self._member_json(FakeUser(user_id, chat.get("first_name", "User")), "member")
        if user_id in self.chat_admins[chat["id"]]:
            return self._member_json(*self.chat_admins[chat["id"]][user_id])
        return self._member_json(FakeUser(user_id, f"User {user_id}"), "member")

    def _get_file(self, p: dict[str, Any], u: dict[str, Upload]) -> dict[str, Any]:
        stored = self._files.get(p["file_id"])
        if stored is None:
            raise bad("invalid file_id")
        if len(stored.data) > 20 * MB:
            raise bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }


if __name__ == "__main__":
    serve_forever(TelegramFake())
