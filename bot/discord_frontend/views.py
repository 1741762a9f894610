"""Buttons: one `DynamicItem` class whose custom_id is the packed ActionRef; and the Remix form.

discord.py matches every pressed custom_id against the ActionRef pattern, so buttons on messages sent
before a restart (or by another process) work: all the state is in the id and the database, none in
view objects. Fully dynamic views are not kept per message by discord.py, so memory stays flat.
The Remix form (a modal) likewise carries its button in its custom_id ("remix:" + the ActionRef): its
submit is read from the interaction's data, whichever process (or run) sent the form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import discord

from bot.domain import PICK_PROMPT, ActionRef
from bot.i18n import t
from bot.presentation import Button
from providers.base import Action

_PRIMARY = frozenset({Action.UPSCALE.value, PICK_PROMPT})
REMIX_PATTERN = "remix:" + ActionRef.PATTERN  # a Remix form's custom_id
_REMIX_ID = re.compile(REMIX_PATTERN)
PROMPT_INPUT = "prompt"  # the custom_id of the form's text input
PROMPT_MAX = 4000  # Discord's limit for a text input's value


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
            if button.url:  # a link (Vary (Region)'s web editor): opens the page, no interaction
                result.add_item(discord.ui.Button(label=button.label, url=button.url, row=row_index))
                continue
            item = ActionButton(button.ref, button.label)
            item.item.row = row_index
            result.add_item(item)
    return result


def remix_modal(ref: ActionRef, title: str, prompt: str) -> discord.ui.Modal:
    """The Remix form for a press of `ref`: one paragraph input pre-filled with the parent's prompt.
    Stopped before it is sent, so discord.py keeps no copy of it (its submit is read by `remix_answer`)."""
    modal = discord.ui.Modal(title=title[:45], custom_id=f"remix:{ref.pack()}", timeout=None)
    text: discord.ui.TextInput[Any] = discord.ui.TextInput(
        style=discord.TextStyle.paragraph, custom_id=PROMPT_INPUT, default=prompt[:PROMPT_MAX] or None,
        max_length=PROMPT_MAX, required=True)
    # TRANSLATORS: the label of the Remix form's text box (45 characters at most)
    modal.add_item(discord.ui.Label(text=t("Prompt")[:45], component=text))
    modal.stop()
    return modal


def remix_answer(data: Any) -> tuple[ActionRef | None, str] | None:
    """A submitted Remix form: the button it was for (None: a form of another version) and the prompt
    typed; None when the interaction is not one of our forms."""
    custom_id = str((data or {}).get("custom_id", ""))
    if _REMIX_ID.fullmatch(custom_id) is None:
        return None
    return ActionRef.unpack(custom_id.removeprefix("remix:")), _value(data.get("components") or [])


def _value(components: Sequence[Any]) -> str:
    """The prompt input's value, in a Label (type 18) or an action row (type 1, the older layout)."""
    for component in components:
        inner = [component.get("component")] if component.get("type") == 18 else component.get("components")
        for item in inner or [component]:
            if isinstance(item, dict) and item.get("custom_id") == PROMPT_INPUT:
                return str(item.get("value") or "")
    return ""
