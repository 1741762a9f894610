"""Outbox: Discord's `Surface` for the shared job-message layer (`bot/job_messages.py`).

A job's message is an embed with its buttons, and when final the result uploaded (fitted to the
channel's upload cap). While the interaction that made it lives (`discord.interaction_edit_window`,
under the token's 15 minutes), edits go through the interaction's own webhook (`PATCH
/webhooks/{app}/{token}/messages/@original`): a rate-limit bucket per interaction, outside the bot's
global limit, so a burst finishing together in one channel is not throttled to the channel's ~1 edit/s.
After that, through the bot token (`channel.get_partial_message(id).edit`), paced per channel.
discord.py sleeps on 429s and bucket headers; what it gives up on comes back as `RetryAfter`.
A message in a thread archived meanwhile can't be edited (50083): its final state becomes a new reply.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import discord

from bot import media
from bot.config import DiscordConfig
from bot.delivery import Lane, Rate
from bot.discord_frontend import render
from bot.discord_frontend.render import Card
from bot.discord_frontend.views import view
from bot.domain import Job, Placement
from bot.i18n import t
from bot.job_messages import Gone, JobMessages
from bot.presentation import shorten
from bot.queue_board import QueueBoard
from bot.service import JobService

log = logging.getLogger(__name__)

PLATFORM = "discord"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # bytes per file when neither guild nor interaction says more
REQUEST_LIMIT = 25 * 1024 * 1024  # bytes per request, all files together
THREAD_ARCHIVED = 50083  # JSON error code: edits in an archived thread (and sends to a locked one)
INVALID_WEBHOOK_TOKEN = 50027  # the interaction's token expired (or was never valid)
UNKNOWN_WEBHOOK = 10015
_INTERACTIONS_KEPT = 10_000  # live interactions remembered for their webhook (oldest forgotten first)

Files = tuple[dict[str, bytes], str]  # a result's files by name, and a note (e.g. a video too large)


@dataclass(frozen=True)
class Rendered:
    """An edit's keyword arguments, ready for `PartialMessage.edit` / `send`."""

    embed: discord.Embed
    view: discord.ui.View | None
    files: list[discord.File]
    note: str = ""  # e.g. a video too large to upload


def retry_after(exc: discord.HTTPException) -> float:
    """Seconds a 429 asked to wait (header first, then the JSON body), 1 s when it said nothing."""
    header = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return max(0.05, float(header)) if header else 1.0
    except ValueError:
        return 1.0


def rate_limited(exc: BaseException) -> float | None:
    """Seconds to wait when `exc` is a rate limit discord.py gave up on, else None."""
    if isinstance(exc, discord.RateLimited):  # longer than max_ratelimit_timeout
        return exc.retry_after
    if isinstance(exc, discord.HTTPException) and exc.status == 429:  # discord.py retried and gave up
        return retry_after(exc)
    return None


