"""The slash commands as Discord lists them: names, options, choices; each one calls a handler.

Provider choices come from the config, so they are built at start (`install`), not at import time.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from bot.discord_frontend.admin import AdminHandlers
from bot.discord_frontend.handlers import Handlers
from bot.presentation import shorten, title
from bot.quota import LIMIT_KEYS
from bot.service import REMIX_SETTINGS
from providers.base import BlendDimensions, Speed

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


def _job_commands(tree: app_commands.CommandTree[Any], h: Handlers, providers: list[Choice[str]]) -> None:
    @tree.command(name="imagine", description="Generate a grid of four images from a prompt")
    @app_commands.describe(prompt="What to see; Midjourney flags such as --ar 16:9 work too",
                           aspect_ratio="Width:height", provider="Which image service to use",
                           speed="Generation speed (where the provider has modes)", version="Model version",
                           stylize="How strongly to apply the style (0-1000)", chaos="How varied (0-100)",
                           no="Things to leave out, e.g. text, people", seed="Seed for repeatable results",
                           image="A reference image")
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

    @tree.command(name="describe", description="Four prompts that could have made an image")
    @app_commands.describe(image="The image to describe", provider="Which image service to use")
    @app_commands.choices(provider=providers)
    async def describe(interaction: discord.Interaction, image: discord.Attachment,
                       provider: str | None = None) -> None:
        await h.describe(interaction, image, provider)

    @tree.command(name="blend", description="Blend 2 to 5 images into one")
    @app_commands.describe(dimensions="Shape of the result", provider="Which image service to use")
    @app_commands.choices(dimensions=_choices(list(DIMENSIONS)), provider=providers)
    async def blend(interaction: discord.Interaction, image1: discord.Attachment, image2: discord.Attachment,
                    image3: discord.Attachment | None = None, image4: discord.Attachment | None = None,
                    image5: discord.Attachment | None = None, dimensions: str | None = None,
                    provider: str | None = None) -> None:
        images = [a for a in (image1, image2, image3, image4, image5) if a is not None]
        await h.blend(interaction, images, _DIMENSION.get(dimensions or ""), provider)

    @tree.command(name="shorten", description="Weigh a prompt's words and suggest up to five shorter prompts")
    @app_commands.describe(prompt="The prompt to analyse; flags such as --ar 16:9 are kept",
                           provider="Which image service to use (its own shorten where it has one)")
    @app_commands.choices(provider=providers)
    async def shorten_command(interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 4000],
                              provider: str | None = None) -> None:
        await h.shorten(interaction, prompt, provider)


def _other_commands(tree: app_commands.CommandTree[Any], h: Handlers, providers: list[Choice[str]]) -> None:
    @tree.command(name="jobs", description="Your recent jobs")
    async def jobs(interaction: discord.Interaction) -> None:
        await h.jobs(interaction)

    @tree.command(name="cancel", description="Cancel a queued or running job (default: your latest)")
    @app_commands.describe(job="The job id (see /jobs)")
    async def cancel(interaction: discord.Interaction,
                     job: app_commands.Range[str, 1, 32] | None = None) -> None:
        await h.cancel(interaction, job)

    @cancel.autocomplete("job")
    async def cancel_choices(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        active = await h.active_jobs(interaction)
        return [Choice(name=shorten(f"{j.id} · {j.state.value} · {title(j)}", 100), value=j.id)
                for j in active if j.id.startswith(current.strip().lower())][:25]

    @tree.command(name="settings", description="Your defaults for /imagine (shown when no option is given)")
    @app_commands.describe(provider="Default image service", aspect_ratio="Default width:height",
                           speed="Default speed",
                           remix="On: V1–V4, Vary, 🔄 and the pans first ask you for the prompt")
    @app_commands.choices(provider=providers, aspect_ratio=_choices(ASPECT_RATIOS),
                          speed=_choices(list(SPEEDS)), remix=_choices(REMIX_SETTINGS))
    async def settings(interaction: discord.Interaction, provider: str | None = None,
                       aspect_ratio: str | None = None, speed: str | None = None,
                       remix: str | None = None) -> None:
        await h.settings(interaction, {"provider": provider, "aspect_ratio": aspect_ratio, "speed": speed,
                                       "remix": remix})

    @tree.command(name="info", description="The image providers, their status and queues")
    async def info(interaction: discord.Interaction) -> None:
        await h.info(interaction)

    @tree.command(name="help", description="How to use the bot")
    async def help_(interaction: discord.Interaction) -> None:
        await h.help(interaction)


def _admin_group(a: AdminHandlers, providers: list[Choice[str]]) -> app_commands.Group:
    """`/admin …`, visible to everyone (role-based admins need not have Manage Server); the handlers
    refuse non-admins."""
    group = app_commands.Group(name="admin", description="Server admins: bans, limits, providers, stats")
    everywhere = "Operators only: apply to every server and chat"

    @group.command(name="ban", description="Stop a member from using the bot in this server")
    @app_commands.describe(user="Who to ban", reason="Shown to them when they are refused",
                           everywhere=everywhere)
    async def ban(interaction: discord.Interaction, user: discord.User,
                  reason: app_commands.Range[str, 1, 200] | None = None, everywhere: bool = False) -> None:
        await a.ban(interaction, user, reason, everywhere)

    @group.command(name="unban", description="Let a banned member use the bot again")
    @app_commands.describe(user="Who to unban", everywhere=everywhere)
    async def unban(interaction: discord.Interaction, user: discord.User, everywhere: bool = False) -> None:
        await a.unban(interaction, user, everywhere)

    @group.command(name="bans", description="Who is banned here")
    async def bans(interaction: discord.Interaction) -> None:
        await a.bans(interaction)

    @group.command(name="limits", description="The usage limits in force in this server")
    async def limits(interaction: discord.Interaction) -> None:
        await a.limits(interaction)

    @group.command(name="set-limit", description="Change a usage limit for this server")
    @app_commands.describe(key="Which limit", value="A number, none (unlimited) or default (the config's)",
                           everywhere=everywhere)
    @app_commands.choices(key=_choices(list(LIMIT_KEYS)))
    async def set_limit(interaction: discord.Interaction, key: str, value: app_commands.Range[str, 1, 20],
                        everywhere: bool = False) -> None:
        await a.set_limit(interaction, key, value, everywhere)

    @group.command(name="pause", description="Operators: stop sending jobs to a provider")
    @app_commands.choices(provider=providers)
    async def pause(interaction: discord.Interaction, provider: str) -> None:
        await a.pause(interaction, provider, True)

    @group.command(name="resume", description="Operators: send jobs to a paused provider again")
    @app_commands.choices(provider=providers)
    async def resume(interaction: discord.Interaction, provider: str) -> None:
        await a.pause(interaction, provider, False)

    @group.command(name="stats", description="Jobs, failures and spend per provider")
    @app_commands.describe(period="How far back, e.g. 90m, 24h, 7d")
    async def stats(interaction: discord.Interaction, period: app_commands.Range[str, 1, 10] = "24h") -> None:
        await a.stats(interaction, period)

    return group
