"""What each slash command and button press does, on top of JobService (no command declarations here).

A job-starting command defers publicly within 3 s, creates the job, turns the "thinking…" message
into the progress card and records `(channel, message)` with `service.place`; from then on the Outbox
edits that message with the bot token. A press defers, asks the service for the child job and posts
it as a new message replying to its parent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord

from bot.config import AdminsConfig, AppConfig
from bot.discord_frontend import render
from bot.discord_frontend.outbox import PLATFORM, Outbox
from bot.discord_frontend.replies import answering, tell
from bot.domain import ActionRef, Job, Owner, Placement
from bot.errors import BadImage, UnknownJob, UserError
from bot.presentation import toast
from bot.service import JobService
from providers.base import BlendDimensions, ImageInput, Speed

StartJob = Callable[[Placement], Awaitable[Job]]


def owner_of(interaction: discord.Interaction) -> Owner:
    user = interaction.user
    return Owner(platform=PLATFORM, user_id=str(user.id), name=user.display_name)


def scope_of(interaction: discord.Interaction) -> str | None:
    """The guild a command came from (limits, bans and admin rights are per server); None in DMs."""
    return str(interaction.guild_id) if interaction.guild_id else None


def is_admin(interaction: discord.Interaction, admins: AdminsConfig) -> bool:
    """An admin of this server: Manage Server (unless `admins.discord_manage_server` is off) or one of
    `admins.discord_role_ids`. Operators (`admins.users`) are recognised by the service itself."""
    member = interaction.user
    if interaction.guild_id is None or not isinstance(member, discord.Member):
        return False
    permissions = interaction.permissions
    if admins.discord_manage_server and (permissions.manage_guild or permissions.administrator):
        return True
    return any(str(role.id) in admins.discord_role_ids for role in member.roles)


def check_attachment(attachment: discord.Attachment, what: str, max_bytes: int) -> None:
    """Refuse from the metadata alone (before deferring): too large, or not an image."""
    if attachment.size > max_bytes:
        raise BadImage(f"{what} ({attachment.filename}) is {attachment.size / 1e6:.1f} MB; "
                       f"the limit is {max_bytes / 1e6:.1f} MB.")
    if attachment.content_type and not attachment.content_type.startswith("image/"):
        raise BadImage(f"{what} ({attachment.filename}) is not an image (PNG, JPEG, GIF or WEBP).")


class Handlers:
    def __init__(self, client: discord.Client, service: JobService, outbox: Outbox,
                 config: AppConfig) -> None:
        self._client = client
        self._service = service
        self._outbox = outbox
        self._config = config
        self._discord = config.discord
        assert self._discord is not None
        self.stopping = False  # set on the way out: commands and presses are refused from then on

    @property
    def service(self) -> JobService:
        return self._service

    # ------------------------------------------------------------------------------ access and input
    def admin(self, interaction: discord.Interaction) -> bool:
        return is_admin(interaction, self._config.admins)

    async def allowed(self, interaction: discord.Interaction) -> bool:
        """The guild allowlist (`discord.guild_ids`; empty = everywhere), then the access lists and
        bans; refuses others ephemerally (autocomplete just gets no suggestions)."""
        refusal = await self._refusal(interaction)
        if refusal is None:
            return True
        if interaction.type is not discord.InteractionType.autocomplete:
            await tell(interaction, refusal)
        return False

    async def _refusal(self, interaction: discord.Interaction) -> str | None:
        assert self._discord is not None
        if self.stopping:
            return "The bot is restarting; try again in a minute."
        if self._discord.guild_ids and interaction.guild_id not in self._discord.guild_ids:
            return "This bot is not enabled in this server."
        chat = str(interaction.channel_id) if interaction.channel_id else None
        try:
            await self._service.access.check(owner_of(interaction), scope_of(interaction), chat)
        except UserError as exc:
            return exc.message
        return None

    async def _image(self, attachment: discord.Attachment, what: str) -> ImageInput:
        check_attachment(attachment, what, self._config.media.max_download_bytes)
        try:
            data = await attachment.read()
        except discord.HTTPException as exc:
            raise BadImage(f"{what} could not be downloaded from Discord; please upload it again.") from exc
        image = ImageInput(data=data, url=attachment.url, filename=attachment.filename)
        return self._service.checked(image, what)

    # ------------------------------------------------------------------------- job-starting commands
    async def _start(self, interaction: discord.Interaction, create: StartJob,
                     attachments: Sequence[tuple[discord.Attachment, str]] = ()) -> None:
        async with answering(interaction):
            for attachment, what in attachments:  # cheap checks first, while an ephemeral answer is easy
                check_attachment(attachment, what, self._config.media.max_download_bytes)
            await interaction.response.defer(thinking=True)
            channel_id = interaction.channel_id
            assert channel_id is not None
            self._outbox.remember_upload_limit(channel_id, interaction.filesize_limit)
            job = await create(Placement(platform=PLATFORM, chat_id=str(channel_id)))
            card = await self._outbox.card(job)
            content = await self._outbox.rendered(job, card, channel_id)
            extra: dict[str, Any] = {"attachments": content.files} if content.files else {}
            message = await interaction.edit_original_response(embed=content.embed, view=content.view,
                                                               **extra)
            await self._placed(job, card, channel_id, message.id)

    async def _placed(self, job: Job, card: render.Card, channel_id: int, message_id: int) -> None:
        placement = Placement(platform=PLATFORM, chat_id=str(channel_id), message_id=str(message_id))
        self._outbox.shown(placement, card)
        await self._service.place(job, placement)
        await self._service.delivered(job)  # only when `job` (as just shown) is finished

    async def imagine(self, interaction: discord.Interaction, prompt: str, *, provider: str | None,
                      speed: Speed | None, image: discord.Attachment | None) -> None:
        async def create(placement: Placement) -> Job:
            images = [await self._image(image, "The reference image")] if image else []
            return await self._service.imagine(owner_of(interaction), prompt, provider=provider,
                                               images=images, speed=speed, placement=placement,
                                               scope=scope_of(interaction), admin=self.admin(interaction))

        await self._start(interaction, create, [(image, "The reference image")] if image else [])

    async def describe(self, interaction: discord.Interaction, image: discord.Attachment,
                       provider: str | None) -> None:
        async def create(placement: Placement) -> Job:
            checked = await self._image(image, "The image")
            return await self._service.describe(owner_of(interaction), checked, provider=provider,
                                                placement=placement, scope=scope_of(interaction),
                                                admin=self.admin(interaction))

        await self._start(interaction, create, [(image, "The image")])

    async def blend(self, interaction: discord.Interaction, images: Sequence[discord.Attachment],
                    dimensions: BlendDimensions | None, provider: str | None) -> None:
        named = [(a, f"Image {i}") for i, a in enumerate(images, start=1)]

        async def create(placement: Placement) -> Job:
            inputs = [await self._image(attachment, what) for attachment, what in named]
            return await self._service.blend(owner_of(interaction), inputs, dimensions=dimensions,
                                             provider=provider, placement=placement,
                                             scope=scope_of(interaction), admin=self.admin(interaction))

        await self._start(interaction, create, named)

    # ---------------------------------------------------------------------------------- the buttons
    async def press(self, interaction: discord.Interaction, ref: ActionRef | None) -> None:
        if not await self.allowed(interaction):
            return
        async with answering(interaction):
            if ref is None:
                raise UnknownJob("This button comes from another version of the bot and no longer works.")
            await interaction.response.defer()
            channel_id, parent = interaction.channel_id, interaction.message
            assert channel_id is not None and parent is not None
            assert self._discord is not None
            job, created = await self._service.act(
                owner_of(interaction), ref.job_id, ref.action, ref.index,
                placement=Placement(platform=PLATFORM, chat_id=str(channel_id)),
                anyone=not self._discord.owner_only_buttons, scope=scope_of(interaction),
                admin=self.admin(interaction))
            if not created:
                await interaction.followup.send(
                    f"{toast(ref.action, ref.index)} already requested: job `{job.id}` is {job.state.value}.",
                    ephemeral=True)
                return
            await self._post_child(job, channel_id, parent.id)

    async def _post_child(self, job: Job, channel_id: int, parent_id: int) -> None:
        card = await self._outbox.card(job)
        content = await self._outbox.rendered(job, card, channel_id)
        channel = self._client.get_partial_messageable(channel_id)
        reference = discord.MessageReference(message_id=parent_id, channel_id=channel_id,
                                             fail_if_not_exists=False)
        extra: dict[str, Any] = {"view": content.view} if content.view else {}
        message = await channel.send(embed=content.embed, files=content.files, reference=reference,
                                     allowed_mentions=discord.AllowedMentions.none(), **extra)
        await self._placed(job, card, channel_id, message.id)

    # --------------------------------------------------------------------------- the other commands
    async def jobs(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            recent = await self._service.recent(owner_of(interaction), limit=10)
            await tell(interaction, render.jobs_text(recent))

    async def cancel(self, interaction: discord.Interaction, job_id: str | None) -> None:
        async with answering(interaction):
            owner = owner_of(interaction)
            job = await self._service.get(job_id) if job_id else await self._latest_active(owner)
            cancelled = await self._service.cancel(owner, job.id, admin=self.admin(interaction))
            await tell(interaction, f"Job `{cancelled.id}` cancelled.")

    async def _latest_active(self, owner: Owner) -> Job:
        active = [job for job in await self._service.recent(owner, limit=20) if not job.terminal]
        if not active:
            raise UnknownJob("You have no queued or running job to cancel.")
        return active[0]

    async def active_jobs(self, interaction: discord.Interaction) -> list[Job]:
        recent = await self._service.recent(owner_of(interaction), limit=25)
        return [job for job in recent if not job.terminal]

    async def settings(self, interaction: discord.Interaction, changes: dict[str, str | None]) -> None:
        async with answering(interaction):
            owner = owner_of(interaction)
            for key, value in changes.items():
                if value is not None:
                    await self._service.set_setting(owner, key, value)
            current = await self._service.settings(owner)
            await tell(interaction, render.settings_text(current, self._config.default_provider))

    async def info(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            usage = await self._service.usage(owner_of(interaction), scope_of(interaction),
                                              admin=self.admin(interaction))
            embed = render.info_embed(await self._service.provider_status(), usage.lines())
            await interaction.response.send_message(embed=embed, ephemeral=True)

    async def help(self, interaction: discord.Interaction) -> None:
        async with answering(interaction):
            await tell(interaction, render.HELP)
