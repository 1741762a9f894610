"""Sign-in without passwords: one-time links signed by the bot, the sessions they open, CSRF tokens.

A link carries who it is for (an owner), where they asked for it (a chat scope and the frontend's
admin verdict there, or an operator's right), a random nonce and an expiry, signed with the bot's
secret (itsdangerous, HMAC-SHA256). Using it records the nonce in the store (one row per nonce, in the
database every worker shares), so a link works once, on any worker, even after a restart. The session
is a random cookie value; the store keeps only its sha256, so the table alone opens no session.
A session's CSRF token is an HMAC of its id: nothing more to store, and useless in another session.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

from itsdangerous import BadSignature, URLSafeSerializer

from bot.access import Caller
from bot.config import WebConfig
from bot.domain import Owner
from bot.errors import UserError
from bot.i18n import N_, t
from bot.store.web import WebSession, WebStore

COOKIE = "imagine_session"
LOGIN_PATH = "/web/login"
_SALT = "imagine-bot web sign-in link"
_INIT_DATA_INVALID = N_("This Telegram sign-in is not valid. Open the pages again from the bot.")


class LinkRefused(UserError):
    """A sign-in link that is forged, expired or used already: the message says which, plainly."""


class InitDataRefused(UserError):
    """Telegram Web App `initData` that is forged, signed for another bot, too old or without a user."""


@dataclass(frozen=True)
class Grant:
    """What a sign-in link gives: the person, the chat they asked in (None: a private chat, a DM, the
    terminal) with the frontend's verdict on whether they administer it, and an operator's right."""

    owner: Owner
    scope: str | None = None
    scope_platform: str | None = None
    chat_admin: bool = False
    operator: bool = False

    @classmethod
    def of(cls, caller: Caller) -> Grant:
        """The grant of a chat command's caller: where they are, as the frontend judged them."""
        platform = caller.scope_platform if caller.scope is not None else None
        return cls(caller.owner, caller.scope, platform, caller.chat_admin, caller.operator)


def session_caller(session: WebSession) -> Caller:
    """The `Caller` a session acts as, for the same service and admin calls the chat commands make."""
    owner = Owner(platform=session.platform, user_id=session.user_id, name=session.name)
    return Caller(owner, scope=session.scope, chat_admin=session.chat_admin, operator=session.operator,
                  scope_platform=session.scope_platform)


def session_scope_key(session: WebSession) -> str | None:
    """The chat a session was opened from, as scopes are stored ("telegram:-100…"), or None."""
    return session_caller(session).scope_key


