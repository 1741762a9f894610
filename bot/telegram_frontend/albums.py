"""Albums (media groups) the bot has seen, so /blend can take all of an album's photos.

Telegram delivers an album as one message per photo, with a shared `media_group_id` and the caption
on one of them only, and the Bot API can't fetch a message by id. So every photo of an album that
reaches the bot is remembered in the store (kept across restarts, seen by every worker of a shared
database, pruned with the retention age), and /blend as an album's caption waits a moment for the
album's other photos to arrive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from telegram import Message

from bot.store.inputs import Albums as StoredAlbums


class Albums:
    def __init__(self, stored: StoredAlbums, settle: float, clock: Callable[[], float] = time.time) -> None:
        self._stored = stored
        self._settle = settle  # seconds without a new photo after which an album is taken as complete
        self._clock = clock

    async def add(self, message: Message) -> None:
        """Remember `message`'s photo if it is part of an album."""
        if not message.media_group_id or not message.photo:
            return
        file_id = message.photo[-1].file_id  # the largest size
        await self._stored.add(str(message.chat_id), message.media_group_id, message.message_id, file_id,
                               self._clock())  # fmt: skip

    async def photos(self, chat_id: int, media_group_id: str) -> list[str]:
        """The file ids of the album's photos seen so far, in the order they were sent."""
        return await self._stored.photos(str(chat_id), media_group_id)

    async def settled(self, chat_id: int, media_group_id: str) -> list[str]:
        """The album's photos once no new one has arrived for the settle time."""
        seen: list[str] | None = None
        while (photos := await self.photos(chat_id, media_group_id)) != seen:
            seen = photos
            await asyncio.sleep(self._settle)
        return photos
