"""Delivery: coalesced, paced message edits, shared by every chat frontend.

A frontend renders a job into whatever its platform sends and hands the result to `Delivery.push`.
Per message only the newest render is kept (older ones are dropped unsent), an identical render is
never sent twice, and every send waits for a slot in the message's chat window and the global
window, so bursts stay inside the platform's flood limits. A `RetryAfter` from the sender (a 429)
blocks that chat for the time asked and keeps the render for a later attempt, so the final state of
a job is always delivered.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RetryAfter(Exception):
    """Raised by a sender when the platform asked to wait (HTTP 429) before trying again."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds:.2f}s")
        self.seconds = seconds


@dataclass(frozen=True)
class Rate:
    """At most `count` sends per `period` seconds (a sliding window)."""

    count: int
    period: float


@dataclass(frozen=True)
class Lane:
    """A chat's windows, and whether its sends also count against the global window. Discord's
    interaction webhooks, for one, have a bucket per interaction and are outside the bot's global limit."""

    rates: tuple[Rate, ...]
    metered: bool = True


@dataclass
class DeliveryStats:
    pushed: int = 0  # renders handed to push()
    sent: int = 0  # renders the sender delivered
    skipped: int = 0  # identical to what the message already shows
    coalesced: int = 0  # replaced by a newer render before they were sent
    retried: int = 0  # RetryAfter answers (429s) honoured
    failed: int = 0  # sends that raised anything else


class _Window:
    """A sliding-window limiter over one or more rates (e.g. Telegram groups: 1/s and 20/min):
    `wait_time()` says how long until one more send fits all of them."""

    def __init__(self, *rates: Rate) -> None:
        self.rates = rates
        self._span = max(rate.period for rate in rates)
        self.sent: deque[float] = deque()
        self.answered: deque[float] = deque()  # when answers to people were sent (a subset of `sent`)
        self.blocked_until = 0.0

    def wait_time(self, now: float, *, reserve: bool = False) -> float:
        """`reserve`: for progress, which leaves free half of each window (of 2 or more sends: a
        Telegram group's 20 a minute, not a chat's 1 a second) plus as many slots as answers to people
        took in the last period (people who write keep writing), so an answer or a final that comes
        next finds a slot at once. In a chat where people write faster than that, progress waits: it is
        the least useful thing to send."""
        for times in (self.sent, self.answered):
            while times and times[0] <= now - self._span:
                times.popleft()
        wait = self.blocked_until - now
        for rate in self.rates:
            recent = [at for at in self.sent if at > now - rate.period]
            count = rate.count
            if reserve:
                answers = [at for at in self.answered if at > now - rate.period]
                count -= rate.count // 2 + len(answers)
                if count < 1:  # until the oldest of those answers leaves the period
                    wait = max(wait, answers[0] + rate.period - now)
                    continue
            if len(recent) >= count:
                wait = max(wait, recent[-count] + rate.period - now)
        return max(0.0, wait)

    def record(self, now: float, *, answer: bool = False) -> None:
        self.sent.append(now)
        if answer:
            self.answered.append(now)

    def settle(self, started: float, finished: float) -> None:
        """Count a send from when it finished: the platform counts it when it has processed it."""
        try:
            self.sent.remove(started)
        except ValueError:
            return  # already out of the window
        bisect.insort(self.sent, finished)


@dataclass
class _Pending(Generic[T]):
    payload: T
    fingerprint: Hashable
    final: bool
    urgent: bool = False

    @property
    def rank(self) -> int:
        """Serving order within a chat: finals, then urgent sends (a job's first message, which
        answers a command), then progress; oldest first within each."""
        return 0 if self.final else 1 if self.urgent else 2


def _set_event() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


@dataclass
class _Chat(Generic[T]):
    window: _Window
    metered: bool  # counts against the global window too
    pending: dict[str, _Pending[T]] = field(default_factory=dict)  # message key -> newest render
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    running: bool = False
    answers: int = 0  # `paced` sends (answers to people) waiting for a slot: they go before edits
    no_answers: asyncio.Event = field(default_factory=_set_event)  # set while `answers` is 0


Sender = Callable[[str, T], Awaitable[None]]

#: How many messages' last-shown fingerprints are remembered (dicts keep insertion order: oldest first).
_SHOWN_MEMORY = 50_000


