"""Who administers a Telegram chat: `getChatAdministrators`, cached per chat for a short while, and
the `Caller` of a command or press carrying that verdict (what the member may do with it is the
AccessPolicy's decision, not this module's).

One call per group per `ttl` however many commands and presses arrive; a refused call (the bot was
removed, a network hiccup) counts as "no admins" for a shorter while, so a command never fails on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import telegram.error
from telegram import Bot, Chat, Message

from bot import i18n
from bot.access import Caller
from bot.config import AdminsConfig
from bot.domain import Owner
from bot.telegram_frontend.common import is_anonymous_admin

log = logging.getLogger(__name__)

TTL = 60.0  # seconds an admin list is trusted: a promotion or demotion takes effect within a minute
_RETRY = 10.0  # seconds before asking again after Telegram refused to say
_MEMORY = 5_000  # chats whose admin list is remembered


class ChatAdmins:
    def __init__(self, bot: Bot, config: AdminsConfig, *, ttl: float = TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._bot = bot
        self._config = config
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[int, tuple[float, frozenset[int]]] = {}  # chat id -> (expires, admin user ids)

    async def caller(self, owner: Owner, chat: Chat | None, message: Message | None = None) -> Caller:
        """Who asks, where (a group's id; None in a private chat, which is nobody's to administer) and
        whether they administer that group: the first argument of every service command."""
        scope = None if chat is None or chat.type == Chat.PRIVATE else str(chat.id)
        verdict = await self.verdict(owner, chat, message)
        return Caller(owner, scope=scope, chat_admin=verdict, locale=i18n.current())

    async def verdict(self, owner: Owner, chat: Chat | None, message: Message | None = None) -> bool:
        """Whether the user is an administrator of this group (including one posting anonymously as
        the group itself). Operators (`admins.users`) are the AccessPolicy's to recognise."""
        if chat is None or chat.type == Chat.PRIVATE or not self._config.telegram_chat_admins:
            return False
        if message is not None and is_anonymous_admin(message):
            # Telegram hides who it is, but only administrators can post as the group, and they
            # expect /admin to work as it does for them signed: trust the group as the sender.
            return True
        return int(owner.user_id) in await self.of(chat.id)

    async def of(self, chat_id: int) -> frozenset[int]:
        now = self._clock()
        cached = self._cache.get(chat_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            members = await self._bot.get_chat_administrators(chat_id)
        except telegram.error.TelegramError as exc:
            log.info("administrators of chat %s unknown: %s", chat_id, exc)
            self._remember(chat_id, now + _RETRY, frozenset())
            return frozenset()
        admins = frozenset(member.user.id for member in members)
        self._remember(chat_id, now + self._ttl, admins)
        return admins

    def _remember(self, chat_id: int, expires: float, admins: frozenset[int]) -> None:
        self._cache.pop(chat_id, None)
        self._cache[chat_id] = (expires, admins)
        if len(self._cache) > _MEMORY:
            del self._cache[next(iter(self._cache))]
