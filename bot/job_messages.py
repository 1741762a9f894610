"""JobMessages: the job-message layer every chat frontend shares; a frontend supplies only a `Surface`.

One job is shown in one chat message, edited in place as the job moves. This layer decides what goes
out and when; the surface says how it looks and how it is sent on its platform:

- *Which changes*: jobs placed on this platform, in chats this worker shows (`owns`), never moving
  backwards (a late report of an older state is dropped).
- *Queue positions* come from the `QueueBoard` (in memory, fed by the change stream); when a job
  leaves a queue, the messages of the jobs behind it are shown again. No store query while rendering.
- *Sending*: through `Delivery` (newest state per message, paced per chat and globally, finals first,
  answers to people before progress). A 429 in any platform form becomes `RetryAfter` here, once.
- *First messages* (`show`) are queued like edits and rendered when their turn comes: a job that
  finished meanwhile goes out as its final result, one message instead of a placeholder and an edit.
- *Congested chats* (`max_live`: more unfinished jobs than that shown in one chat, e.g. a burst in a
  Telegram group that allows 20 messages a minute): further jobs get no placeholder and no progress;
  one status message per chat says how many are in the works, and each result is posted when ready.
- *Bookkeeping*: where each job is shown (`place`), finals recorded as delivered, and after a restart
  or a takeover (`adopt`) the first messages never sent, finals never delivered and queue positions
  that moved are shown again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from bot import faults, i18n, presentation
from bot.delivery import Delivery, Lane, Rate, RetryAfter
from bot.domain import Job, JobState, Placement
from bot.queue_board import QueueBoard

log = logging.getLogger(__name__)

R = TypeVar("R")
_RANK = {state: rank for rank, state in enumerate(JobState)}
_MEMORY = 50_000  # messages whose last state is remembered


class View(Hashable, Protocol):
    """What a surface renders for one message; hashable, so it is its own fingerprint."""

    @property
    def final(self) -> bool: ...


V = TypeVar("V", bound=View)


class Gone(Exception):
    """The message or the chat is gone for the bot (deleted, bot removed): stop trying, the job goes on."""


class Surface(Protocol[V]):
    """How one platform renders, sends and edits a job's message."""

    platform: str

    def render(self, job: Job, position: int) -> V:
        """The message a job is shown in at this moment (`position`: its place in the queue)."""

    def first_view(self, job: Job, position: int, *, uncertain: bool) -> V:
        """The job's first message. `uncertain`: an earlier run may have sent it already (a crash
        between sending and storing its id), so it must not be a second copy of a final result."""

    def lane(self, placement: Placement) -> str:
        """The rate-limit lane an edit of this message goes through (usually its chat)."""

    def rates(self, lane: str) -> Rate | Sequence[Rate] | Lane:
        """The windows of a lane (a `Lane` says when it is outside the bot's global limit)."""

    def rate_limited(self, exc: BaseException) -> float | None:
        """Seconds to wait when `exc` is the platform's 429, else None."""

    def prefetch(self, job: Job) -> None:
        """A final result is about to be sent: start fetching and fitting its files."""

    async def post(self, job: Job, view: V) -> Placement:
        """Send the job's first message (raise `Gone` when the chat is closed to the bot); return the
        placement with its message id."""

    async def edit(self, job: Job | None, view: V, placement: Placement) -> Placement | None:
        """Show `view` in the job's message (`job` None: a message that shows no job); raise `Gone`
        when it can't be edited any more. Returns a new placement when the job now lives in another
        message (e.g. posted anew into an archived thread), else None."""

    async def status(self, chat_id: str, message_id: str | None, text: str) -> str:
        """Send (`message_id` None) or edit a congested chat's status message; return its id."""


class Bookkeeping(Protocol):
    """What the layer records in the store (JobService provides it)."""

    async def place(self, job: Job, placement: Placement) -> Job: ...
    async def unplace(self, job: Job) -> None: ...
    async def delivered(self, job: Job) -> None: ...
    async def undelivered(self, platform: str) -> list[Job]: ...
    async def unreplied(self, platform: str) -> list[Job]: ...
    async def queued_jobs(self) -> list[Job]: ...


