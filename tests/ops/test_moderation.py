"""Banned words are refused before anything is spent; a provider's moderation refusal reads kindly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.access import Caller
from bot.app import build_app, running
from bot.config import parse_config
from bot.domain import JobState
from bot.errors import PromptRefused
from bot.moderation import PROVIDER_REFUSAL, Moderator, refusal_message
from providers.errors import ProviderRejected, ProviderUnavailable
from tests.fakes.midjourney_api import MidjourneyApiFake
from tests.ops.conftest import ADA, GROUP, build
from tests.providers.test_failover import Finished


def test_whole_words_and_phrases_case_insensitive() -> None:
    moderator = Moderator(["ass", "Blood Bath", "c++"])
    assert moderator.banned_word("a classic BASS guitar, assorted") is None
    assert moderator.banned_word("kick ASS today") == "ASS"
    assert moderator.banned_word("a blood   bath at dawn") == "blood   bath"
    assert moderator.banned_word("learning c++, fast") == "c++"
    assert moderator.banned_word("bloodbath") is None
    assert Moderator([]).banned_word("anything") is None


async def test_a_banned_word_is_refused_before_anything_is_spent(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("# one per line\ngore\n\nbad dream  # a phrase\n", encoding="utf-8")
    moderation = {"banned_words": ["Spider"], "banned_words_file": str(words)}
    async with build(tmp_path, moderation=moderation, limits={"user_per_hour": 5}) as ops:
        for prompt, word in (("a SPIDER on a wall", "SPIDER"), ("gore --ar 16:9", "gore"),
                             ("a Bad Dream of the sea", "Bad Dream")):
            with pytest.raises(PromptRefused) as refused:
                await ops.service.imagine(ops.caller(ADA), prompt)
            assert refused.value.message == (
                f"Your prompt was not sent: “{word}” is not allowed here. Remove it and try again.")
        with pytest.raises(PromptRefused):  # a negative prompt is part of the prompt too
            await ops.service.imagine(ops.caller(ADA), "a quiet forest --no spider")
        assert await ops.service.recent(ADA) == []
        assert (await ops.service.usage(ops.caller(ADA))).user[0].used == 0
        assert ops.providers["local"].calls["submit"] == 0
        assert (await ops.imagine(ADA, "spiderman-free goregeous bad dreams")).state is JobState.SUCCEEDED


def test_provider_refusal_wording() -> None:
    banned = ProviderRejected("Banned prompt detected")
    assert refusal_message(banned) == f"{PROVIDER_REFUSAL} (Banned prompt detected.)"
    assert refusal_message(ProviderRejected("Unknown --ar value")) == "Unknown --ar value"
    assert refusal_message(ProviderUnavailable("moderation service down")) == "moderation service down"


@pytest.fixture
async def mj() -> AsyncIterator[MidjourneyApiFake]:
    async with MidjourneyApiFake(polls_to_finish=1, api_key="k-123456") as fake:
        yield fake


async def test_a_provider_moderation_refusal_is_shown_kindly_and_refunded(
    tmp_path: Path, mj: MidjourneyApiFake
) -> None:
    document = {
        "database": str(tmp_path / "bot.sqlite3"), "default_provider": "mj",
        "providers": [{"name": "mj", "type": "midjourney_api", "base_url": mj.base_url, "api_key": "k-123456",
                       "poll_interval": 0.05, "request_timeout": 1.0}],
        "polling": {"idle_interval": 0.05}, "limits": {"user_per_hour": 1},
    }  # fmt: skip
    async with build_app(parse_config(document, {})) as app, running(app):
        finished = Finished()
        app.listeners.add(finished)
        mj.inject("rejected")
        job = await app.service.imagine(Caller(ADA, scope=GROUP), "something the provider dislikes")
        done = await finished.wait(job.id)
        assert done.state is JobState.FAILED
        assert done.error == f"{PROVIDER_REFUSAL} (mj refused the request: Banned prompt detected.)"
        assert (await app.service.usage(Caller(ADA, scope=GROUP))).user[0].used == 0
