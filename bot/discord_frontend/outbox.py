"""Outbox: job changes -> coalesced, paced edits of the job's channel message, through the bot token.

Every edit after the first goes through `channel.get_partial_message(id).edit(...)` (bot token), never
the interaction webhook, so a job that outlives the 15-minute interaction token still gets its final
grid. `Delivery` keeps only the newest render per message and paces per channel; discord.py itself
sleeps on 429s and bucket headers, and whatever it gives up on comes back here as `RetryAfter`.
A message in a thread archived meanwhile can't be edited (50083): its final state becomes a new reply.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Awaitable, Callable, Container, Iterator
from dataclasses import dataclass
from typing import Any

import discord

from bot import media
from bot.config import DiscordConfig
from bot.delivery import Delivery, Rate, RetryAfter
from bot.discord_frontend import render
from bot.discord_frontend.views import view
from bot.domain import Job, JobState, Placement
from bot.presentation import shorten
from bot.service import JobService

log = logging.getLogger(__name__)

PLATFORM = "discord"
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # bytes per file when neither guild nor interaction says more
REQUEST_LIMIT = 25 * 1024 * 1024  # bytes per request, all files together
THREAD_ARCHIVED = 50083  # JSON error code: edits in an archived thread (and sends to a locked one)
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
               "video/mp4": "mp4", "video/webm": "webm"}  # fmt: skip


@dataclass(frozen=True)
class Outgoing:
    job: Job
    card: render.Card


@dataclass(frozen=True)
class Rendered:
    """An edit's keyword arguments, ready for `PartialMessage.edit` / `send`."""

    embed: discord.Embed
    view: discord.ui.View | None
    files: list[discord.File]
    note: str = ""  # e.g. a video too large to upload


def message_key(placement: Placement) -> str:
    return f"{placement.chat_id}/{placement.message_id}"


def retry_after(exc: discord.HTTPException) -> float:
    """Seconds a 429 asked to wait (header first, then the JSON body), 1 s when it said nothing."""
    header = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return max(0.05, float(header)) if header else 1.0
    except ValueError:
        return 1.0


@contextlib.contextmanager
def waiting_out_rate_limits() -> Iterator[None]:
    """A rate limit discord.py gave up on becomes `RetryAfter`: Delivery waits, then sends again."""
    try:
        yield
    except discord.RateLimited as exc:  # longer than max_ratelimit_timeout
        raise RetryAfter(exc.retry_after) from exc
    except discord.HTTPException as exc:
        if exc.status == 429:  # discord.py retried and gave up
            raise RetryAfter(retry_after(exc)) from exc
        raise


