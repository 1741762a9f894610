"""Discord interactions through the inbox, so a command or a press is never lost between Discord and us.

An interaction that creates work (/imagine, /describe, /blend, a job button, a Remix form) is committed
to the store's inbox, raw as the gateway delivered it, before it is acknowledged, and marked done once
handled (a handler that fails is done too; only a stop or a crash leaves it pending). After a restart,
what is still pending and still answerable (an interaction token lives 15 minutes) is fed to
discord.py's own INTERACTION_CREATE parser again, so the command tree and the dynamic buttons handle it
as if it had just arrived. Handling is idempotent: a command's job records its interaction
(`discord:<id>`), a press's child is unique per parent (a Remix form's job records its submit), and
channel messages carry the job id as an enforced nonce.
The payload holds the interaction token, a secret: it is stored, never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import discord

from bot import faults
from bot.discord_frontend.views import REMIX_PATTERN
from bot.domain import ActionRef
from bot.store import InboxEntry, JobStore

log = logging.getLogger(__name__)

SOURCE = "discord"
JOB_COMMANDS = frozenset({"imagine", "describe", "blend"})
REPLAY_WINDOW = 14 * 60.0  # seconds: a token lives 15 minutes, and answering takes some of it
REPLAY_WAIT = 60.0  # seconds the start waits for re-processed interactions before other first replies
KEEP_DONE = 86400.0  # handled interactions are kept a day
_UNCLAIMED = 60.0  # seconds a received payload waits for its handler (one refused early never comes)
_ACTION_ID = re.compile(ActionRef.PATTERN)
_REMIX_ID = re.compile(REMIX_PATTERN)


def origin(interaction: discord.Interaction) -> str:
    """The key a job created by `interaction` is stored under: the same interaction never makes two."""
    return f"{SOURCE}:{interaction.id}"


def creates_work(data: Mapping[str, Any]) -> bool:
    """A job-starting slash command, a job button or a submitted Remix form: what the inbox keeps."""
    inner = data.get("data") or {}
    if data.get("type") == 2:  # an application command (1: a slash command, not a context menu)
        return inner.get("type", 1) == 1 and inner.get("name") in JOB_COMMANDS
    if data.get("type") == 3:  # a message component
        return _ACTION_ID.fullmatch(str(inner.get("custom_id", ""))) is not None
    if data.get("type") == 5:  # a modal submit
        return _REMIX_ID.fullmatch(str(inner.get("custom_id", ""))) is not None
    return False


class InteractionInbox:
    """Installs itself in front of `client`'s INTERACTION_CREATE parser (the gateway calls it through
    the same dict); handlers wrap their work in `processing(interaction)`."""

    def __init__(self, client: discord.Client, store: JobStore,
                 clock: Callable[[], float] = time.time, worker_id: str | None = None) -> None:
        self._store = store
        self._clock = clock
        self._worker_id = worker_id  # interactions are handled again by the worker that took them
        parsers = client._connection.parsers
        self._parse = parsers["INTERACTION_CREATE"]  # discord.py's own
        parsers["INTERACTION_CREATE"] = self._received
        self._received_raw: dict[int, tuple[float, str]] = {}  # id -> (when, payload) until committed
        self._replaying: dict[int, asyncio.Event] = {}  # re-processed interactions not yet handled
        self._active = 0  # interactions being handled now
        self.answering: set[str] = set()  # ... their origins (a job of one is its handler's to answer)
        self._idle = asyncio.Event()
        self._idle.set()

    def _received(self, data: dict[str, Any]) -> None:
        if creates_work(data):
            now = time.monotonic()
            while self._received_raw:  # drop what no handler claimed (refused before it ran, say)
                oldest = next(iter(self._received_raw))
                if self._received_raw[oldest][0] > now - _UNCLAIMED:
                    break
                del self._received_raw[oldest]
            self._received_raw[int(data["id"])] = (now, json.dumps(data))
        self._parse(data)

    @contextlib.asynccontextmanager
    async def processing(self, interaction: discord.Interaction) -> AsyncIterator[None]:
        """Commit `interaction` (a re-processed one already is), run the block, then mark it done,
        whatever the block raised; a block cut short by a stop leaves it for the next start."""
        self._active += 1
        self._idle.clear()
        self.answering.add(origin(interaction))
        try:
            raw = self._received_raw.pop(interaction.id, None)
            if raw is not None:
                key = str(interaction.id)
                await self._store.inbox_add(SOURCE, [InboxEntry(key, interaction.id, raw[1])], self._clock(),
                                            taken_by=self._worker_id)
                await faults.point("inbox_committed")
            stopped = False
            try:
                yield
            except asyncio.CancelledError:
                stopped = True
                raise
            finally:
                if not stopped:
                    await self._done(interaction.id)
        finally:
            self.answering.discard(origin(interaction))
            self._active -= 1
            if not self._active:
                self._idle.set()

    async def idle(self) -> None:
        """Until no interaction is being handled (a stop lets them finish before disconnecting)."""
        await self._idle.wait()

    async def skipped(self, interaction: discord.Interaction) -> None:
        """A job-creating interaction refused before its handler ran (not allowed, a bad option)."""
        self._received_raw.pop(interaction.id, None)
        if interaction.id in self._replaying:
            await self._done(interaction.id)

    async def _done(self, interaction_id: int) -> None:
        await self._store.inbox_done(SOURCE, str(interaction_id), self._clock())
        if (event := self._replaying.pop(interaction_id, None)) is not None:
            event.set()

    async def left(self) -> list[InboxEntry]:
        """What the last run (of this worker) committed but did not handle: read before connecting, so
        that nothing received by this run (and being handled) is taken for it."""
        await self._store.inbox_prune(self._clock() - KEEP_DONE)
        return await self._store.inbox_pending(SOURCE, taken_by=self._worker_id)

    async def replay(self, left: list[InboxEntry]) -> None:
        """Once connected: handle `left` again while its token lives; returns when those are handled
        (or after REPLAY_WAIT). Older ones are dropped: nothing can answer them any more (a job they
        created gets its message from the reply outbox)."""
        now = self._clock()
        expired = 0
        for key, seq, payload, _ in left:
            if now - discord.utils.snowflake_time(seq).timestamp() > REPLAY_WINDOW:
                expired += 1
                await self._store.inbox_done(SOURCE, key, now)
                continue
            self._replaying[seq] = asyncio.Event()
            try:
                self._parse(json.loads(payload))
            except (KeyError, TypeError, ValueError) as exc:  # a payload this version can't read
                log.warning("discord: interaction %s from before the restart can't be handled (%s)", key,
                            type(exc).__name__)  # not the message: it might quote the payload's token
                await self._done(seq)
        if expired:
            log.warning("discord: %d interaction(s) from before the restart are too old to answer", expired)
        if waiting := list(self._replaying.values()):
            log.info("discord: handling %d interaction(s) received before the restart", len(waiting))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REPLAY_WAIT):
                    await asyncio.gather(*(event.wait() for event in waiting))
