"""Midjourney's flags as people type them, through `service.imagine` on every provider.

One bot (real service, store and poller, built as bot.app builds it) has a provider of each type,
each against its stateful fake on loopback. A prompt is parsed against the chosen provider's flag
policy: the tests assert what each fake received for flags the adapter maps (API fields) or passes
(prompt text), and the message a person gets for a flag the provider refuses or the bot doesn't know.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.access import Caller
from bot.app import App, build_app
from bot.config import parse_config
from bot.domain import Job, JobState, Owner
from bot.errors import InvalidPrompt
from providers.base import ImageInput
from providers.local import _unpack
from tests.fakes.midapi import MidapiFake
from tests.fakes.midjourney_api import GPT, SUBMIT, MidjourneyApiFake
from tests.fakes.mj_proxy import MjProxyFake
from tests.fakes.mj_rest import MjRestFake
from tests.fakes.ohmygpt import OhmygptFake
from tests.harness import FakeClock

OWNER = Owner(platform="cli", user_id="u1", name="Ada")
#: Every flag a Midjourney relay passes on, as typed (aliases, upper case, extra spaces) ...
TYPED = (
    "a red fox --sref https://img.example/s.png 12345::2 Random --sw 250 --sv 4 --cref https://img.example/c.png"
    " --cw  50 --oref https://img.example/o.png --ow 300 --profile abc123 m7xyz --exp 25 --draft --stop 80"
    " --V 7 --stylize 100"
)
#: ... and as the prompt sent to Midjourney: canonical names, in the canonical order.
SENT = (
    "a red fox --v 7 --s 100 --sref https://img.example/s.png 12345::2 Random --sw 250 --sv 4"
    " --cref https://img.example/c.png --cw 50 --oref https://img.example/o.png --ow 300 --p abc123 m7xyz"
    " --exp 25 --draft --stop 80"
)


@dataclass
class Bot:
    app: App
    clock: FakeClock
    mjapi: MidjourneyApiFake  # serves both `mj` (midjourney_api) and `gpt` (gpt_image)
    midapi: MidapiFake
    proxy: MjProxyFake
    ohmygpt: OhmygptFake
    rest: MjRestFake

    async def imagine(self, prompt: str, provider: str, **kw: Any) -> Job:
        """Ask for an image on `provider` and run the poller until the job has been sent (or ended)."""
        job = await self.app.service.imagine(Caller(OWNER), prompt, provider=provider, **kw)
        for _ in range(10):
            await self.app.poller.tick()
            job = await self.app.service.get(job.id)
            if job.provider_task_id or job.terminal:
                return job
            self.clock.advance(1.0)
        raise AssertionError(f"job {job.id} was never sent: {job.state.value}")

    async def refused(self, prompt: str, provider: str) -> str:
        """The message `imagine` answers with; asserts that no job was made."""
        before = await self.app.service.recent(OWNER)
        with pytest.raises(InvalidPrompt) as caught:
            await self.app.service.imagine(Caller(OWNER), prompt, provider=provider)
        assert await self.app.service.recent(OWNER) == before
        return caught.value.message

    def sent(self, provider: str) -> dict[str, Any]:
        """The body of the last imagine `provider`'s fake received."""
        if provider in ("mj", "gpt"):
            path = SUBMIT if provider == "mj" else GPT
            return dict([r.body for r in self.mjapi.submits() if r.path == path][-1])
        if provider == "midapi":
            return dict([r["body"] for r in self.midapi.received if r["path"].endswith("/generate")][-1])
        if provider == "mjproxy":
            return dict(self.proxy.submitted("imagine")[-1].body)
        if provider == "ohmygpt":
            return dict([r["body"] for r in self.ohmygpt.received if r["path"].endswith("/imagine")][-1])
        return dict(self.rest.submitted("/v1/imagine")[-1].body)

    def requests(self) -> int:
        fakes = (self.mjapi, self.midapi, self.proxy, self.ohmygpt, self.rest)
        return sum(len(fake.requests) for fake in fakes)


def _config(tmp_path: Path, bot: dict[str, str]) -> dict[str, Any]:
    def entry(name: str, kind: str, url: str, key: str = "test-key", **extra: Any) -> dict[str, Any]:
        return {"name": name, "type": kind, "base_url": url, "api_key": key, "request_timeout": 5.0, **extra}

    return {
        "database": str(tmp_path / "bot.sqlite3"),
        "default_provider": "local",
        "providers": [
            {"name": "local", "type": "local", "duration": 0.0, "grid_size": 256, "poll_interval": 1.0},
            entry("mj", "midjourney_api", bot["mjapi"], fallbacks=["gpt", "ohmygpt"]),
            entry("gpt", "gpt_image", bot["mjapi"]),
            entry("midapi", "midapi", bot["midapi"]),
            entry("mjproxy", "mj_proxy", bot["proxy"], key="test-secret"),
            entry("oldproxy", "mj_proxy", bot["proxy"], key="test-secret", api_flavor="opensource"),
            entry("ohmygpt", "ohmygpt", bot["ohmygpt"]),
            entry("mjrest", "mj_rest", bot["rest"]),
        ],
        "media": {"allow_private_addresses": True},
    }


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    async with contextlib.AsyncExitStack() as stack:
        mjapi = await stack.enter_async_context(MidjourneyApiFake())
        midapi = await stack.enter_async_context(MidapiFake())
        proxy = await stack.enter_async_context(MjProxyFake())
        ohmygpt = await stack.enter_async_context(OhmygptFake())
        rest = await stack.enter_async_context(MjRestFake())
        urls = {"mjapi": mjapi.base_url, "midapi": midapi.base_url, "proxy": proxy.base_url,
                "ohmygpt": ohmygpt.base_url, "rest": rest.base_url}  # fmt: skip
        clock = FakeClock()
        config = parse_config(_config(tmp_path, urls), {})
        app = await stack.enter_async_context(build_app(config, clock=clock, serve_http=False))
        yield Bot(app, clock, mjapi, midapi, proxy, ohmygpt, rest)
        assert proxy.invalid == [] and rest.violations == [], "a request outside the provider's documentation"


