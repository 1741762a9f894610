"""Every bad input gets a clear ephemeral answer; nothing public is left behind and no job is made."""

from __future__ import annotations

from typing import Any

import pytest

from tests.discord_frontend.conftest import Discord, png

TEXT = ("notes.txt", b"hello, not an image", "text/plain")
FAKE_PNG = ("fake.png", b"this is not really a png" * 10, "image/png")
HUGE = ("huge.png", png() + b"\0" * (1024 * 1024 + 1), "image/png")  # over media.max_download_bytes (1 MiB)


@pytest.mark.parametrize(("command", "options", "files", "expected"), [
    ("imagine", {"prompt": "a castle --ar 100:1"}, {}, "--ar 100:1 is too extreme"),
    ("imagine", {"prompt": "a castle --foo 3"}, {}, "Unknown flag --foo"),
    ("imagine", {"prompt": "--ar 16:9"}, {}, "no text"),
    ("imagine", {"prompt": "a castle --ar 2:3", "aspect_ratio": "16:9"}, {}, "--ar is given twice"),
    ("imagine", {"prompt": "a castle"}, {"image": TEXT}, "The reference image (notes.txt) is not an image"),
    ("imagine", {"prompt": "a castle"}, {"image": FAKE_PNG}, "The reference image is not an image"),
    ("describe", {}, {"image": TEXT}, "The image (notes.txt) is not an image"),
    ("describe", {}, {"image": HUGE}, "the limit is 1.0 MB"),
    ("describe", {}, {"image": FAKE_PNG}, "The image is not an image"),
    ("blend", {}, {"image1": ("a.png", png(), "image/png"), "image2": TEXT}, "Image 2 (notes.txt) is not"),
    ("blend", {}, {"image1": FAKE_PNG, "image2": ("b.png", png(), "image/png")}, "Image 1 is not an image"),
], ids=["extreme-ratio", "unknown-flag", "flags-only", "ratio-twice", "text-reference", "fake-reference",
        "text-describe", "huge-describe", "fake-describe", "text-blend", "fake-blend"])
async def test_bad_input_is_told_privately(discord_env: Discord, command: str, options: dict[str, Any],
                                           files: dict[str, tuple[str, bytes, str]], expected: str) -> None:
    d = discord_env
    await d.command(command, options, files)
    (told,) = await d.told(lambda text: bool(text))
    assert expected in told
    assert "Traceback" not in told and d.public() == []  # the "thinking…" placeholder is gone too
    assert await d.bot.app.service.recent(limit=5) == []


async def test_cancel_refusals(discord_env: Discord) -> None:
    d = discord_env
    await d.command("cancel", {"job": "nosuchjob"})
    await d.command("cancel")
    told = await d.told(lambda text: bool(text), count=2)
    assert told == ["There is no job 'nosuchjob'.", "You have no queued or running job to cancel."]


async def test_someone_elses_job_cannot_be_cancelled(discord_env: Discord) -> None:
    d = discord_env
    message = await d.response(await d.command("imagine", {"prompt": "alice's castle"}))
    job = await d.job_of(message)
    assert job is not None
    await d.command("cancel", {"job": job.id}, user=d.bob)
    (told,) = await d.told(lambda text: "belongs to" in text)
    assert "Alice" in told
    await d.finished(message)
    assert message.attachments  # it ran to the end


async def test_a_guild_outside_the_allowlist_is_refused(discord_env: Discord) -> None:
    d = discord_env
    other_guild, (other_channel,) = d.fake.add_guild("Elsewhere")
    d.fake.commands[other_guild] = d.fake.commands[d.fake.guild_id]  # as if registered there once
    await d.fake.slash_command(other_guild, other_channel, d.alice, "imagine", {"prompt": "x"})
    (message,) = await d.fake.wait_for(lambda: d.fake.messages(other_channel))
    assert message.ephemeral and message.content == "This bot is not enabled in this server."
    assert await d.bot.app.service.recent(limit=5) == []