class Outbox:
    """The Discord listener: renders every change of a Discord-placed job and delivers it."""

    def __init__(self, client: discord.Client, service: JobService, config: DiscordConfig,
                 owns: Callable[[str], Awaitable[bool]] | None = None) -> None:
        self._client = client
        self._owns = owns  # whether this worker shows a channel (bot/workers.py); None: every channel
        self._service = service
        self._upload_limits: dict[int, int] = {}  # channel id -> upload cap its interactions reported
        # threads that refused an edit as archived: their progress edits are skipped, not sent to fail
        # (Discord bans a bot after too many invalid requests); a message sent there reopens them
        self._archived_threads: set[int] = set()
        channel_rate = Rate(config.channel_edits, config.channel_period)
        self.delivery: Delivery[Outgoing] = Delivery(
            self._send, lambda _: channel_rate, Rate(config.global_per_second, 1.0))

    async def run(self) -> None:
        await self.delivery.run()

    def remember_upload_limit(self, channel_id: int, limit: int) -> None:
        self._upload_limits[channel_id] = limit

    def upload_limit(self, channel_id: int) -> int:
        if channel_id in self._upload_limits:
            return self._upload_limits[channel_id]
        channel = self._client.get_channel(channel_id)
        guild = getattr(channel, "guild", None)
        return guild.filesize_limit if isinstance(guild, discord.Guild) else DEFAULT_UPLOAD_LIMIT

    async def card(self, job: Job) -> render.Card:
        position = await self._service.queue_position(job) if job.state is JobState.QUEUED else 0
        return render.card(job, position)

    def shown(self, placement: Placement, card: render.Card) -> None:
        """The message was just sent showing `card`: don't edit it to the same thing."""
        self._archived_threads.discard(int(placement.chat_id))  # a send reopens an archived thread
        self.delivery.shown(message_key(placement), card)

    async def job_changed(self, job: Job) -> None:
        placement = job.placement
        if placement is None or placement.platform != PLATFORM or not placement.message_id:
            return
        if self._owns is not None and not await self._owns(placement.chat_id):
            return  # another worker shows this channel
        card = await self.card(job)
        self.delivery.push(placement.chat_id, message_key(placement), Outgoing(job, card), card,
                           final=job.terminal)

    async def rendered(self, job: Job, card: render.Card, channel_id: int) -> Rendered:
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

    async def _result_files(self, job: Job, cap: int) -> tuple[dict[str, bytes], str]:
        """The files a finished job's message carries, each re-encoded to fit the channel's cap."""
        got = await self._service.media.files(job, tiles=False)
        images: dict[str, bytes] = {}
        if got.grid is not None:
            images["grid"] = got.grid
        elif got.images:
            images["image"] = got.images[0]
        if job.result and job.result.prompts and job.request.images:
            images["input"] = (await self._service.inputs(job))[0].data
        per_file = min(cap, REQUEST_LIMIT // max(1, len(images) + len(got.videos)))
        named: dict[str, bytes] = {}
        for stem, data in images.items():
            fitted = await media.fit(data, per_file)
            named[f"{stem}.{_EXTENSIONS.get(media.sniff(fitted) or '', 'png')}"] = fitted
        note = ""
        for i, video in enumerate(got.videos, start=1):
            if len(video) <= per_file:
                named[f"video{i}.{_EXTENSIONS.get(media.sniff(video) or '', 'mp4')}"] = video
            else:
                note = f"Video {i} is {len(video) / 1e6:.1f} MB, over this channel's upload limit."
        return named, note

    async def _send(self, key: str, out: Outgoing) -> None:
        channel_id, message_id = (int(part) for part in key.split("/"))
        if channel_id in self._archived_threads and not out.job.terminal:
            return  # it would be refused as well
        message = self._client.get_partial_messageable(channel_id).get_partial_message(message_id)
        content = await self.rendered(out.job, out.card, channel_id)
        try:
            with waiting_out_rate_limits():
                if out.card.with_result:
                    await message.edit(embed=content.embed, view=content.view, attachments=content.files)
                else:
                    await message.edit(embed=content.embed, view=content.view)
        except discord.HTTPException as exc:
            if exc.code == THREAD_ARCHIVED:  # retrying the edit can't help; a new message can
                self._archived_threads.add(channel_id)
                await self._archived(out, channel_id, message_id)
                return
            if isinstance(exc, discord.NotFound | discord.Forbidden):  # deleted, or closed to us for good
                await self._service.delivered(out.job)  # a restart should not try it again
            raise
        self._archived_threads.discard(channel_id)  # reopened meanwhile (by a person, say)
        await self._service.delivered(out.job)  # a final state: recorded, so a restart need not resend it

    async def _archived(self, out: Outgoing, channel_id: int, message_id: int) -> None:
        """The job's message sits in an archived thread. Progress is dropped (nobody is reading there);
        the final state is posted as a reply, which reopens an unlocked thread, and becomes the job's
        message so its buttons and later edits work. A locked thread refuses that too: give up for good."""
        if not out.job.terminal:
            return
        content = await self.rendered(out.job, out.card, channel_id)  # the failed edit closed its files
        reference = discord.MessageReference(message_id=message_id, channel_id=channel_id,
                                             fail_if_not_exists=False)
        extra: dict[str, Any] = {"view": content.view} if content.view else {}
        try:
            with waiting_out_rate_limits():  # then Delivery tries the edit (and this) again
                message = await self._client.get_partial_messageable(channel_id).send(
                    embed=content.embed, files=content.files, reference=reference,
                    allowed_mentions=discord.AllowedMentions.none(), **extra)
        except discord.HTTPException as exc:
            if exc.code != THREAD_ARCHIVED and not isinstance(exc, discord.Forbidden):
                raise  # e.g. a 5xx: Delivery tries again a few times
            # locked (50083, or 403 for a bot that may not manage threads): a restart is refused alike
            log.warning("job %s ended in locked thread %s, which refused its result (%s %s)",
                        out.job.id, channel_id, exc.status, exc.code)
            await self._service.delivered(out.job)
            return
        placement = Placement(platform=PLATFORM, chat_id=str(channel_id), message_id=str(message.id))
        self.shown(placement, out.card)  # place() pushes the job again: the new message already shows it
        await self._service.place(out.job, placement)
        await self._service.delivered(out.job)

    async def redeliver(self, channels: Container[str]) -> int:
        """Push every finished job in `channels` whose final edit was never recorded: it was still
        pending when the bot stopped, or the job ended while no Discord frontend listened. Returns how
        many."""
        jobs = [job for job in await self._service.undelivered(PLATFORM)
                if job.placement is not None and job.placement.chat_id in channels]  # fmt: skip
        for job in jobs:
            await self.job_changed(job)
        return len(jobs)