# --- passed through: the prompt text sent to Midjourney ----------------------------------------------


@pytest.mark.parametrize("provider", ["mj", "mjproxy", "ohmygpt"])
async def test_relays_pass_every_current_flag_verbatim(bot: Bot, provider: str) -> None:
    job = await bot.imagine(TYPED, provider)
    assert job.state is JobState.SUBMITTED, job.error
    assert bot.sent(provider)["prompt"] == SENT


async def test_mj_proxy_passes_video_and_motion(bot: Bot) -> None:
    await bot.imagine("https://img.example/start.png waves at night --video --motion LOW --p", "mjproxy")
    sent = bot.sent("mjproxy")["prompt"]
    assert sent == "https://img.example/start.png waves at night --p --video --motion low"


@pytest.mark.parametrize("provider", ["mj", "ohmygpt", "oldproxy", "mjrest", "midapi", "local"])
async def test_video_flags_are_refused_where_no_video_comes_back(bot: Bot, provider: str) -> None:
    message = await bot.refused("waves at night --video", provider)
    assert message.startswith(f"{provider} does not support --video; it supports --ar, --v, --niji, ")
    assert "--motion" not in message
    assert bot.requests() == 0


# --- mapped: API fields --------------------------------------------------------------------------------


async def test_midapi_maps_style_references_to_file_urls(bot: Bot) -> None:
    prompt = "a castle --sref https://img.example/s.png 42 --ar 16:9 --s 300 --sw 200 --exp 5"
    await bot.imagine(prompt, "midapi")
    body = bot.sent("midapi")
    assert body["taskType"] == "mj_style_reference" and body["fileUrls"] == ["https://img.example/s.png"]
    assert (body["aspectRatio"], body["stylization"]) == ("16:9", 300)
    assert body["prompt"] == "a castle --sref 42 --sw 200 --exp 5"  # a style code and the rest stay inline


async def test_midapi_maps_an_omni_reference_and_its_weight(bot: Bot) -> None:
    await bot.imagine("a knight --oref https://img.example/o.png --ow 700 --v 7", "midapi")
    body = bot.sent("midapi")
    assert body["taskType"] == "mj_omni_reference" and body["fileUrls"] == ["https://img.example/o.png"]
    assert (body["ow"], body["version"], body["prompt"]) == (700, "7", "a knight")
    assert "speed" not in body  # the API takes no speed for omni references


async def test_midapi_sref_alone_uses_the_image_given(bot: Bot) -> None:
    image = ImageInput(data=_png(), url="https://img.example/given.png")
    await bot.imagine("a castle --sref", "midapi", images=[image])
    body = bot.sent("midapi")
    assert body["taskType"] == "mj_style_reference" and body["fileUrls"] == ["https://img.example/given.png"]
    assert body["prompt"] == "a castle"


async def test_mj_rest_maps_its_fields_and_passes_the_rest(bot: Bot) -> None:
    prompt = "a fox --ar 3:2 --s 100 --seed 9 --sref 987 --cref https://img.example/c.png --exp 10"
    await bot.imagine(prompt, "mjrest")
    body = bot.sent("mjrest")
    assert (body["aspect_ratio"], body["stylize"], body["seed"]) == ("3:2", 100, 9)
    assert body["prompt"] == "a fox --sref 987 --cref https://img.example/c.png --exp 10"


async def test_gpt_image_maps_ar_and_refuses_everything_else(bot: Bot) -> None:
    await bot.imagine("draw a fox --ar 16:9", "gpt")
    assert bot.sent("gpt")["prompt"] == "draw a fox" and bot.sent("gpt")["aspect_ratio"] == "16:9"
    assert await bot.refused("draw a fox --sref https://img.example/s.png", "gpt") == (
        "gpt does not support --sref; it supports --ar."
    )
    assert await bot.refused("draw a fox --stylize 250", "gpt") == (  # named as typed
        "gpt does not support --stylize; it supports --ar."
    )