class Delivery(Generic[T]):
    """Sends renders (`T`, a frontend's own type) for messages identified by a string key.

    `send(message_key, payload)` does the platform call; it raises `RetryAfter` on a 429.
    `chat_rate(chat_key)` gives each chat its window (e.g. Telegram groups 20/min, private 1/s).
    Run `run()` under the application's TaskGroup; `flush()` waits until nothing is pending.
    """

    def __init__(
        self,
        send: Sender[T],
        chat_rate: Callable[[str], Rate | Sequence[Rate] | Lane],
        global_rate: Rate,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_attempts: int = 3,
        progress_rate: Rate | None = None,
    ) -> None:
        self._send = send
        self._chat_rate = chat_rate
        self._global = _Window(global_rate)
        # all progress edits together, whatever their lane (finals and answers are not counted): a
        # burst of jobs in lanes of their own would otherwise spend the bot's time on progress bars
        self._progress = _Window(progress_rate) if progress_rate is not None else None
        self._clock = clock
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._chats: dict[str, _Chat[T]] = {}
        self._shown: dict[str, Hashable] = {}  # message key -> fingerprint last delivered
        self._sending: dict[str, Hashable] = {}  # message key -> fingerprint of the send in flight
        self._lane_of: dict[str, str] = {}  # message key -> the chat (lane) it is pending or sent in
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self.stats = DeliveryStats()

    def push(self, chat_key: str, message_key: str, payload: T, fingerprint: Hashable, *,
             final: bool = False, urgent: bool = False) -> None:
        """Queue `payload` as the newest state of `message_key`. Never blocks, never sends itself."""
        self.stats.pushed += 1
        lane = self._lane_of.get(message_key)
        if lane is not None and lane != chat_key and (message_key in self._chats[lane].pending
                                                      or message_key in self._sending):
            chat_key = lane  # a message stays in one lane while anything of it is on its way: in order
        self._lane_of[message_key] = chat_key
        chat = self._chat(chat_key)
        previous = chat.pending.get(message_key)
        if previous is None and fingerprint in (self._shown.get(message_key), self._sending.get(message_key)):
            self.stats.skipped += 1
            return
        if previous is not None:
            self.stats.coalesced += 1
        chat.pending[message_key] = _Pending(payload, fingerprint, final or bool(previous and previous.final),
                                             urgent or bool(previous and previous.urgent))
        self._idle.clear()
        if not chat.running:
            chat.running = True
            self._ready.put_nowait(chat_key)

    def _chat(self, chat_key: str) -> _Chat[T]:
        chat = self._chats.get(chat_key)
        if chat is None:
            rates = self._chat_rate(chat_key)
            if not isinstance(rates, Lane):
                rates = Lane((rates,) if isinstance(rates, Rate) else tuple(rates))
            chat = self._chats[chat_key] = _Chat(_Window(*rates.rates), rates.metered)
        return chat

    async def paced(self, chat_key: str, call: Callable[[], Awaitable[R]]) -> R:
        """Make a send that needs its answer now (a new message) inside the same windows as the edits.

        It takes the chat's next free slot before any queued edit: an answer to a person (a command's
        reply, an error) never waits behind a job's progress. A `RetryAfter` from `call` blocks the
        chat for the time asked and the call is tried again.
        """
        chat = self._chat(chat_key)
        for attempt in range(1, 2 * self._max_attempts + 1):
            chat.answers += 1
            chat.no_answers.clear()
            try:
                started = await self._wait_for_slot(chat, edits=False)
            finally:
                chat.answers -= 1
                if not chat.answers:
                    chat.no_answers.set()
            try:
                return await self._timed(chat, started, call())
            except RetryAfter as exc:
                self.stats.retried += 1
                chat.window.blocked_until = self._clock() + exc.seconds
                if attempt == 2 * self._max_attempts:
                    raise
        raise AssertionError("unreachable")

    def withdraw(self, message_key: str) -> None:
        """Drop what is pending for `message_key`, unsent (e.g. its message now goes by another key)."""
        lane = self._lane_of.get(message_key)
        if lane is not None and self._chats[lane].pending.pop(message_key, None) is not None:
            self.stats.coalesced += 1
            if message_key not in self._sending:
                del self._lane_of[message_key]

    def shown(self, message_key: str, fingerprint: Hashable) -> None:
        """Record what a message already shows (e.g. the frontend just sent it) so it is not re-sent."""
        self._shown.pop(message_key, None)
        self._shown[message_key] = fingerprint
        if len(self._shown) > _SHOWN_MEMORY:  # forget the oldest: memory stays flat over many jobs
            del self._shown[next(iter(self._shown))]

    @property
    def pending(self) -> int:
        return sum(len(chat.pending) for chat in self._chats.values())

    async def flush(self) -> None:
        """Wait until every pushed render has been sent or given up on."""
        await self._idle.wait()

    async def run(self) -> None:
        """Serve chats as they get work: one drain task per busy chat, all owned by one TaskGroup."""
        async with asyncio.TaskGroup() as group:
            while True:
                chat_key = await self._ready.get()
                group.create_task(self._drain(chat_key), name=f"delivery:{chat_key}")

    async def _drain(self, chat_key: str) -> None:
        chat = self._chats[chat_key]
        try:
            while chat.pending:
                started = await self._wait_for_slot(chat, progress=True)
                # a final render goes first: it is what people wait for; progress can wait
                message_key, item = min(chat.pending.items(), key=lambda entry: entry[1].rank)
                del chat.pending[message_key]
                await self._deliver(chat, message_key, item, started)
        finally:
            chat.running = False
            if chat.pending:  # pushed while we were finishing: serve again
                chat.running = True
                self._ready.put_nowait(chat_key)
            elif not any(c.pending or c.running for c in self._chats.values()):
                self._idle.set()

    async def _wait_for_slot(self, chat: _Chat[T], *, edits: bool = True, progress: bool = False
                             ) -> float:
        """Wait until one more send fits the chat's (and, if metered, the global) window; record it
        and say when. Edits wait, besides, until no answer to a person waits for that chat; progress
        leaves part of the chat's window free (see `_Window.wait_time`)."""
        while True:
            if edits and chat.answers:
                await chat.no_answers.wait()
                continue
            now = self._clock()
            only_progress = progress and all(item.rank == 2 for item in chat.pending.values())
            wait = chat.window.wait_time(now, reserve=only_progress)
            if chat.metered:
                wait = max(wait, self._global.wait_time(now))
            if only_progress and self._progress is not None:
                wait = max(wait, self._progress.wait_time(now))
            if wait <= 0:
                chat.window.record(now, answer=not edits)
                if chat.metered:
                    self._global.record(now)
                if only_progress and self._progress is not None:
                    self._progress.record(now)
                return now
            await self._sleep(wait)

    async def _timed(self, chat: _Chat[T], started: float, send: Awaitable[R]) -> R:
        try:
            return await send
        finally:  # the send counts from when it finished (see _Window.settle)
            now = self._clock()
            chat.window.settle(started, now)
            if chat.metered:
                self._global.settle(started, now)

    async def _deliver(self, chat: _Chat[T], message_key: str, item: _Pending[T], started: float) -> None:
        """Send `item`; meanwhile the same render pushed again is not queued (it is on its way)."""
        self._sending[message_key] = item.fingerprint
        try:
            await self._attempts(chat, message_key, item, started)
        finally:
            self._sending.pop(message_key, None)
            if message_key not in chat.pending:
                self._lane_of.pop(message_key, None)

    async def _attempts(self, chat: _Chat[T], message_key: str, item: _Pending[T], started: float) -> None:
        for attempt in range(1, self._max_attempts + 1):
            try:
                await self._timed(chat, started, self._send(message_key, item.payload))
            except RetryAfter as exc:
                self.stats.retried += 1
                chat.window.blocked_until = self._clock() + exc.seconds
                if message_key not in chat.pending:  # keep it, first in line, unless a newer one came
                    chat.pending = {message_key: item, **chat.pending}
                return
            except Exception:  # a platform refusal (message deleted, ...): log it, keep serving others
                self.stats.failed += 1
                log.warning("delivery of %s failed (attempt %d)", message_key, attempt, exc_info=True)
                if not item.final or attempt == self._max_attempts:
                    return
                started = await self._wait_for_slot(chat)
                continue
            self.stats.sent += 1
            self.shown(message_key, item.fingerprint)
            return