class Outbox:
    """Discord's surface: renders every change of a Discord-placed job and sends it."""

    platform = PLATFORM

    def __init__(self, client: discord.Client, service: JobService, board: QueueBoard, config: DiscordConfig,
                 owns: Callable[[str], Awaitable[bool]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._service = service
        self._config = config
        self._clock = clock
        self._upload_limits: dict[int, int] = {}  # channel id -> upload cap its interactions reported
        # threads that refused an edit as archived: their progress edits are skipped, not sent to fail
        # (Discord bans a bot after too many invalid requests); a message sent there reopens them
        self._archived_threads: set[int] = set()
        # message id -> the interaction whose response it is, and until when its webhook is used
        self._interactions: dict[str, tuple[discord.Interaction, float]] = {}
        self._files: dict[str, asyncio.Task[Files]] = {}  # job id -> its result files, fetched ahead
        self._channel_rate = Rate(config.channel_edits, config.channel_period)
        # progress through the interactions' own buckets is outside the global limit: a quarter of it
        # still bounds all progress together, so a burst leaves the bot time to see and send finals
        self.messages: JobMessages[Card] = JobMessages(
            self, service, board, Rate(config.global_per_second, 1.0), owns=owns,
            progress_rate=Rate(max(1, config.global_per_second // 4), 1.0))
        self.delivery = self.messages.delivery

    def remember_upload_limit(self, channel_id: int, limit: int) -> None:
        self._upload_limits[channel_id] = limit

    def upload_limit(self, channel_id: int) -> int:
        if channel_id in self._upload_limits:
            return self._upload_limits[channel_id]
        channel = self._client.get_channel(channel_id)
        guild = getattr(channel, "guild", None)
        return guild.filesize_limit if isinstance(guild, discord.Guild) else DEFAULT_UPLOAD_LIMIT

    def card(self, job: Job) -> Card:
        return self.render(job, self.messages.position(job))

    def answered(self, placement: Placement, card: Card, interaction: discord.Interaction) -> None:
        """The interaction's response is the job's message, just sent showing `card`: later edits go
        through the interaction's webhook while it lives."""
        self._archived_threads.discard(int(placement.chat_id))  # a send reopens an archived thread
        if self._config.interaction_edit_window > 0 and placement.message_id:
            self._interactions[placement.message_id] = (
                interaction, self._clock() + self._config.interaction_edit_window)
            if len(self._interactions) > _INTERACTIONS_KEPT:
                del self._interactions[next(iter(self._interactions))]
        self.messages.shown(placement, card)

    async def rendered(self, job: Job, card: Card, channel_id: int) -> Rendered:
        """The card as message content: the embed, the buttons and (when final) the uploaded result."""
        if not card.with_result:
            return Rendered(render.embed(card), view(card.rows), [])
        named, note = await self._result_files(job, self.upload_limit(channel_id))
        images = [name for name in named if not name.startswith(("video", "input"))]
        thumbnail = next((f"attachment://{n}" for n in named if n.startswith("input")), None)
        embed = render.embed(card, f"attachment://{images[0]}" if images else None, thumbnail)
        if note:
            embed.description = shorten(f"{embed.description}\n{note}", render.DESCRIPTION_LIMIT)
        files = [discord.File(io.BytesIO(data), filename=name) for name, data in named.items()]
        return Rendered(embed, view(card.rows), files, note)

    async def _result_files(self, job: Job, cap: int) -> Files:
        task = self._files.pop(job.id, None)
        if task is not None:
            return await task
        return await self._fetch_files(job, cap)

    async def _fetch_files(self, job: Job, cap: int) -> Files:
        """The files a finished job's message carries, each fitted to the channel's cap."""
        inputs = bool(job.result and job.result.prompts and job.request.images)
        got = await self._service.media.files(job, tiles=False)
        count = (1 if got.grid is not None or got.images else 0) + inputs + len(got.videos)
        per_file = min(cap, REQUEST_LIMIT // max(1, count))
        chosen = await self._service.media.result(job, per_file, files=got)
        named: dict[str, bytes] = {}
        if chosen.main is not None:
            stem = "grid" if got.grid is not None else "image"
            named[f"{stem}.{media.extension(chosen.main)}"] = chosen.main
        if inputs:
            data = await media.fit((await self._service.inputs(job))[0].data, per_file)
            named[f"input.{media.extension(data)}"] = data
        note = ""
        for i, video in enumerate(chosen.videos, start=1):
            if len(video) <= per_file:
                named[f"video{i}.{media.extension(video, 'mp4')}"] = video
            else:
                size = f"{len(video) / 1e6:.1f}"
                note = t("Video {i} is {size} MB, over this channel's upload limit.", i=i, size=size)
        return named, note

    # -- the Surface ------------------------------------------------------------------------------

    def render(self, job: Job, position: int) -> Card:
        return render.card(job, position)

    def first_view(self, job: Job, position: int, *, uncertain: bool) -> Card:
        return render.card(job, position)  # a resend with the job's nonce returns the first message

    def lane(self, placement: Placement) -> str:
        live = self._interactions.get(placement.message_id or "")
        if live is not None and live[1] > self._clock():
            return f"itx/{placement.message_id}"
        return placement.chat_id

    def rates(self, lane: str) -> Lane:
        # an interaction's webhook: its own bucket (Discord does not document its size; the headers
        # tell discord.py, which sleeps on them), outside the global limit
        return Lane((self._channel_rate,), metered=not lane.startswith("itx/"))

    def rate_limited(self, exc: BaseException) -> float | None:
        return rate_limited(exc)

    def prefetch(self, job: Job) -> None:
        placement = job.placement
        if placement is None or job.id in self._files or not job.result:
            return
        cap = self.upload_limit(int(placement.chat_id))
        task = self.messages.spawn(self._fetch_files(job, cap), f"files:{job.id}")
        if task is not None:
            self._files[job.id] = task

    async def post(self, job: Job, card: Card) -> Placement:
        """The job's message in its channel, replying to `reply_to` (a pressed button's message). The
        job id is the nonce, enforced: a second send (after a restart) returns the first message."""
        where = job.placement
        assert where is not None
        channel_id = int(where.chat_id)
        content = await self.rendered(job, card, channel_id)
        extra: dict[str, Any] = {"view": content.view} if content.view else {}
        if where.reply_to:
            extra["reference"] = discord.MessageReference(
                message_id=int(where.reply_to), channel_id=channel_id, fail_if_not_exists=False)
        try:
            message = await self._client.get_partial_messageable(channel_id).send(
                embed=content.embed, files=content.files, nonce=job.id,
                allowed_mentions=discord.AllowedMentions.none(), **extra)
        except (discord.NotFound, discord.Forbidden) as exc:  # the channel is gone, or closed to us
            raise Gone(str(exc.text or exc.status)) from exc
        self._archived_threads.discard(channel_id)
        return where.model_copy(update={"message_id": str(message.id)})

    async def edit(self, job: Job | None, card: Card, placement: Placement) -> Placement | None:
        assert job is not None, "every Discord message edited here shows a job"
        channel_id, message_id = int(placement.chat_id), int(placement.message_id or 0)
        if channel_id in self._archived_threads and not job.terminal:
            return None  # it would be refused as well
        content = await self.rendered(job, card, channel_id)
        try:
            await self._edit(job, card, content, placement)
        except discord.HTTPException as exc:
            if exc.code == THREAD_ARCHIVED:  # retrying the edit can't help; a new message can
                self._archived_threads.add(channel_id)
                return await self._archived(job, card, channel_id, message_id)
            if isinstance(exc, discord.NotFound | discord.Forbidden):  # deleted, or closed to us for good
                raise Gone(str(exc.text or exc.status)) from exc
            raise
        self._archived_threads.discard(channel_id)  # reopened meanwhile (by a person, say)
        return None

    async def _edit(self, job: Job, card: Card, content: Rendered, placement: Placement) -> None:
        """Through the interaction's webhook while it lives, else (or when Discord says its token
        expired) through the bot token."""
        extra: dict[str, Any] = {"attachments": content.files} if card.with_result else {}
        live = self._interactions.get(placement.message_id or "")
        if live is not None and live[1] > self._clock():
            try:
                await live[0].edit_original_response(embed=content.embed, view=content.view, **extra)
                return
            except discord.HTTPException as exc:
                if exc.code not in (INVALID_WEBHOOK_TOKEN, UNKNOWN_WEBHOOK):
                    raise
                content = await self.rendered(job, card, int(placement.chat_id))  # its files were closed
                extra = {"attachments": content.files} if card.with_result else {}
        self._interactions.pop(placement.message_id or "", None)
        message = self._client.get_partial_messageable(int(placement.chat_id)).get_partial_message(
            int(placement.message_id or 0))
        await message.edit(embed=content.embed, view=content.view, **extra)

    async def _archived(self, job: Job, card: Card, channel_id: int, message_id: int
                        ) -> Placement | None:
        """The job's message sits in an archived thread. Progress is dropped (nobody is reading there);
        the final state is posted as a reply, which reopens an unlocked thread, and becomes the job's
        message so its buttons and later edits work. A locked thread refuses that too: give up for good."""
        if not job.terminal:
            return None
        content = await self.rendered(job, card, channel_id)  # the failed edit closed its files
        reference = discord.MessageReference(message_id=message_id, channel_id=channel_id,
                                             fail_if_not_exists=False)
        extra: dict[str, Any] = {"view": content.view} if content.view else {}
        try:
            message = await self._client.get_partial_messageable(channel_id).send(
                embed=content.embed, files=content.files, reference=reference,
                allowed_mentions=discord.AllowedMentions.none(), **extra)
        except discord.HTTPException as exc:
            if exc.code != THREAD_ARCHIVED and not isinstance(exc, discord.Forbidden):
                raise  # e.g. a 5xx: Delivery tries again a few times
            # locked (50083, or 403 for a bot that may not manage threads): a restart is refused alike
            log.warning("job %s ended in locked thread %s, which refused its result (%s %s)",
                        job.id, channel_id, exc.status, exc.code)
            raise Gone("locked thread") from exc
        self._archived_threads.discard(channel_id)
        return Placement(platform=PLATFORM, chat_id=str(channel_id), message_id=str(message.id))

    async def status(self, chat_id: str, message_id: str | None, text: str) -> str:
        channel = self._client.get_partial_messageable(int(chat_id))
        if message_id is None:
            return str((await channel.send(text, allowed_mentions=discord.AllowedMentions.none())).id)
        await channel.get_partial_message(int(message_id)).edit(content=text)
        return message_id
