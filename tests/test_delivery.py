"""Delivery: coalescing, pacing, 429 handling and the final-state guarantee, on a virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from bot.delivery import Delivery, Rate, RetryAfter

_EDITS = Rate(5, 5.0)
_OVERALL = Rate(30, 1.0)


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Chat:
    """The receiving side: what each message shows, and when every send happened."""

    def __init__(self, time: VirtualTime) -> None:
        self.time = time
        self.shows: dict[str, str] = {}
        self.sends: list[tuple[float, str, str]] = []
        self.answers: list[Exception] = []  # raised, in order, before sends succeed

    async def send(self, message: str, payload: str) -> None:
        if self.answers:
            raise self.answers.pop(0)
        self.sends.append((self.time.now, message, payload))
        self.shows[message] = payload


@pytest.fixture
def time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def chat(time: VirtualTime) -> Chat:
    return Chat(time)


@pytest.fixture
async def make(time: VirtualTime, chat: Chat) -> AsyncIterator[Callable[..., Delivery[str]]]:
    tasks: list[asyncio.Task[None]] = []

    def build(per_chat: Rate = _EDITS, overall: Rate = _OVERALL) -> Delivery[str]:
        delivery: Delivery[str] = Delivery(chat.send, lambda _: per_chat, overall, clock=time.clock,
                                           sleep=time.sleep)
        tasks.append(asyncio.create_task(delivery.run()))
        return delivery

    yield build
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_only_the_newest_render_of_a_message_is_sent(make: Callable[..., Delivery[str]],
                                                           chat: Chat) -> None:
    delivery = make()
    for percent in range(0, 101, 10):
        delivery.push("c1", "m1", f"{percent}%", percent, final=percent == 100)
    await delivery.flush()
    assert chat.shows == {"m1": "100%"}
    assert len(chat.sends) == 1
    assert delivery.stats.coalesced == 10


async def test_an_identical_render_is_not_sent_again(make: Callable[..., Delivery[str]], chat: Chat) -> None:
    delivery = make()
    delivery.push("c1", "m1", "50%", "fp-50")
    await delivery.flush()
    delivery.push("c1", "m1", "50%", "fp-50")
    await delivery.flush()
    assert len(chat.sends) == 1
    assert delivery.stats.skipped == 1


async def test_sends_stay_inside_the_chat_window(make: Callable[..., Delivery[str]], chat: Chat) -> None:
    delivery = make(per_chat=Rate(2, 1.0))
    for n in range(7):
        delivery.push("c1", f"m{n}", "done", n, final=True)
    await delivery.flush()
    times = [at for at, _, _ in chat.sends]
    assert len(times) == 7
    for first, third in zip(times, times[2:], strict=False):
        assert third - first >= 1.0  # never three sends within one second
    assert set(chat.shows) == {f"m{n}" for n in range(7)}


async def test_chats_are_paced_independently_but_share_the_global_window(
    make: Callable[..., Delivery[str]], chat: Chat
) -> None:
    delivery = make(per_chat=Rate(1, 10.0), overall=Rate(3, 1.0))
    for n in range(6):
        delivery.push(f"c{n}", f"m{n}", "x", n)
    await delivery.flush()
    times = sorted(at for at, _, _ in chat.sends)
    assert len(times) == 6
    assert times[2] < 1.0 <= times[3]  # three at once (one per chat), then the global window holds


async def test_a_429_is_honoured_and_the_final_state_still_arrives(
    make: Callable[..., Delivery[str]], chat: Chat, time: VirtualTime
) -> None:
    chat.answers = [RetryAfter(7.5)]
    delivery = make()
    delivery.push("c1", "m1", "done", "final", final=True)
    await delivery.flush()
    assert chat.shows == {"m1": "done"}
    assert chat.sends[0][0] >= 7.5
    assert delivery.stats.retried == 1


async def test_a_newer_render_that_arrives_during_a_429_wins(
    make: Callable[..., Delivery[str]], chat: Chat, time: VirtualTime
) -> None:
    delivery = make()
    chat.answers = [RetryAfter(3.0)]
    delivery.push("c1", "m1", "40%", 40)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    delivery.push("c1", "m1", "done", "final", final=True)
    await delivery.flush()
    assert chat.shows == {"m1": "done"}
    assert [payload for _, _, payload in chat.sends] == ["done"]


async def test_a_failed_progress_edit_is_dropped_but_a_failed_final_is_retried(
    make: Callable[..., Delivery[str]], chat: Chat
) -> None:
    delivery = make()
    chat.answers = [RuntimeError("message to edit not found")]
    delivery.push("c1", "m1", "40%", 40)
    await delivery.flush()
    assert chat.shows == {}
    chat.answers = [RuntimeError("bad gateway")]
    delivery.push("c1", "m2", "done", "final", final=True)
    await delivery.flush()
    assert chat.shows == {"m2": "done"}
    assert delivery.stats.failed == 2


async def test_an_answer_to_a_person_takes_the_next_slot_before_queued_progress() -> None:
    """A chat whose every slot the progress of five jobs would take: a command's reply, sent through
    `paced` while an edit is in flight, is the very next send; the edits queued before it follow.
    (On the real clock, with a 50 ms window: the order is what is checked, not the time.)"""
    sent: list[str] = []
    gate, in_flight = asyncio.Event(), asyncio.Event()

    async def send(message: str, payload: str) -> None:
        in_flight.set()
        await gate.wait()  # the first edit stays in flight until the reply is waiting
        sent.append(message)

    delivery: Delivery[str] = Delivery(send, lambda _: Rate(1, 0.05), Rate(100, 1.0))
    runner = asyncio.create_task(delivery.run())
    try:
        for n in range(5):
            delivery.push("c1", f"job{n}", "10%", (n, 10))
        await in_flight.wait()  # job0's edit is on its way

        async def reply() -> str:
            sent.append("reply")
            return "sent"

        answer = asyncio.create_task(delivery.paced("c1", reply))
        await asyncio.sleep(0.01)  # the reply waits for a slot
        gate.set()
        assert await answer == "sent"
        await delivery.flush()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert sent == ["job0", "reply", "job1", "job2", "job3", "job4"]


async def test_a_message_keeps_its_lane_while_anything_of_it_is_on_its_way(
    make: Callable[..., Delivery[str]], chat: Chat
) -> None:
    """A message that moves to another lane (Discord: from its interaction's webhook to the bot token)
    while an older state still waits in the first one is not sent twice out of order: the newer
    state joins the older in its lane and replaces it."""
    delivery = make(per_chat=Rate(1, 1.0))
    delivery.push("webhook", "m0", "other", 0)  # the lane is busy for a second after this one
    delivery.push("webhook", "m", "progress", 1)
    delivery.push("channel", "m", "final", 2, final=True)  # moved lanes meanwhile
    await delivery.flush()
    assert [(key, payload) for _, key, payload in chat.sends if key == "m"] == [("m", "final")]


async def test_progress_leaves_half_the_window_for_answers_and_finals(
    make: Callable[..., Delivery[str]], chat: Chat, time: VirtualTime
) -> None:
    """A group allows 20 sends a minute: progress alone takes at most 10 of them, so the reply to a
    command or a final that comes later finds a slot at once instead of waiting out the minute.
    Finals (and answers, through `paced`) may use the whole window."""
    delivery = make(per_chat=Rate(20, 60.0), overall=Rate(100, 1.0))
    for n in range(30):
        delivery.push("g", f"job{n}", "50%", (n, 50))
    await delivery.flush()
    first_minute = [key for at, key, _ in chat.sends if at < 60.0]
    assert len(first_minute) == 10 and len(chat.sends) == 30

    chat.sends.clear()  # the last minute holds 10 progress edits: the other half is still free ...
    asked = time.now
    for n in range(30):
        delivery.push("g", f"job{n}", "75%", (n, 75))
    for n in range(5):
        delivery.push("g", f"done{n}", "done", (n, 100), final=True)
    await delivery.flush()
    finals = [at for at, _, payload in chat.sends if payload == "done"]
    assert finals == [asked] * 5  # ... so five finals go at once, ahead of the progress


async def test_progress_gives_way_to_people_who_keep_writing(
    make: Callable[..., Delivery[str]], chat: Chat, time: VirtualTime
) -> None:
    """Eight answers in the last minute: progress keeps eight more slots free for the next ones (and
    half the window), so it goes only while the minute holds fewer than 20 - 10 - 8 = 2 sends: not
    until those answers have aged out."""
    delivery = make(per_chat=Rate(20, 60.0), overall=Rate(100, 1.0))

    async def reply() -> str:
        return "ok"

    for _ in range(8):
        await delivery.paced("g", reply)
    for n in range(30):
        delivery.push("g", f"job{n}", "50%", (n, 50))
    await delivery.flush()
    progress = [at for at, _, _ in chat.sends]
    assert len([at for at in progress if at < 60.0]) == 0  # 8 answers + 10 kept free: nothing left
    assert len(progress) == 30


async def test_progress_across_lanes_shares_one_budget_finals_do_not(time: VirtualTime, chat: Chat) -> None:
    """Lanes of their own (Discord interactions) have no common window: `progress_rate` bounds their
    progress together, while finals go at once."""
    delivery: Delivery[str] = Delivery(chat.send, lambda _: Rate(5, 5.0), Rate(100, 1.0), clock=time.clock,
                                       sleep=time.sleep, progress_rate=Rate(10, 1.0))
    runner = asyncio.create_task(delivery.run())
    try:
        for n in range(40, 60):  # first: the virtual clock jumps whenever any lane sleeps
            delivery.push(f"itx/{n}", f"m{n}", "done", (n, 100), final=True)
        for n in range(40):
            delivery.push(f"itx/{n}", f"m{n}", "50%", (n, 50))
        await delivery.flush()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    finals = [at for at, _, payload in chat.sends if payload == "done"]
    progress = sorted(at for at, _, payload in chat.sends if payload == "50%")
    assert finals == [0.0] * 20  # not held by the progress budget (which would spread them over 2 s)
    assert len(progress) == 40 and progress[9] < 1.0 <= progress[10]  # ten a second