@dataclass(frozen=True)
class Outgoing(Generic[V]):
    """One send: a job's view (`first`: its first message, not sent yet) or a chat's status text."""

    job: Job | None
    view: V | str
    first: bool = False
    uncertain: bool = False  # a first message an earlier run may have sent (see Surface.first_view)
    placement: Placement | None = None  # the message of a view that shows no job (e.g. settings)


@dataclass
class _Chat:
    """A chat's jobs, for congestion: those shown unfinished, and those held back until they finish."""

    live: dict[str, None] = field(default_factory=dict)
    held: dict[str, Job] = field(default_factory=dict)
    status_id: str | None = None
    locale: str = i18n.DEFAULT  # its status message's language: that of the newest job held back


class JobMessages(Generic[V]):
    def __init__(self, surface: Surface[V], books: Bookkeeping, board: QueueBoard, global_rate: Rate, *,
                 owns: Callable[[str], Awaitable[bool]] | None = None, max_live: int | None = None,
                 progress_rate: Rate | None = None) -> None:
        self._surface = surface
        self._books = books
        self._board = board
        self._owns = owns  # whether this worker shows a chat (bot/workers.py); None: every chat
        self._max_live = max_live
        self.delivery: Delivery[Outgoing[V]] = Delivery(self._send, surface.rates, global_rate,
                                                        progress_rate=progress_rate)
        self._latest: dict[str, tuple[int, int]] = {}  # job id -> (state rank, progress) last pushed
        self._waiting: dict[str, dict[str, Job]] = {}  # provider -> its queued jobs shown here, by id
        self._posted: dict[str, Placement] = {}  # job id -> where its first message went (this run)
        self._showing: set[str] = set()  # ids of jobs whose first message is queued or being sent
        self._early: dict[str, Job] = {}  # changes of jobs not yet asked to be shown, by id
        self._chats: dict[str, _Chat] = {}
        self.gone = 0  # messages given up on because they were deleted or closed to the bot
        self._group: asyncio.TaskGroup | None = None  # set while run() runs
        board.on_moved(self._queue_moved)

    @property
    def platform(self) -> str:
        return self._surface.platform

    async def run(self) -> None:
        """Deliver until cancelled; the tasks `spawn`ed meanwhile (a result's files fetched ahead) are
        owned by the same TaskGroup."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            try:
                await self.delivery.run()
            finally:
                self._group = None

    def spawn(self, work: Coroutine[Any, Any, R], name: str) -> asyncio.Task[R] | None:
        """Run `work` in the background while the layer runs (None when it does not: do it inline)."""
        if self._group is None:
            work.close()
            return None
        return self._group.create_task(work, name=name)

    # -- answers to people ------------------------------------------------------------------------

    async def paced(self, chat_id: str, call: Callable[[], Awaitable[R]]) -> R:
        """`call()` (one send that needs its answer now) in the chat's next free slot, before queued
        progress; the platform's 429 is waited out and the call made again."""

        async def converted() -> R:
            with self.waiting_out_rate_limits():
                return await call()

        return await self.delivery.paced(chat_id, converted)

    @contextlib.contextmanager
    def waiting_out_rate_limits(self) -> Iterator[None]:
        """The platform's 429, whatever its form, as `RetryAfter` (Delivery waits, then sends again)."""
        try:
            yield
        except RetryAfter:
            raise
        except Exception as exc:
            seconds = self._surface.rate_limited(exc)
            if seconds is None:
                raise
            raise RetryAfter(seconds) from exc

    # -- job changes ------------------------------------------------------------------------------

    async def job_changed(self, job: Job) -> None:
        """The listener: queue the job's newest view for its message (never blocks on the platform)."""
        placement = job.placement
        if placement is None or placement.platform != self.platform:
            return
        if self._owns is not None and not await self._owns(placement.chat_id):
            return  # another worker shows this chat
        self._update(job)

    def _update(self, job: Job) -> None:
        """Synchronous from the owns check on: the check and the push see the same newest state."""
        placement = job.placement
        assert placement is not None
        if not self._newest(job):
            return  # an older report that arrived late (e.g. around place()): never move backwards
        self._track(job)
        chat = self._chats.get(placement.chat_id)
        if placement.message_id is None and job.id not in self._posted:
            if chat is not None and job.id in chat.held:
                self._held_changed(placement.chat_id, chat, job)
            elif job.id in self._showing:
                self._push_first(job, uncertain=False)
            else:  # changed before its frontend asked to show it (a job that ends at once)
                self._early[job.id] = job
                if len(self._early) > _MEMORY:
                    del self._early[next(iter(self._early))]
            return
        where = self._posted.get(job.id, placement) if placement.message_id is None else placement
        if chat is not None and not job.terminal and chat.held:
            return  # a congested chat: its budget goes to results, not to progress
        with _language(job):
            view = self._surface.render(job, self._board.position(job))
        out = Outgoing(job, view)
        self.delivery.push(self._surface.lane(where), _key(where), out, view, final=view.final)
        if view.final:
            self._surface.prefetch(job)
            self._finished(placement.chat_id, job)

    def _newest(self, job: Job) -> bool:
        rank = (_RANK[job.state], job.progress)
        if rank < self._latest.get(job.id, (-1, -1)):
            return False
        self._latest.pop(job.id, None)
        self._latest[job.id] = rank
        if len(self._latest) > _MEMORY:
            del self._latest[next(iter(self._latest))]
        return True

    def _track(self, job: Job) -> None:
        """Remember the queued jobs shown here, per provider, so their position can be refreshed."""
        for waiting in self._waiting.values():
            waiting.pop(job.id, None)  # it left the queue, or moved to another provider's
        if job.state is JobState.QUEUED:
            self._waiting.setdefault(job.provider, {})[job.id] = job

    def _queue_moved(self, provider: str) -> None:
        """A job (from any frontend) left `provider`'s queue: show the jobs behind it again. Delivery
        sends only those whose text changed, coalesced."""
        for job in list(self._waiting.get(provider, {}).values()):
            self._update(job)

    def position(self, job: Job) -> int:
        return self._board.position(job)

    def show_view(self, placement: Placement, view: V) -> None:
        """Edit a message that shows no job (e.g. /settings) through the same paced, coalescing path."""
        out: Outgoing[V] = Outgoing(None, view, placement=placement)
        self.delivery.push(placement.chat_id, _key(placement), out, view)

    def shown(self, placement: Placement, view: V) -> None:
        """The frontend just sent this message showing `view` (e.g. an interaction's response)."""
        self.delivery.shown(_key(placement), view)

    # -- first messages ---------------------------------------------------------------------------

    async def show(self, job: Job, *, uncertain: bool = False) -> None:
        """Queue the job's first message; it is rendered (and placed in the store) when its turn comes.
        Once: a job whose first message is queued or being sent is not queued again."""
        placement = job.placement
        if placement is None or placement.platform != self.platform or placement.message_id is not None:
            return
        if job.id in self._showing or job.id in self._posted:
            return
        self._showing.add(job.id)
        early = self._early.pop(job.id, None)
        if early is not None and (_RANK[early.state], early.progress) > (_RANK[job.state], job.progress):
            job = early
        self._newest(job)
        chat = self._chats.setdefault(placement.chat_id, _Chat())
        congested = self._max_live is not None and (len(chat.live) >= self._max_live or bool(chat.held))
        if congested and not job.terminal:
            chat.held[job.id] = job
            chat.locale = job.locale
            self._push_status(placement.chat_id, chat)
            return
        if not job.terminal:
            chat.live[job.id] = None
        self._push_first(job, uncertain=uncertain)

    def _push_first(self, job: Job, *, uncertain: bool) -> None:
        placement = job.placement
        assert placement is not None
        with _language(job):
            view = self._surface.first_view(job, self._board.position(job), uncertain=uncertain)
        if view.final:
            self._surface.prefetch(job)
        self.delivery.push(placement.chat_id, f"new/{job.id}", Outgoing(job, view, True, uncertain), view,
                           final=view.final, urgent=True)

    def _held_changed(self, chat_id: str, chat: _Chat, job: Job) -> None:
        chat.held[job.id] = job
        if job.terminal:  # its result, as its one message
            del chat.held[job.id]
            self._push_first(job, uncertain=False)
            self._push_status(chat_id, chat)

    def _finished(self, chat_id: str, job: Job) -> None:
        """A shown job ended. Held jobs stay held until they end too (each then costs one message, its
        result); the chat takes placeholders again once none is held."""
        chat = self._chats.get(chat_id)
        if chat is not None:
            chat.live.pop(job.id, None)

    def _push_status(self, chat_id: str, chat: _Chat) -> None:
        if chat.held or chat.status_id is not None:
            with i18n.use(chat.locale):
                text = presentation.congestion_status(len(chat.held))
            self.delivery.push(chat_id, f"status/{chat_id}", Outgoing(None, text), text)

    # -- sending ----------------------------------------------------------------------------------

    async def _send(self, key: str, out: Outgoing[V]) -> None:
        """The Delivery sender: one post, edit or status message."""
        job, view = out.job, out.view
        if job is None and out.placement is not None:
            assert not isinstance(view, str)
            with contextlib.suppress(Gone), self.waiting_out_rate_limits():
                await self._surface.edit(None, view, out.placement)
            return
        if job is None:
            assert isinstance(view, str)
            chat_id = key.removeprefix("status/")
            chat = self._chat(chat_id)
            with self.waiting_out_rate_limits():
                chat.status_id = await self._surface.status(chat_id, chat.status_id, view)
            return
        assert not isinstance(view, str)
        if out.first and job.id not in self._posted:
            await self._post(job, view, uncertain=out.uncertain)
            return
        placement = self._posted.get(job.id) or job.placement
        assert placement is not None and placement.message_id is not None
        moved = None
        try:
            with self.waiting_out_rate_limits(), _language(job):
                moved = await self._surface.edit(job, view, placement)
        except Gone as exc:
            self._gave_up(key, exc)
        if moved is not None:
            self._posted[job.id] = moved
            self.delivery.shown(_key(moved), view)
            await self._books.place(job, moved)
        if view.final:  # shown (or unshowable): a restart need not send it again
            await faults.point("final_edited")
            await self._books.delivered(job)

    async def _post(self, job: Job, view: V, *, uncertain: bool) -> None:
        """The job's first message, then where it is, in the store. `uncertain`: the platform may have
        returned an earlier run's message as it was (a nonce), so it is not taken as showing `view`."""
        try:
            with self.waiting_out_rate_limits(), _language(job):
                placement = await self._surface.post(job, view)
        except RetryAfter:
            raise  # Delivery keeps it, first in line, and tries again
        except Gone as exc:
            log.warning("job %s: its message can't be sent to its chat: %s", job.id, exc)
            self._showing.discard(job.id)
            await self._books.unplace(job)
            return
        except Exception:  # the job carries on; its next start (or takeover) tries again
            self._showing.discard(job.id)
            raise
        await faults.point("reply_sent")
        self._posted[job.id] = placement
        if len(self._posted) > _MEMORY:
            del self._posted[next(iter(self._posted))]
        self._showing.discard(job.id)
        self.delivery.withdraw(f"new/{job.id}")  # changes during the send: place() shows the newest
        if not uncertain:
            self.delivery.shown(_key(placement), view)
        await self._books.place(job, placement)  # pushes the stored state: an edit if it moved on
        if view.final and not uncertain:
            await self._books.delivered(job)

    def _gave_up(self, key: str, exc: Exception) -> None:
        self.gone += 1
        log.info("message %s can't be edited any more (%s); its job carries on", key, exc)

    def _chat(self, chat_id: str) -> _Chat:
        return self._chats.setdefault(chat_id, _Chat())

    # -- after a restart or a takeover ------------------------------------------------------------

    async def adopt(self, chats: Iterable[str], *, unreplied: bool = True) -> int:
        """Show what is pending in `chats` (this worker's from now on): finals never delivered, queued
        jobs whose position may have moved, and (`unreplied`) first messages never sent. Returns how
        many jobs."""
        wanted = set(chats)
        candidates = [*await self._books.undelivered(self.platform), *await self._books.queued_jobs()]
        mine = [job for job in candidates if job.placement is not None and job.placement.message_id
                and job.placement.platform == self.platform and job.placement.chat_id in wanted]  # fmt: skip
        for job in mine:
            self._update(job)
        unsent = [job for job in await self._books.unreplied(self.platform) if unreplied
                  and job.placement is not None and job.placement.chat_id in wanted]  # fmt: skip
        for job in unsent:
            await self.show(job, uncertain=True)
        return len(mine) + len(unsent)


def _language(job: Job) -> contextlib.AbstractContextManager[str]:
    """The one place a job's message gets its language: every render and send of it (`Surface.render`,
    `first_view`, `post`, `edit`) runs inside this, so it is written in the language it was asked in."""
    return i18n.use(job.locale)


def _key(placement: Placement) -> str:
    return f"{placement.chat_id}/{placement.message_id}"
