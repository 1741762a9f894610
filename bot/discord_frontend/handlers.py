"""What each slash command and button press does, on top of JobService (no command declarations here).

A job-starting command is committed to the inbox, defers publicly within 3 s, creates the job (keyed
by the interaction: handled again after a restart, it finds that job), turns the "thinking…" message
into the progress card and records `(channel, message)` with `service.place`; from then on the Outbox
edits that message with the bot token. A press is committed, defers, asks the service for the child
job and posts it as a new message replying to its parent, with the job id as the message's nonce:
Discord returns the message already sent for a repeated nonce, so a press handled again after a
restart posts one message. Jobs whose first message never went out (their interaction expired before
a restart) are posted the same way at start.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Container, Sequence
from typing import Any

import discord

from bot import faults
from bot.config import AdminsConfig, AppConfig
from bot.discord_frontend import render
from bot.discord_frontend.inbox import InteractionInbox, origin
from bot.discord_frontend.outbox import PLATFORM, Outbox, Rendered
from bot.discord_frontend.replies import acknowledge, answering, tell
from bot.domain import ActionRef, Job, Owner, Placement
from bot.errors import BadImage, UnknownJob, UserError
from bot.presentation import toast
from bot.service import JobService
from providers.base import BlendDimensions, ImageInput, Speed
from providers.errors import ProviderError

log = logging.getLogger(__name__)

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
    def __init__(self, client: discord.Client, service: JobService, outbox: Outbox, inbox: InteractionInbox,
                 config: AppConfig) -> None:
        self._client = client
        self._service = service
        self._outbox = outbox
        self._inbox = inbox
        self._config = config
        self._discord = config.discord
        assert self._discord is not None
        self.stopping = False  # set on the way out: commands and presses are refused from then on

    @property
    def service(self) -> JobService:
        return self._service

    @property
    def inbox(self) -> InteractionInbox:
        return self._inbox

    # ------------------------------------------------------------------------------ access and input
    def admin(self, interaction: discord.Interaction) -> bool:
        return is_admin(interaction, self._config.admins)

    async def allowed(self, interaction: discord.Interaction) -> bool:
        """The guild allowlist (`discord.guild_ids`; empty = everywhere), then the access lists and
        bans; refuses others ephemerally (autocomplete just gets no suggestions)."""
        refusal = await self._refusal(interaction)
        if refusal is None:
            return True
        if not self.stopping:  # refused for good (a stop leaves a re-processed one for the next start)
            await self._inbox.skipped(interaction)
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
        async with answering(interaction), self._inbox.processing(interaction):
            for attachment, what in attachments:  # cheap checks first, while an ephemeral answer is easy
                check_attachment(attachment, what, self._config.media.max_download_bytes)
            answerable = await acknowledge(interaction, thinking=True)
            channel_id = interaction.channel_id
            assert channel_id is not None
            self._outbox.remember_upload_limit(channel_id, interaction.filesize_limit)
            job = await create(Placement(platform=PLATFORM, chat_id=str(channel_id)))
            await self._show(job, interaction if answerable else None)

    async def _show(self, job: Job, interaction: discord.Interaction | None = None, *,
                    new: bool = False) -> None:
        """The job's first message, then where it is, in the store: the "thinking…" response of
        `interaction` (an edit: the same again after a restart changes nothing), or else a new channel
        message. A job shown before (handled before a restart) or meant for no chat is left alone.

        A channel message for a job that is not `new` (just created) may have been sent before a
        restart: Discord then returns that message as it was, so the Outbox edits it to the job's
        state instead of taking it as shown."""
        where = job.placement
        if where is None or where.platform != PLATFORM or where.message_id is not None:
            return
        channel_id = int(where.chat_id)
        card = await self._outbox.card(job)
        content = await self._outbox.rendered(job, card, channel_id)
        if interaction is not None:
            extra: dict[str, Any] = {"attachments": content.files} if content.files else {}
            message: discord.Message = await interaction.edit_original_response(
                embed=content.embed, view=content.view, **extra)
        else:
            message = await self._post(job, channel_id, content)
        await faults.point("reply_sent")
        placement = where.model_copy(update={"message_id": str(message.id)})
        shown = interaction is not None or new
        if shown:
            self._outbox.shown(placement, card)
        await self._service.place(job, placement)  # the Outbox edits a message not known to be current
        if shown:
            await self._service.delivered(job)  # only when `job` (as just shown) is finished

    async def _post(self, job: Job, channel_id: int, content: Rendered) -> discord.Message:
        """A job's message in its channel, replying to `reply_to` (a pressed button's message). The job
        id is the nonce, enforced: a second send (after a restart) returns the first message."""
        assert job.placement is not None
        extra: dict[str, Any] = {"view": content.view} if content.view else {}
        if job.placement.reply_to:
            extra["reference"] = discord.MessageReference(
                message_id=int(job.placement.reply_to), channel_id=channel_id, fail_if_not_exists=False)
        return await self._client.get_partial_messageable(channel_id).send(
            embed=content.embed, files=content.files, nonce=job.id,
            allowed_mentions=discord.AllowedMentions.none(), **extra)

    async def send_unreplied(self, before: float, channels: Container[str]) -> None:
        """After the interactions from before a restart were handled again (or on taking a dead
        worker's channels over): the first message of every job in `channels` created before `before`
        that still has none (its interaction expired). A job whose interaction is being handled here
        right now is its handler's to answer."""
        jobs = [job for job in await self._service.unreplied(PLATFORM) if job.created_at < before
                and job.placement is not None and job.placement.chat_id in channels
                and job.origin not in self._inbox.answering]  # fmt: skip
        if jobs:
            log.info("discord: sending the first message of %d job(s) from before the restart", len(jobs))
        for job in jobs:
            try:
                await self._show(await self._service.get(job.id))
            except (discord.NotFound, discord.Forbidden) as exc:  # the channel is gone, or closed to us
                log.warning("job %s: its message can't be sent to channel %s: %s", job.id,
                            job.placement and job.placement.chat_id, exc)
                await self._service.unplace(job)
            except (discord.HTTPException, UserError, ProviderError) as exc:  # the next start tries again
                log.warning("job %s: its message could not be sent: %s", job.id, exc)

    async def imagine(self, interaction: discord.Interaction, prompt: str, *, provider: str | None,
                      speed: Speed | None, image: discord.Attachment | None) -> None:
        async def create(placement: Placement) -> Job:
            images = [await self._image(image, "The reference image")] if image else []
            return await self._service.imagine(owner_of(interaction), prompt, provider=provider,
                                               images=images, speed=speed, placement=placement,
                                               scope=scope_of(interaction), admin=self.admin(interaction),
                                               origin=origin(interaction))

        await self._start(interaction, create, [(image, "The reference image")] if image else [])

    async def describe(self, interaction: discord.Interaction, image: discord.Attachment,
                       provider: str | None) -> None:
        async def create(placement: Placement) -> Job:
            checked = await self._image(image, "The image")
            return await self._service.describe(owner_of(interaction), checked, provider=provider,
                                                placement=placement, scope=scope_of(interaction),
                                                admin=self.admin(interaction), origin=origin(interaction))

        await self._start(interaction, create, [(image, "The image")])

    async def blend(self, interaction: discord.Interaction, images: Sequence[discord.Attachment],
                    dimensions: BlendDimensions | None, provider: str | None) -> None:
        named = [(a, f"Image {i}") for i, a in enumerate(images, start=1)]

        async def create(placement: Placement) -> Job:
            inputs = [await self._image(attachment, what) for attachment, what in named]
            return await self._service.blend(owner_of(interaction), inputs, dimensions=dimensions,
                                             provider=provider, placement=placement,
                                             scope=scope_of(interaction), admin=self.admin(interaction),
                                             origin=origin(interaction))

        await self._start(interaction, create, named)

    # ---------------------------------------------------------------------------------- the buttons
    async def press(self, interaction: discord.Interaction, ref: ActionRef | None) -> None:
        if not await self.allowed(interaction):
            return
        async with answering(interaction), self._inbox.processing(interaction):
            if ref is None:
                raise UnknownJob("This button comes from another version of the bot and no longer works.")
            answerable = await acknowledge(interaction, thinking=False)
            channel_id, parent = interaction.channel_id, interaction.message
            assert channel_id is not None and parent is not None
            assert self._discord is not None
            job, created = await self._service.act(
                owner_of(interaction), ref.job_id, ref.action, ref.index,
                placement=Placement(platform=PLATFORM, chat_id=str(channel_id), reply_to=str(parent.id)),
                anyone=not self._discord.owner_only_buttons, scope=scope_of(interaction),
                admin=self.admin(interaction))
            unshown = job.placement is not None and job.placement.message_id is None
            if created or unshown:  # the same press handled again after a restart: its message, once
                await self._show(job, new=created)
            elif answerable:
                await interaction.followup.send(
                    f"{toast(ref.action, ref.index)} already requested: job `{job.id}` is {job.state.value}.",
                    ephemeral=True)

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
