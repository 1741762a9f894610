"""Which language a person is answered in, from what is stored: their own choice (`/settings language`),
then their chat's or server's (set by its admins: `/admin language`), then what their app says.

Both choices are stored under the key `language`: a person's among their settings, a chat's among the
ops settings of its scope ("telegram:<chat id>", "discord:<guild id>"). "auto" (or nothing) passes the
choice on to the next one. The frontends ask once per update or interaction and put the answer in the
`Caller` they build; `bot/i18n.py` does the rest.
"""

from __future__ import annotations

from bot import i18n
from bot.domain import Owner
from bot.errors import UserError
from bot.i18n import t
from bot.store.jobs import JobStore
from bot.store.ops import OpsSettings

KEY = "language"
AUTO = "auto"


def checked(value: str) -> str:
    """A language as stored: one of `i18n.LOCALES`, or AUTO; raises UserError naming the choices."""
    if value.strip().lower() == AUTO:
        return AUTO
    locale = i18n.normalize(value)
    if locale is None:
        raise UserError(t("I don't speak '{value}'. Languages: {choices}, or auto (your app's language).",
                          value=value, choices=", ".join(i18n.LOCALES)))
    return locale


class Languages:
    def __init__(self, store: JobStore, ops: OpsSettings) -> None:
        self._store = store
        self._ops = ops

    async def of(self, owner: Owner, scope_key: str | None, platform_tag: str | None) -> str:
        """The locale to answer `owner` in, in the chat or server `scope_key` (None: a private chat)."""
        own = (await self._store.settings(owner.platform, owner.user_id)).get(KEY)
        chat = (await self._ops.all(scope_key)).get(KEY) if scope_key else None
        return i18n.resolve(own, chat, platform_tag)

    async def chat(self, scope_key: str) -> str:
        """The chat's or server's own choice (AUTO when its admins made none)."""
        return (await self._ops.all(scope_key)).get(KEY, AUTO)
