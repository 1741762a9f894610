"""The slash commands as Discord lists them: names, options, choices; each one calls a handler.

Provider choices come from the config, so they are built at start (`install`), not at import time.
Names and descriptions are English in the code and marked for the catalogues (`C_`, `N_`); the
`CatalogueTranslator` gives Discord their translations when the tree is synced, so each person sees
the commands in their app's language.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot import i18n
from bot.discord_frontend.admin import AdminHandlers
from bot.discord_frontend.handlers import Handlers
from bot.i18n import C_, N_
from bot.languages import AUTO
from bot.presentation import shorten, title
from bot.quota import LIMIT_KEYS
from bot.service import REMIX_SETTINGS
from providers.base import BlendDimensions, Speed

log = logging.getLogger(__name__)

Choice = app_commands.Choice
ASPECT_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "1:2", "2:1", "21:9")
VERSIONS = ("7", "6.1", "6", "5.2", "5.1", "niji 6", "niji 5")
SPEEDS: tuple[Speed, ...] = ("relax", "fast", "turbo")
DIMENSIONS: tuple[BlendDimensions, ...] = ("portrait", "square", "landscape")
_SPEED: dict[str, Speed] = {s: s for s in SPEEDS}
_DIMENSION: dict[str, BlendDimensions] = {d: d for d in DIMENSIONS}


def imagine_prompt(prompt: str, *, aspect_ratio: str | None = None, version: str | None = None,
                   stylize: int | None = None, chaos: int | None = None, no: str | None = None,
                   seed: int | None = None) -> str:
    """The prompt with the options as Midjourney flags (the prompt parser checks them all)."""
    flags = []
    if aspect_ratio:
        flags.append(f"--ar {aspect_ratio}")
    if version:
        flags.append(f"--niji {version.split()[-1]}" if version.startswith("niji") else f"--v {version}")
    flags += [f"--{flag} {value}" for flag, value in (("s", stylize), ("c", chaos), ("seed", seed))
              if value is not None]
    if no and no.strip():
        flags.append(f"--no {no.strip()}")
    return " ".join([prompt.strip(), *flags])


def _choices(values: tuple[str, ...] | list[str]) -> list[Choice[str]]:
    return [Choice(name=v, value=v) for v in values[:25]]


def install(tree: app_commands.CommandTree[Any], handlers: Handlers, admin: AdminHandlers) -> None:
    """Add every command to `tree` (sync separately)."""
    providers = _choices(handlers.service.providers())
    _job_commands(tree, handlers, providers)
    _other_commands(tree, handlers, providers)
    tree.add_command(_admin_group(admin, providers))


#: The options' names, for the catalogues (Discord shows them translated, see CatalogueTranslator).
OPTION_NAMES = (
    C_("option name", "prompt"), C_("option name", "aspect_ratio"), C_("option name", "provider"),
    C_("option name", "speed"), C_("option name", "version"), C_("option name", "stylize"),
    C_("option name", "chaos"), C_("option name", "no"), C_("option name", "seed"),
    C_("option name", "image"), C_("option name", "image1"), C_("option name", "image2"),
    C_("option name", "image3"), C_("option name", "image4"), C_("option name", "image5"),
    C_("option name", "dimensions"), C_("option name", "job"), C_("option name", "remix"),
    C_("option name", "language"), C_("option name", "user"), C_("option name", "reason"),
    C_("option name", "everywhere"), C_("option name", "key"), C_("option name", "value"),
    C_("option name", "period"), C_("option name", "action"),
)
#: Choice names that are words (the others are values: ratios, versions, provider names, language names).
CHOICE_NAMES = (N_("portrait"), N_("square"), N_("landscape"), N_("on"), N_("off"), N_("auto"),
                N_("link"), N_("logout"))
NAME_RULE = re.compile(r"^[-_\w]{1,32}$")  # Discord's rule for command and option names
DESCRIPTION_MAX = 100  # characters of a command's or option's description, and of a choice's name
_NAMES = {Where.command_name: "command name", Where.group_name: "command name",
          Where.parameter_name: "option name"}


class CatalogueTranslator(app_commands.Translator):
    """Commands, options and choices in each of Discord's locales the catalogues have: None (no
    localization sent) for a locale the bot does not speak, a text the catalogue leaves in English, or
    a translation Discord would refuse (a name breaking its rule, a description over 100 characters)."""

    async def translate(self, string: app_commands.locale_str, locale: discord.Locale,
                        context: app_commands.TranslationContextTypes) -> str | None:
        ours = i18n.normalize(locale.value)
        if ours is None or ours == i18n.DEFAULT:
            return None
        message = string.message
        name_context = _NAMES.get(context.location)
        if name_context is not None:
            translated = i18n.translate_name(ours, name_context, message)
            if translated == message:
                return None
            if NAME_RULE.fullmatch(translated) is None or translated != translated.lower():
                log.warning("discord: the %s translation of the %s %r breaks Discord's name rule; "
                            "English is used", ours, name_context, message)
                return None
            return translated
        translated = i18n.translate(ours, message)
        if translated == message or not translated.strip():
            return None
        if len(translated) > DESCRIPTION_MAX:
            log.warning("discord: the %s translation of %r is over %d characters; English is used",
                        ours, message, DESCRIPTION_MAX)
            return None
        return translated


def language_choices() -> list[Choice[str]]:
    """Every language the bot speaks, by its own name, and auto (each person's app's)."""
    return [*(Choice(name=name, value=code) for code, name in i18n.NAMES.items()),
            Choice(name=N_("auto"), value=AUTO)]


def _job_commands(tree: app_commands.CommandTree[Any], h: Handlers, providers: list[Choice[str]]) -> None:
    @tree.command(name=C_("command name", "imagine"),
                  description=N_("Generate a grid of four images from a prompt"))
    @app_commands.describe(prompt=N_("What to see; Midjourney flags such as --ar 16:9 work too"),
                           aspect_ratio=N_("Width:height"), provider=N_("Which image service to use"),
                           speed=N_("Generation speed (where the provider has modes)"),
                           version=N_("Model version"),
                           stylize=N_("How strongly to apply the style (0-1000)"),
                           chaos=N_("How varied (0-100)"),
                           no=N_("Things to leave out, e.g. text, people"),
                           seed=N_("Seed for repeatable results"),
                           image=N_("A reference image"))
    @app_commands.choices(aspect_ratio=_choices(ASPECT_RATIOS), provider=providers,
                          speed=_choices(list(SPEEDS)), version=_choices(VERSIONS))
    async def imagine(interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 4000],
                      aspect_ratio: str | None = None, provider: str | None = None, speed: str | None = None,
                      version: str | None = None, stylize: app_commands.Range[int, 0, 1000] | None = None,
                      chaos: app_commands.Range[int, 0, 100] | None = None,
                      no: app_commands.Range[str, 1, 500] | None = None,
                      seed: app_commands.Range[int, 0, 4294967295] | None = None,
                      image: discord.Attachment | None = None) -> None:
        full = imagine_prompt(prompt, aspect_ratio=aspect_ratio, version=version, stylize=stylize,
                              chaos=chaos, no=no, seed=seed)
        await h.imagine(interaction, full, provider=provider, speed=_SPEED.get(speed or ""), image=image)

    @tree.command(name=C_("command name", "describe"),
                  description=N_("Four prompts that could have made an image"))
    @app_commands.describe(image=N_("The image to describe"), provider=N_("Which image service to use"))
    @app_commands.choices(provider=providers)
    async def describe(interaction: discord.Interaction, image: discord.Attachment,
                       provider: str | None = None) -> None:
        await h.describe(interaction, image, provider)

    @tree.command(name=C_("command name", "blend"), description=N_("Blend 2 to 5 images into one"))
    @app_commands.describe(dimensions=N_("Shape of the result"), provider=N_("Which image service to use"))
    @app_commands.choices(dimensions=_choices(list(DIMENSIONS)), provider=providers)
    async def blend(interaction: discord.Interaction, image1: discord.Attachment, image2: discord.Attachment,
                    image3: discord.Attachment | None = None, image4: discord.Attachment | None = None,
                    image5: discord.Attachment | None = None, dimensions: str | None = None,
                    provider: str | None = None) -> None:
        images = [a for a in (image1, image2, image3, image4, image5) if a is not None]
        await h.blend(interaction, images, _DIMENSION.get(dimensions or ""), provider)

    @tree.command(name=C_("command name", "shorten"),
                  description=N_("Weigh a prompt's words and suggest up to five shorter prompts"))
    @app_commands.describe(prompt=N_("The prompt to analyse; flags such as --ar 16:9 are kept"),
                           provider=N_("Which image service to use (its own shorten where it has one)"))
    @app_commands.choices(provider=providers)
    async def shorten_command(interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 4000],
                              provider: str | None = None) -> None:
        await h.shorten(interaction, prompt, provider)


def _other_commands(tree: app_commands.CommandTree[Any], h: Handlers, providers: list[Choice[str]]) -> None:
    @tree.command(name=C_("command name", "jobs"), description=N_("Your recent jobs"))
    async def jobs(interaction: discord.Interaction) -> None:
        await h.jobs(interaction)

    @tree.command(name=C_("command name", "cancel"),
                  description=N_("Cancel a queued or running job (default: your latest)"))
    @app_commands.describe(job=N_("The job id (see /jobs)"))
    async def cancel(interaction: discord.Interaction,
                     job: app_commands.Range[str, 1, 32] | None = None) -> None:
        await h.cancel(interaction, job)

    @cancel.autocomplete("job")
    async def cancel_choices(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        active = await h.active_jobs(interaction)
        return [Choice(name=shorten(f"{j.id} · {j.state.value} · {title(j)}", 100), value=j.id)
                for j in active if j.id.startswith(current.strip().lower())][:25]

    @tree.command(name=C_("command name", "settings"),
                  description=N_("Your defaults for /imagine (shown when no option is given)"))
    @app_commands.describe(provider=N_("Default image service"), aspect_ratio=N_("Default width:height"),
                           speed=N_("Default speed"),
                           remix=N_("On: V1–V4, Vary, 🔄 and the pans first ask you for the prompt"),
                           language=N_("The language the bot answers you in (auto: your app's)"))
    @app_commands.choices(provider=providers, aspect_ratio=_choices(ASPECT_RATIOS),
                          speed=_choices(list(SPEEDS)), remix=_choices(REMIX_SETTINGS),
                          language=language_choices())
    async def settings(interaction: discord.Interaction, provider: str | None = None,
                       aspect_ratio: str | None = None, speed: str | None = None,
                       remix: str | None = None, language: str | None = None) -> None:
        await h.settings(interaction, {"provider": provider, "aspect_ratio": aspect_ratio, "speed": speed,
                                       "remix": remix, "language": language})

    @tree.command(name=C_("command name", "info"),
                  description=N_("The image providers, their status and queues"))
    async def info(interaction: discord.Interaction) -> None:
        await h.info(interaction)

    @tree.command(name=C_("command name", "help"), description=N_("How to use the bot"))
    async def help_(interaction: discord.Interaction) -> None:
        await h.help(interaction)


def _admin_group(a: AdminHandlers, providers: list[Choice[str]]) -> app_commands.Group:
    """`/admin …`, visible to everyone (role-based admins need not have Manage Server); the handlers
    refuse non-admins."""
    group = app_commands.Group(name=C_("command name", "admin"),
                               description=N_("Server admins: bans, limits, providers, stats"))
    everywhere = N_("Operators only: apply to every server and chat")

    @group.command(name=C_("command name", "ban"),
                   description=N_("Stop a member from using the bot in this server"))
    @app_commands.describe(user=N_("Who to ban"), reason=N_("Shown to them when they are refused"),
                           everywhere=everywhere)
    async def ban(interaction: discord.Interaction, user: discord.User,
                  reason: app_commands.Range[str, 1, 200] | None = None, everywhere: bool = False) -> None:
        await a.ban(interaction, user, reason, everywhere)

    @group.command(name=C_("command name", "unban"), description=N_("Let a banned member use the bot again"))
    @app_commands.describe(user=N_("Who to unban"), everywhere=everywhere)
    async def unban(interaction: discord.Interaction, user: discord.User, everywhere: bool = False) -> None:
        await a.unban(interaction, user, everywhere)

    @group.command(name=C_("command name", "bans"), description=N_("Who is banned here"))
    async def bans(interaction: discord.Interaction) -> None:
        await a.bans(interaction)

    @group.command(name=C_("command name", "limits"),
                   description=N_("The usage limits in force in this server"))
    async def limits(interaction: discord.Interaction) -> None:
        await a.limits(interaction)

    @group.command(name=C_("command name", "set-limit"),
                   description=N_("Change a usage limit for this server"))
    @app_commands.describe(key=N_("Which limit"),
                           value=N_("A number, none (unlimited) or default (the config's)"),
                           everywhere=everywhere)
    @app_commands.choices(key=_choices(list(LIMIT_KEYS)))
    async def set_limit(interaction: discord.Interaction, key: str, value: app_commands.Range[str, 1, 20],
                        everywhere: bool = False) -> None:
        await a.set_limit(interaction, key, value, everywhere)

    @group.command(name=C_("command name", "language"),
                   description=N_("The language the bot answers in here (auto: each member's app's)"))
    @app_commands.describe(value=N_("A language, or auto"))
    @app_commands.choices(value=language_choices())
    async def language(interaction: discord.Interaction, value: str) -> None:
        await a.language(interaction, value)

    @group.command(name=C_("command name", "pause"),
                   description=N_("Operators: stop sending jobs to a provider"))
    @app_commands.choices(provider=providers)
    async def pause(interaction: discord.Interaction, provider: str) -> None:
        await a.pause(interaction, provider, True)

    @group.command(name=C_("command name", "resume"),
                   description=N_("Operators: send jobs to a paused provider again"))
    @app_commands.choices(provider=providers)
    async def resume(interaction: discord.Interaction, provider: str) -> None:
        await a.pause(interaction, provider, False)

    @group.command(name=C_("command name", "stats"), description=N_("Jobs, failures and spend per provider"))
    @app_commands.describe(period=N_("How far back, e.g. 90m, 24h, 7d"))
    async def stats(interaction: discord.Interaction, period: app_commands.Range[str, 1, 10] = "24h") -> None:
        await a.stats(interaction, period)

    return group
