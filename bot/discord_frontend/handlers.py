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

import contextlib
import logging
from collections.abc import Awaitable, Callable, Container, Sequence
from typing import Any

import discord

from bot import faults, i18n, presentation
from bot.access import Caller
from bot.config import AdminsConfig, AppConfig
from bot.discord_frontend import render, views
from bot.discord_frontend.inbox import InteractionInbox, origin
from bot.discord_frontend.outbox import PLATFORM, Outbox
from bot.discord_frontend.replies import acknowledge, answering, locale_of, tell
from bot.domain import ActionRef, Job, Owner, Placement, button_label
from bot.errors import BadImage, UnknownJob, UserError
from bot.i18n import t
from bot.languages import Languages
from bot.presentation import toast
from bot.service import JobService
from providers.base import BlendDimensions, ImageInput, Speed

log = logging.getLogger(__name__)

StartJob = Callable[[Placement], Awaitable[Job]]
StartJobs = Callable[[Placement], Awaitable[tuple[list[Job], bool]]]  # -> the jobs, whether new


def owner_of(interaction: discord.Interaction) -> Owner:
    user = interaction.user
    return Owner(platform=PLATFORM, user_id=str(user.id), name=user.display_name)


def scope_of(interaction: discord.Interaction) -> str | None:
    """The guild a command came from (limits, bans and admin rights are per server); None in DMs."""
    return str(interaction.guild_id) if interaction.guild_id else None


def is_admin(interaction: discord.Interaction, admins: AdminsConfig) -> bool:
    """An admin of this server: Manage Server (unless `admins.discord_manage_server` is off) or one of
    `admins.discord_role_ids`. Operators (`admins.users`) are the AccessPolicy's to recognise."""
    member = interaction.user
    if interaction.guild_id is None or not isinstance(member, discord.Member):
        return False
    permissions = interaction.permissions
    if admins.discord_manage_server and (permissions.manage_guild or permissions.administrator):
        return True
    return any(str(role.id) in admins.discord_role_ids for role in member.roles)


def caller_of(interaction: discord.Interaction, admins: AdminsConfig) -> Caller:
    """Who asks, in which server, and whether they administer it: the first argument of every service
    command. What they may do with it is the AccessPolicy's decision."""
    admin = is_admin(interaction, admins)
    return Caller(owner_of(interaction), scope=scope_of(interaction), chat_admin=admin, locale=i18n.current())


def check_attachment(attachment: discord.Attachment, what: str, max_bytes: int) -> None:
    """Refuse from the metadata alone (before deferring): too large, or not an image."""
    if attachment.size > max_bytes:
        size, limit = f"{attachment.size / 1e6:.1f}", f"{max_bytes / 1e6:.1f}"
        raise BadImage(t("{what} ({filename}) is {size} MB; the limit is {limit} MB.", what=what,
                         filename=attachment.filename, size=size, limit=limit))
    if attachment.content_type and not attachment.content_type.startswith("image/"):
        raise BadImage(t("{what} ({filename}) is not an image (PNG, JPEG, GIF or WEBP).", what=what,
                         filename=attachment.filename))