async def test_local_maps_ar_and_seed_and_draws_the_rest(bot: Bot) -> None:
    prompt = "a fox --ar 3:2 --seed 7 --sref https://img.example/s.png --exp 10 --draft"
    job = await bot.imagine(prompt, "local")
    assert job.provider_task_id is not None
    spec = _unpack(job.provider_task_id)  # the local provider's task is what it was asked for
    assert (spec["ar"], spec["s"]) == ("3:2", 7)
    assert spec["p"].endswith("--sref https://img.example/s.png --exp 10 --draft")
    bot.clock.advance(5.0)
    await bot.app.poller.tick()
    done = await bot.app.service.get(job.id)
    assert done.state is JobState.SUCCEEDED and done.result and done.result.grid_url
    grid = await bot.app.http.get(done.result.grid_url)
    with Image.open(io.BytesIO(grid.content)) as image:
        assert image.size == (256, 170)  # 3:2 at the configured grid size


# --- refused and unknown flags, bad values --------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("a fox --arr 16:9", "Unknown flag --arr. Did you mean --ar?"),
        ("a fox --sreff 123", "Unknown flag --sreff. Did you mean --sref?"),
        ("a fox --stylise 50", "Unknown flag --stylise. Did you mean --stylize?"),
        ("a fox --bogus 1", "Unknown flag --bogus. gpt supports --ar."),
    ],
)
async def test_unknown_flags_get_a_clear_message(bot: Bot, prompt: str, message: str) -> None:
    assert await bot.refused(prompt, "gpt") == message


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("a fox --sw 1001", "--sw must be between 0 and 1000; got 1001."),
        ("a fox --cw 101", "--cw must be between 0 and 100; got 101."),
        ("a fox --ow 0", "--ow must be between 1 and 1000; got 0."),
        ("a fox --exp 101", "--exp must be between 0 and 100; got 101."),
        ("a fox --stop 9", "--stop must be between 10 and 100; got 9."),
        ("a fox --sv 7", "--sv must be between 1 and 6; got 7."),
        ("a fox --motion medium", "--motion must be one of low, high; got 'medium'."),
        ("a fox --draft now", "--draft takes no value; move 'now' before the flags."),
        ("a fox --video yes", "--video takes no value; move 'yes' before the flags."),
        ("a fox --sref s.png", "--sref takes image URLs, style codes (numbers) or 'random', not 's.png'."),
        ("a fox --cref 12345", "--cref takes image URLs, not '12345'."),
        ("a fox --oref https://a.example/1.png https://a.example/2.png",
         "--oref takes one image URL; got 2 values."),
        ("a fox --p bad!code", "--p takes profile or moodboard codes (letters and digits), not 'bad!code'."),
        ("a fox --sw 2 --sw 3", "--sw is given twice."),
        ("a fox --sref", "--sref needs image URLs, style codes or 'random', e.g. --sref https://example.com/reference.png."),
        ("a fox --cref", "--cref needs a value."),
        ("a fox --sw", "--sw needs a value."),
    ],
)  # fmt: skip
async def test_values_are_checked_before_a_job_is_made(bot: Bot, prompt: str, message: str) -> None:
    assert await bot.refused(prompt, "mjproxy") == message
    assert bot.requests() == 0


# --- failover -----------------------------------------------------------------------------------------


async def _out_of_credits(bot: Bot, prompt: str) -> Job:
    """`prompt` on mj, which is out of credits: the job once it has moved on or ended."""
    bot.mjapi.inject("quota", times=5)
    job = await bot.imagine(prompt, "mj")
    for _ in range(5):
        if job.terminal or job.provider != "mj":
            break
        await bot.app.poller.tick()
        job = await bot.app.service.get(job.id)
    return job


async def test_failover_skips_a_fallback_that_cannot_serve_the_flags(bot: Bot) -> None:
    """mj is out of credits; of its fallbacks gpt has no --sref and ohmygpt passes it: the job moves
    to ohmygpt, with its style reference."""
    job = await _out_of_credits(bot, "a fox --sref https://img.example/s.png")
    assert (job.provider, job.tried_providers) == ("ohmygpt", ["mj"])
    await bot.app.poller.tick()
    assert bot.sent("ohmygpt")["prompt"] == "a fox --sref https://img.example/s.png"
    assert [r.path for r in bot.mjapi.submits()] == [SUBMIT]  # refused by mj; gpt was never asked


async def test_failover_never_drops_flags_the_fallback_cannot_serve(bot: Bot) -> None:
    """... and when ohmygpt is out of credits too, the job ends with that refusal rather than being
    drawn by gpt without its style reference."""
    code, message = 400, "Insufficient balance, please recharge"
    bot.ohmygpt.inject_code(code, message, times=5)
    job = await _out_of_credits(bot, "a fox --sref https://img.example/s.png")
    for _ in range(5):
        if job.terminal:
            break
        await bot.app.poller.tick()
        job = await bot.app.service.get(job.id)
    assert job.state is JobState.FAILED and job.tried_providers == ["mj"] and job.provider == "ohmygpt"
    assert [r.path for r in bot.mjapi.submits()] == [SUBMIT]  # gpt was never asked


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()
