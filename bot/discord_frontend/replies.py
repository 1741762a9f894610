"""Ephemeral answers and the one place interaction errors become clear text (never a traceback)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import discord

from bot import i18n
from bot.access import scope_key
from bot.domain import Owner
from bot.errors import UserError
from bot.i18n import N_, t
from bot.languages import Languages
from providers.errors import ProviderError

log = logging.getLogger(__name__)

GENERIC = N_("Something went wrong on our side; please try again. "
             "(The details are in the bot's log.)")
UNKNOWN_INTERACTION = 10062  # JSON error code: not acknowledged within 3 s (or its token expired)
ALREADY_ACKNOWLEDGED = 40060  # JSON error code: acknowledged before (by the run before a restart)


async def acknowledge(interaction: discord.Interaction, *, thinking: bool) -> bool:
    """Defer (within Discord's 3 s); returns whether the interaction can still be answered.

    An interaction handled again after a restart may have been deferred by the run before: that is
    as good as deferring now (its webhook answers either way), so the response is marked deferred
    and `tell` answers privately through follow-ups. One that was never acknowledged in time can't
    be answered at all (False): its work goes on, its job is posted as a channel message.
    """
    try:
        await interaction.response.defer(thinking=thinking)
    except discord.NotFound as exc:
        if exc.code != UNKNOWN_INTERACTION:
            raise
        return False
    except discord.HTTPException as exc:
        if exc.code != ALREADY_ACKNOWLEDGED:
            raise
        pressed = interaction.type is discord.InteractionType.component and not thinking
        interaction.response._response_type = (  # what defer() records after its own callback
            discord.InteractionResponseType.deferred_message_update if pressed
            else discord.InteractionResponseType.deferred_channel_message)  # fmt: skip
    return True


async def tell(interaction: discord.Interaction, text: str) -> None:
    """Answer only the person who asked, whatever has been answered so far.

    After a public "thinking…" defer the first follow-up would fill that public message, so the
    placeholder is deleted first and the answer goes out as a new, ephemeral follow-up.
    """
    text = text[:2000]
    if not interaction.response.is_done():
        await interaction.response.send_message(text, ephemeral=True)
        return
    if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
    await interaction.followup.send(text, ephemeral=True)


async def locale_of(interaction: discord.Interaction, languages: Languages | None, *,
                    fresh: bool = False) -> str:
    """The locale to answer `interaction` in: the person's choice, their server's, then their app's.
    Looked up once per interaction (kept in its `extras`); `fresh`: again, after a choice changed."""
    known = interaction.extras.get("locale")
    if isinstance(known, str) and not fresh:
        return known
    locale = await _lookup(interaction, languages)
    interaction.extras["locale"] = locale
    return locale


async def _lookup(interaction: discord.Interaction, languages: Languages | None) -> str:
    tag = str(interaction.locale.value) if interaction.locale else None
    if languages is None:
        return i18n.resolve(tag)
    user = interaction.user
    owner = Owner(platform="discord", user_id=str(user.id), name=user.display_name)
    scope = scope_key("discord", str(interaction.guild_id) if interaction.guild_id else None)
    try:
        return await languages.of(owner, scope, tag)
    except Exception:  # a store hiccup must not stop the answer: the app's language then
        log.exception("discord: the language of interaction %s could not be read", interaction.id)
        return i18n.resolve(tag)


@contextlib.asynccontextmanager
async def answering(interaction: discord.Interaction,
                    languages: Languages | None = None) -> AsyncIterator[str]:
    """Run a handler in the person's language (yields it): user and provider errors are told as they
    are; anything else is logged and told as a generic message, so a bug never leaves "thinking…"
    hanging or shows a trace."""
    with i18n.use(await locale_of(interaction, languages)) as locale:
        try:
            yield locale
        except UserError as exc:
            await _tell_safely(interaction, exc.message)
        except ProviderError as exc:
            await _tell_safely(interaction, t(exc.template, **exc.params))
        except Exception:  # the one catch-all of the frontend: logged with its trace, told generically
            log.exception("discord interaction %s failed", interaction.id)
            await _tell_safely(interaction, t(GENERIC))


async def _tell_safely(interaction: discord.Interaction, text: str) -> None:
    try:
        await tell(interaction, text)
    except discord.HTTPException as exc:  # the interaction expired or was answered elsewhere
        log.warning("could not answer interaction %s: %s", interaction.id, exc)
