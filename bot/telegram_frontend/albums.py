"""Albums (media groups) the bot has seen, so /blend can take all of an album's photos.

Telegram delivers an album as one message per photo, with a shared `media_group_id` and the caption
on one of them only, and the Bot API can't fetch a message by id. So every photo of an album that
reaches the bot is remembered here (the most recent albums only), and /blend as an album's caption
waits a moment for the album's other photos to arrive.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from telegram import Message

_KEEP = 500  # albums remembered


class Albums:
    def __init__(self, settle: float) -> None:
        self._settle = settle  # seconds without a new photo after which an album is taken as complete
        self._groups: OrderedDict[tuple[int, str], dict[int, str]] = OrderedDict()

    def add(self, message: Message) -> None:
        """Remember `message`'s photo if it is part of an album."""
        if not message.media_group_id or not message.photo:
            return
        key = (message.chat_id, message.media_group_id)
        group = self._groups.setdefault(key, {})
        self._groups.move_to_end(key)
        group[message.message_id] = message.photo[-1].file_id  # the largest size
        while len(self._groups) > _KEEP:
            self._groups.popitem(last=False)

    def photos(self, chat_id: int, media_group_id: str) -> list[str]:
        """The file ids of the album's photos seen so far, in the order they were sent."""
        group = self._groups.get((chat_id, media_group_id), {})
        return [group[message_id] for message_id in sorted(group)]

    async def settled(self, chat_id: int, media_group_id: str) -> list[str]:
        """The album's photos once no new one has arrived for the settle time."""
        seen = -1
        while (count := len(self.photos(chat_id, media_group_id))) != seen:
            seen = count
            await asyncio.sleep(self._settle)
        return self.photos(chat_id, media_group_id)