class Handlers:
    def __init__(self, client: discord.Client, service: JobService, outbox: Outbox, inbox: InteractionInbox,
                 config: AppConfig, languages: Languages | None = None) -> None:
        self._client = client
        self.languages = languages  # None: the app's language alone (tests without a store)
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
    def caller(self, interaction: discord.Interaction) -> Caller:
        return caller_of(interaction, self._config.admins)

    async def allowed(self, interaction: discord.Interaction) -> bool:
        """The access policy's verdict (the servers served, `discord.guild_ids`; the access lists;
        bans); refuses others ephemerally (autocomplete just gets no suggestions)."""
        with i18n.use(await locale_of(interaction, self.languages)):
            return await self._allowed(interaction)

    def answering(self, interaction: discord.Interaction) -> contextlib.AbstractAsyncContextManager[str]:
        """`replies.answering` in the person's language."""
        return answering(interaction, self.languages)

    async def _allowed(self, interaction: discord.Interaction) -> bool:
        refusal = await self._refusal(interaction)
        if refusal is None:
            return True
        if not self.stopping:  # refused for good (a stop leaves a re-processed one for the next start)
            await self._inbox.skipped(interaction)
        if interaction.type is not discord.InteractionType.autocomplete:
            await tell(interaction, refusal)
        return False

    async def _refusal(self, interaction: discord.Interaction) -> str | None:
        if self.stopping:
            return t("The bot is restarting; try again in a minute.")
        chat = str(interaction.channel_id) if interaction.channel_id else None
        try:
            await self._service.access.check(self.caller(interaction), chat)
        except UserError as exc:
            return exc.message
        return None

    async def _image(self, attachment: discord.Attachment, what: str) -> ImageInput:
        check_attachment(attachment, what, self._config.media.max_download_bytes)
        try:
            data = await attachment.read()
        except discord.HTTPException as exc:
            raise BadImage(t("{what} could not be downloaded from Discord; please upload it again.",
                             what=what)) from exc
        image = ImageInput(data=data, url=attachment.url, filename=attachment.filename)
        return self._service.checked(image, what)

    # ------------------------------------------------------------------------- job-starting commands
    async def _start(self, interaction: discord.Interaction, create: StartJob | StartJobs,
                     attachments: Sequence[tuple[discord.Attachment, str]] = ()) -> None:
        async with self.answering(interaction), self._inbox.processing(interaction):
            for attachment, what in attachments:  # cheap checks first, while an ephemeral answer is easy
                check_attachment(attachment, what, self._config.media.max_download_bytes)
            answerable = await acknowledge(interaction, thinking=True)
            channel_id = interaction.channel_id
            assert channel_id is not None
            self._outbox.remember_upload_limit(channel_id, interaction.filesize_limit)
            made = await create(Placement(platform=PLATFORM, chat_id=str(channel_id)))
            if isinstance(made, Job):
                await self._show(made, interaction if answerable else None)
            else:
                await self._show_set(*made, interaction if answerable else None)

    async def _show_set(self, jobs: list[Job], created: bool,
                        interaction: discord.Interaction | None) -> None:
        """The jobs of one command (an imagine's permutations, --repeat). One job: as `_show`. Several:
        the command's response (it can only be one message) becomes the answer saying what was made,
        and each job is a channel message of its own, through the job-message layer (paced, and sent
        again after a restart until placed). `created` False: an earlier run may have sent them; the
        job id as nonce makes Discord return those messages instead of posting them twice."""
        if len(jobs) == 1:
            await self._show(jobs[0], interaction, uncertain=not created)
            return
        if interaction is not None:  # an edit: the same again after a restart changes nothing
            await interaction.edit_original_response(content=presentation.batch_summary(jobs)[:2000])
        for job in jobs:
            await self._show(job, uncertain=not created)

    async def _show(self, job: Job, interaction: discord.Interaction | None = None, *,
                    uncertain: bool = False) -> None:
        """The job's first message: the "thinking…" response of `interaction` (an edit: the same again
        after a restart changes nothing), then where it is, in the store; without an interaction (a
        button press, one that expired) a channel message, queued in the job-message layer."""
        where = job.placement
        if where is None or where.platform != PLATFORM or where.message_id is not None:
            return
        if interaction is None:  # `uncertain`: an earlier run may have sent it (see send_unreplied)
            await self._outbox.messages.show(job, uncertain=uncertain)
            return
        card = self._outbox.card(job)
        content = await self._outbox.rendered(job, card, int(where.chat_id))
        extra: dict[str, Any] = {"attachments": content.files} if content.files else {}
        message = await interaction.edit_original_response(embed=content.embed, view=content.view, **extra)
        await faults.point("reply_sent")
        placement = where.model_copy(update={"message_id": str(message.id)})
        self._outbox.answered(placement, card, interaction)
        await self._service.place(job, placement)  # the Outbox edits a message not known to be current
        await self._service.delivered(job)  # only when `job` (as just shown) is finished

    async def send_unreplied(self, before: float, channels: Container[str]) -> None:
        """After the interactions from before a restart were handled again (or on taking a dead
        worker's channels over): the first message of every job in `channels` created before `before`
        that still has none (its interaction expired). A job whose interaction is being handled here
        right now is its handler's to answer. A message an earlier run sent is returned by Discord for
        the job's nonce, as it was: the layer edits it to the job's state."""
        jobs = [job for job in await self._service.unreplied(PLATFORM) if job.created_at < before
                and job.placement is not None and job.placement.chat_id in channels
                and job.event not in self._inbox.answering]  # fmt: skip
        if jobs:
            log.info("discord: sending the first message of %d job(s) from before the restart", len(jobs))
        for job in jobs:
            await self._outbox.messages.show(job, uncertain=True)

    async def imagine(self, interaction: discord.Interaction, prompt: str, *, provider: str | None,
                      speed: Speed | None, image: discord.Attachment | None) -> None:
        async def create(placement: Placement) -> tuple[list[Job], bool]:
            images = [await self._image(image, t("The reference image"))] if image else []
            return await self._service.imagine_many(self.caller(interaction), prompt, provider=provider,
                                                    images=images, speed=speed, placement=placement,
                                                    origin=origin(interaction))

        await self._start(interaction, create, [(image, t("The reference image"))] if image else [])

    async def describe(self, interaction: discord.Interaction, image: discord.Attachment,
                       provider: str | None) -> None:
        async def create(placement: Placement) -> Job:
            checked = await self._image(image, t("The image"))
            return await self._service.describe(self.caller(interaction), checked, provider=provider,
                                                placement=placement, origin=origin(interaction))

        await self._start(interaction, create, [(image, t("The image"))])

    async def shorten(self, interaction: discord.Interaction, prompt: str, provider: str | None) -> None:
        """/shorten: the prompt's words weighed and up to five shorter prompts, each a button."""
        async def create(placement: Placement) -> Job:
            return await self._service.shorten(self.caller(interaction), prompt, provider=provider,
                                               placement=placement, origin=origin(interaction))

        await self._start(interaction, create)

    async def blend(self, interaction: discord.Interaction, images: Sequence[discord.Attachment],
                    dimensions: BlendDimensions | None, provider: str | None) -> None:
        named = [(a, t("Image {i}", i=i)) for i, a in enumerate(images, start=1)]

        async def create(placement: Placement) -> Job:
            inputs = [await self._image(attachment, what) for attachment, what in named]
            return await self._service.blend(self.caller(interaction), inputs, dimensions=dimensions,
                                             provider=provider, placement=placement,
                                             origin=origin(interaction))

        await self._start(interaction, create, named)

    # ---------------------------------------------------------------------------------- the buttons
    async def press(self, interaction: discord.Interaction, ref: ActionRef | None) -> None:
        if not await self.allowed(interaction):
            return
        async with self.answering(interaction), self._inbox.processing(interaction):
            if ref is None:
                raise UnknownJob(t("This button comes from another version of the bot and no longer works."))
            if await self._ask_for_prompt(interaction, ref):  # Remix: the form answers the press
                return
            answerable = await acknowledge(interaction, thinking=False)
            job, created = await self._act(interaction, ref)
            if created or _unshown(job):  # the same press handled again after a restart: its message, once
                await self._show(job, uncertain=not created)
            elif answerable:
                await interaction.followup.send(
                    t("{action} already requested: job `{job}` is {state}.",
                      action=toast(ref.action, ref.index), job=job.id, state=job.state.value),
                    ephemeral=True)

    async def _act(self, interaction: discord.Interaction, ref: ActionRef,
                   prompt: str | None = None) -> tuple[Job, bool]:
        """The child job of a press (with a Remix `prompt`: of the form's submit), replying to the
        pressed message. Whose buttons these are is the access policy's."""
        channel_id, parent = interaction.channel_id, interaction.message
        assert channel_id is not None and parent is not None
        placement = Placement(platform=PLATFORM, chat_id=str(channel_id), reply_to=str(parent.id))
        return await self._service.act(self.caller(interaction), ref.job_id, ref.action, ref.index,
                                       placement=placement, prompt=prompt,
                                       origin=origin(interaction) if prompt is not None else None)

    async def _ask_for_prompt(self, interaction: discord.Interaction, ref: ActionRef) -> bool:
        """Remix: answer the press with the form, pre-filled with the parent's prompt, when this
        press asks for one (the presser's setting or the job's --remix). True when it did."""
        parent = await self._service.remix_target(self.caller(interaction), ref.job_id, ref.action, ref.index)
        if parent is None:
            return False
        title = t("Remix {button} · job {job}", button=button_label(ref.action, ref.index), job=parent.id)
        modal = views.remix_modal(ref, title, self._service.remix_prompt(parent, ref.action))
        try:
            await interaction.response.send_modal(modal)
        except discord.HTTPException as exc:  # handled again after a restart: answered (or expired) then
            log.info("discord: the Remix form for interaction %s was not sent: %s", interaction.id, exc)
        return True

    async def remix(self, interaction: discord.Interaction, ref: ActionRef | None, prompt: str) -> None:
        """A submitted Remix form: the job with the edited prompt, once per submit (its interaction),
        posted replying to the pressed message. A prompt that can't be used (empty, too long, a bad
        flag) is told to the person alone, with their text to copy; the button asks again."""
        if not await self.allowed(interaction):
            return
        async with self.answering(interaction), self._inbox.processing(interaction):
            if ref is None:
                raise UnknownJob(t("This form comes from another version of the bot and no longer works."))
            await acknowledge(interaction, thinking=False)
            try:
                job, created = await self._act(interaction, ref, prompt)
            except UserError as exc:
                raise UserError(t("{message}\nPress the button again to edit your prompt:\n"
                                  "```\n{prompt}\n```", message=exc.message, prompt=prompt[:1500])) from exc
            if created or _unshown(job):
                await self._show(job, uncertain=not created)

    # --------------------------------------------------------------------------- the other commands
    async def jobs(self, interaction: discord.Interaction) -> None:
        async with self.answering(interaction):
            recent = await self._service.recent(owner_of(interaction), limit=10)
            await tell(interaction, render.jobs_text(recent))

    async def cancel(self, interaction: discord.Interaction, job_id: str | None) -> None:
        async with self.answering(interaction):
            caller = self.caller(interaction)
            job = await self._service.get(job_id) if job_id else await self._latest_active(caller.owner)
            cancelled = await self._service.cancel(caller, job.id)  # who may: the access policy
            await tell(interaction, t("Job `{job}` cancelled.", job=cancelled.id))

    async def _latest_active(self, owner: Owner) -> Job:
        active = [job for job in await self._service.recent(owner, limit=20) if not job.terminal]
        if not active:
            raise UnknownJob(t("You have no queued or running job to cancel."))
        return active[0]

    async def active_jobs(self, interaction: discord.Interaction) -> list[Job]:
        recent = await self._service.recent(owner_of(interaction), limit=25)
        return [job for job in recent if not job.terminal]

    async def settings(self, interaction: discord.Interaction, changes: dict[str, str | None]) -> None:
        async with self.answering(interaction):
            owner = owner_of(interaction)
            for key, value in changes.items():
                if value is not None:
                    await self._service.set_setting(owner, key, value)
            current = await self._service.settings(owner)
            if changes.get("language") is not None:  # answered in the language just chosen
                with i18n.use(await locale_of(interaction, self.languages, fresh=True)) as locale:
                    text = render.settings_text(current, self._config.default_provider, locale)
                    await tell(interaction, text)
                return
            await tell(interaction, render.settings_text(current, self._config.default_provider))

    async def info(self, interaction: discord.Interaction) -> None:
        async with self.answering(interaction):
            usage = await self._service.usage(self.caller(interaction))
            embed = render.info_embed(await self._service.provider_status(), usage.lines())
            await interaction.response.send_message(embed=embed, ephemeral=True)

    async def help(self, interaction: discord.Interaction) -> None:
        async with self.answering(interaction):
            await tell(interaction, t(render.HELP))


def _unshown(job: Job) -> bool:
    """A job meant for a chat whose first message has not been sent (or recorded) yet."""
    return job.placement is not None and job.placement.message_id is None