class WebAuth:
    def __init__(self, config: WebConfig, public_url: str, store: WebStore,
                 clock: Callable[[], float] = time.time, telegram_token: str = "") -> None:
        self._config = config
        self._telegram_token = telegram_token
        self.public_url = public_url.rstrip("/")
        self._store = store
        self._clock = clock
        self._secret: bytes | None = None

    @property
    def secure_cookie(self) -> bool:
        """Secure cookies when the pages are reached over TLS (the public URL is https)."""
        return self.public_url.startswith("https://")

    @property
    def session_lifetime(self) -> float:
        return self._config.session_lifetime

    async def load_secret(self) -> None:
        """The configured secret, else the stored one (generated and stored by the first start)."""
        if self._config.secret is not None:
            self._secret = self._config.secret.get_secret_value().encode()
        else:
            self._secret = (await self._store.secret(secrets.token_urlsafe(48))).encode()

    def _key(self) -> bytes:
        if self._secret is None:
            raise RuntimeError("WebAuth.load_secret() has not run")
        return self._secret

    def _serializer(self) -> URLSafeSerializer:
        return URLSafeSerializer(self._key(), salt=_SALT)

    # -- links ---------------------------------------------------------------------------------------

    def link(self, grant: Grant) -> str:
        """A one-time sign-in URL for `grant`, valid for `web.link_expiry` seconds."""
        payload = {
            "n": secrets.token_urlsafe(16), "e": self._clock() + self._config.link_expiry,
            "p": grant.owner.platform, "u": grant.owner.user_id, "m": grant.owner.name,
            "s": grant.scope, "sp": grant.scope_platform, "a": grant.chat_admin, "o": grant.operator,
        }  # fmt: skip
        token = self._serializer().dumps(payload)
        return f"{self.public_url}{LOGIN_PATH}?t={quote(str(token))}"

    async def redeem(self, token: str) -> tuple[WebSession, str]:
        """Use a link's token: the new session and its cookie value. LinkRefused when the token is
        forged (or mangled), expired, or used before."""
        try:
            payload = self._serializer().loads(token)
        except BadSignature:
            raise LinkRefused(t("This sign-in link is not valid. Ask the bot for a new one with /web.")) \
                from None
        now = self._clock()
        if not isinstance(payload, dict) or float(payload.get("e", 0)) < now:
            raise LinkRefused(t("This sign-in link has expired. Ask the bot for a new one with /web."))
        if not await self._store.use_link(str(payload["n"]), now, float(payload["e"])):
            raise LinkRefused(t("This sign-in link was used already. Ask the bot for a new one with /web."))
        owner = Owner(platform=str(payload["p"]), user_id=str(payload["u"]), name=str(payload.get("m") or ""))
        return await self.open_session(Grant(owner, payload.get("s"), payload.get("sp"),
                                             bool(payload.get("a")), bool(payload.get("o"))))

    async def open_session(self, grant: Grant) -> tuple[WebSession, str]:
        """A new session for `grant`: the session and its cookie value."""
        now = self._clock()
        cookie = secrets.token_urlsafe(32)
        session = WebSession(
            id=_digest(cookie), platform=grant.owner.platform, user_id=grant.owner.user_id,
            name=grant.owner.name or "", scope_platform=grant.scope_platform, scope=grant.scope,
            chat_admin=grant.chat_admin, operator=grant.operator,
            created_at=now, expires_at=now + self._config.session_lifetime,
        )  # fmt: skip
        await self._store.add_session(session)
        return session, cookie

    # -- Telegram Web App ----------------------------------------------------------------------------

    @property
    def telegram_app(self) -> bool:
        """Whether `initData` can be checked (a Telegram bot token is configured)."""
        return bool(self._telegram_token)

    def telegram_user(self, init_data: str) -> Owner:
        """The Telegram user a Web App's `initData` vouches for, checked as Telegram documents it:
        secret_key = HMAC_SHA256(key="WebAppData", msg=bot_token); hash = hex HMAC_SHA256(key=secret_key,
        msg=the sorted "key=value" lines but `hash`, joined by "\n"); `auth_date` within
        `web.init_data_max_age`. InitDataRefused otherwise."""
        if not self._telegram_token:
            raise InitDataRefused(t("Telegram sign-in is not available on this bot."))
        fields = dict(parse_qsl(init_data, keep_blank_values=True))
        given = fields.pop("hash", "")
        check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
        secret = hmac.new(b"WebAppData", self._telegram_token.encode(), hashlib.sha256).digest()
        expected = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
        if not given or not hmac.compare_digest(expected, given):
            raise InitDataRefused(t(_INIT_DATA_INVALID))
        try:
            age = self._clock() - float(fields.get("auth_date", ""))
            user = json.loads(fields.get("user", ""))
        except ValueError:
            raise InitDataRefused(t(_INIT_DATA_INVALID)) from None
        if age > self._config.init_data_max_age:
            raise InitDataRefused(t("This Telegram sign-in has expired. Open the pages again from the bot."))
        if not isinstance(user, dict) or "id" not in user:
            raise InitDataRefused(t("This Telegram sign-in names nobody. Open the pages again from the bot."))
        name = " ".join(str(user[k]) for k in ("first_name", "last_name") if user.get(k))
        name = name or str(user.get("username") or "")
        return Owner(platform="telegram", user_id=str(user["id"]), name=name)

    # -- sessions ------------------------------------------------------------------------------------

    async def session(self, cookie: str | None) -> WebSession | None:
        """The live session of a cookie value (None: no cookie, unknown, expired or revoked)."""
        if not cookie:
            return None
        return await self._store.session(_digest(cookie), self._clock())

    async def revoke(self, session: WebSession) -> None:
        await self._store.revoke(session.id, self._clock())

    async def revoke_user(self, owner: Owner) -> int:
        """Sign a person out everywhere (`/web logout`): the number of sessions ended."""
        return await self._store.revoke_user(owner.platform, owner.user_id, self._clock())

    # -- CSRF ----------------------------------------------------------------------------------------

    def csrf(self, session: WebSession) -> str:
        return hmac.new(self._key(), b"csrf\0" + session.id.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: WebSession, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf(session), str(token))


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()
