"""Pure renderers and payloads: Telegram's limits (UTF-16 lengths, 64-byte callback data) hold."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from bot.delivery import Delivery, Rate, RetryAfter
from bot.domain import Job, JobState, Owner
from bot.prompt import parse_prompt
from bot.telegram_frontend import render
from bot.telegram_frontend.keyboards import SettingRef, settings_rows
from providers.base import Action, GenerationRequest, TaskResult, grid_offers
from providers.local import LocalProvider


def job(prompt: str = "a red fox", state: JobState = JobState.SUCCEEDED, **extra: object) -> Job:
    request = GenerationRequest(kind=Action.IMAGINE, prompt=parse_prompt(prompt, max_length=10_000).params)
    fields: dict[str, object] = {
        "id": "abcdefghjk", "kind": Action.IMAGINE, "provider": "local", "request": request, "state": state,
        "owner": Owner(platform="telegram", user_id="42", name="Ann 🦊"), "created_at": 0.0,
        "updated_at": 0.0, "deadline": 900.0,
    }  # fmt: skip
    if state is JobState.SUCCEEDED:
        fields["result"] = TaskResult(grid_url="http://x/grid.png")
        fields["actions"] = grid_offers(LocalProvider.capabilities)
    return Job.model_validate({**fields, **extra})


def test_a_long_emoji_prompt_fits_the_caption_in_utf16_units() -> None:
    view = render.job_view(job("🦊 " * 3000, JobState.RUNNING, progress=40))
    assert render.utf16_len(view.text) <= render.CAPTION_LIMIT
    lines = view.text.splitlines()
    assert lines[0].endswith("…") and lines[1].startswith("Running · 40% ▰▰▰▰")
    assert lines[2] == "local · Ann 🦊 · job abcdefghjk"


def test_views_by_state() -> None:
    queued = render.first_view(job(state=JobState.QUEUED), queue_position=3)
    assert queued.text.splitlines()[1] == "Queued · position 3" and queued.image is None and not queued.final
    preview = render.job_view(job(state=JobState.RUNNING, progress=50, preview_url="http://x/p.jpg"))
    assert preview.image == "http://x/p.jpg" and preview.buttons == ()
    done = render.job_view(job())
    assert done.image == render.RESULT and done.final
    assert [label for label, _ in done.buttons[0]] == ["U1", "U2", "U3", "U4"]
    failed = render.job_view(job(state=JobState.FAILED, error="Banned word."))
    assert failed.text.splitlines()[1] == "Failed: Banned word." and failed.image is None and failed.final


def test_describe_text_fits_and_numbers_the_prompts() -> None:
    described = job(kind=Action.DESCRIBE, result=TaskResult(prompts=["x" * 3000] * 4), actions={})
    view = render.job_view(described)
    assert not view.photo and render.utf16_len(view.text) <= render.TEXT_LIMIT
    assert [label for label, _ in view.buttons[0]] == ["1", "2", "3", "4"]
    assert "\n\n4. xxx" in view.text


def test_callback_data_stays_within_64_bytes() -> None:
    for row in render.job_view(job()).buttons:
        assert all(len(data.encode()) <= 64 for _, data in row)
    rows = settings_rows("-1001234567890123", {"speed": "fast"}, ["a" * 40, "local"])
    assert all(len(data.encode()) <= 64 for row in rows for _, data in row)
    assert rows[2][1][0] == "✓ fast"
    assert SettingRef.unpack(rows[0][1][1]) == SettingRef("-1001234567890123", "provider", 1)
    assert SettingRef.unpack("st:1:zz:0") is None


@pytest.mark.parametrize("text", ["", "short", "🦊" * 600, "a" * 2000])
def test_cut(text: str) -> None:
    out = render.cut(text, 1024)
    assert render.utf16_len(out) <= 1024
    assert out == text or out.endswith("…")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_delivery_paces_a_group_by_both_of_its_rates_and_paced_sends_share_them() -> None:
    clock, sent = Clock(), []

    async def send(key: str, payload: str) -> None:
        sent.append((clock.now, key))

    delivery: Delivery[str] = Delivery(send, lambda _: (Rate(1, 1.0), Rate(3, 10.0)), Rate(30, 1.0),
                                       clock=clock, sleep=clock.sleep)  # fmt: skip
    task = asyncio.create_task(delivery.run())
    try:
        answers = [RetryAfter(5.0)]

        async def new_message() -> str:
            if answers:
                raise answers.pop()
            sent.append((clock.now, "new"))
            return "sent"

        for n in range(3):
            delivery.push("g", f"m{n}", "x", n, final=n == 2)
        assert await delivery.paced("g", new_message) == "sent"
        await delivery.flush()
    finally:
        task.cancel()
    times = [at for at, _ in sent]
    edits = [key for _, key in sent if key != "new"]
    assert len(sent) == 4 and edits == ["m2", "m0", "m1"]  # the final one goes first
    assert times[0] >= 5.0  # the 429 answer to the new message was waited out
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))  # 1 per second
    assert times[3] >= 10.0  # and at most 3 per 10 s
    assert delivery.stats.retried == 1
