"""Buttons: one `DynamicItem` class whose custom_id is the packed ActionRef.

discord.py matches every pressed custom_id against the ActionRef pattern, so buttons on messages sent
before a restart (or by another process) work: all the state is in the id and the database, none in
view objects. Fully dynamic views are not kept per message by discord.py, so memory stays flat.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import discord

from bot.domain import PICK_PROMPT, ActionRef
from bot.presentation import Button
from providers.base import Action

_PRIMARY = frozenset({Action.UPSCALE.value, PICK_PROMPT})


class ActionClient(discord.Client):
    """A client that knows what to do with a pressed ActionRef button (the frontend's client)."""

    async def on_action(self, interaction: discord.Interaction, ref: ActionRef | None) -> None:
        raise NotImplementedError


class ActionButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=ActionRef.PATTERN):
    def __init__(self, ref: ActionRef | None, label: str = "?", custom_id: str | None = None) -> None:
        primary = ref is not None and ref.action in _PRIMARY
        style = discord.ButtonStyle.primary if primary else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(label=label, style=style,
                                           custom_id=custom_id or (ref.pack() if ref else "ib:?")))
        self.ref = ref  # None: a well-formed id with an action code this version does not know

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str]) -> ActionButton:
        return cls(ActionRef.unpack(match.string), custom_id=match.string)

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, ActionClient):
            await client.on_action(interaction, self.ref)


def view(rows: Sequence[Sequence[Button]]) -> discord.ui.View | None:
    """The buttons of a card as a persistent view (None when there are none: the edit clears them)."""
    if not rows:
        return None
    result = discord.ui.View(timeout=None)
    for row_index, row in enumerate(rows):
        for button in row:
            item = ActionButton(button.ref, button.label)
            item.item.row = row_index
            result.add_item(item)
    return result
