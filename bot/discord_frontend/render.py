"""Pure rendering: a job (and the answers to /jobs, /info, /settings, /help) as Discord shows them.

Nothing here does I/O. `card(job, position)` says what a job's message shows; `embed(card, ...)`
turns it into a `discord.Embed` once the sender knows the names of the uploaded files. Every text is
cut to Discord's limits (title 256, description 4096, field 1024, 25 fields, 6000 in all).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import discord

from bot import i18n
from bot.domain import Job, JobState
from bot.i18n import N_, t
from bot.presentation import Button, buttons, provider_state, shorten, status_line, title
from bot.service import ProviderStatus
from providers.base import UPSCALERS, Action

TITLE_LIMIT, DESCRIPTION_LIMIT, FIELD_LIMIT, MAX_FIELDS = 256, 4096, 1024, 25

_COLORS: dict[JobState, int] = {
    JobState.QUEUED: 0x99AAB5,
    JobState.SUBMITTING: 0x99AAB5,
    JobState.SUBMITTED: 0x5865F2,
    JobState.RUNNING: 0x5865F2,
    JobState.SUCCEEDED: 0x57F287,
    JobState.FAILED: 0xED4245,
    JobState.CANCELLED: 0x99AAB5,
    JobState.TIMED_OUT: 0xFEE75C,
}


@dataclass(frozen=True)
class Card:
    """What a job's message shows. Hashable: it is the fingerprint that skips unchanged edits."""

    title: str
    description: str
    color: int
    footer: str
    preview_url: str | None  # progress preview (a provider URL), shown as the embed image
    rows: tuple[tuple[Button, ...], ...]
    with_result: bool  # the final render: the result files are uploaded with it
    final: bool = False  # the job has ended: this is the last edit its message gets


def card(job: Job, queue_position: int = 0) -> Card:
    """The message of a job at any state: progress embed, then the result with its buttons."""
    rows = tuple(tuple(row) for row in buttons(job))
    succeeded = job.state is JobState.SUCCEEDED
    return Card(
        title=shorten(title(job) or job.kind.value.title(), TITLE_LIMIT),
        description=_description(job, queue_position),
        color=_COLORS[job.state],
        footer=t("{provider} · job {job} · {owner}", provider=job.provider, job=job.id,
                 owner=job.owner.name or job.owner.user_id),
        preview_url=job.preview_url if not job.terminal else None,
        rows=rows,
        with_result=succeeded and job.result is not None,
        final=job.terminal,
    )


def _description(job: Job, queue_position: int) -> str:
    line = status_line(job, queue_position)
    if job.state is JobState.SUCCEEDED and job.result and job.result.prompts:
        prompts = job.result.prompts
        each = (DESCRIPTION_LIMIT - 200) // len(prompts)  # every numbered prompt stays visible
        numbered = "\n\n".join(f"**{i}.** {shorten(p, each)}" for i, p in enumerate(prompts, start=1))
        summary = f"{shorten(job.result.summary, 1000)}\n\n" if job.result.summary else ""  # shorten's scores
        press = t("Press a number to imagine that prompt.")
        return shorten(f"{summary}{numbered}\n\n{press}", DESCRIPTION_LIMIT)
    if job.state is JobState.SUCCEEDED:
        return _done_line(job)
    return shorten(line, DESCRIPTION_LIMIT)


def _done_line(job: Job) -> str:
    size = ""
    if job.result and job.result.width and job.result.height:
        size = f" · {job.result.width}×{job.result.height}"
    upscaled = job.kind is Action.UPSCALE or job.kind in UPSCALERS
    what = t("Upscaled") if upscaled else t("Done")
    return f"{what}{size}"


def embed(card: Card, image: str | None = None, thumbnail: str | None = None) -> discord.Embed:
    """The card as an embed; `image`/`thumbnail` are `attachment://name` (or a URL) when known."""
    result = discord.Embed(title=card.title, description=card.description, color=card.color)
    result.set_footer(text=shorten(card.footer, 2048))
    if image or card.preview_url:
        result.set_image(url=image or card.preview_url)
    if thumbnail:
        result.set_thumbnail(url=thumbnail)
    return result


# ------------------------------------------------------------------------------------ the other replies
def jobs_text(jobs: Sequence[Job]) -> str:
    """/jobs: the caller's recent jobs, newest first, one line each."""
    if not jobs:
        return t("You have no jobs yet. Start one with /imagine.")
    lines = []
    for job in jobs:
        state = status_line(job) if not job.terminal else job.state.value.replace("_", " ")
        lines.append(f"`{job.id}` · {job.kind.value} · {shorten(state, 60)} · {shorten(title(job), 80)}")
    return shorten(t("**Your recent jobs**") + "\n" + "\n".join(lines), 2000)


def settings_text(settings: dict[str, str], default_provider: str, locale: str | None = None) -> str:
    """/settings: the person's defaults; `locale` is the language they are answered in (shown when
    they chose none: "auto")."""
    provider = settings.get("provider") or t("{provider} (default)", provider=default_provider)
    ratio = settings.get("aspect_ratio") or t("1:1 (default)")
    speed = settings.get("speed") or t("the provider's default")
    remix = settings.get("remix") or t("off")
    chosen = settings.get("language")
    answered = i18n.normalize(locale or i18n.current()) or i18n.DEFAULT
    if chosen and chosen in i18n.NAMES:
        language = i18n.NAMES[chosen]
    else:
        language = t("auto ({language}, your app's language)", language=i18n.NAMES[answered])
    return t("**Your settings** (used by /imagine unless you pass an option)\n"
             "provider: {provider}\naspect ratio: {ratio}\nspeed: {speed}\n"
             "remix: {remix} (on: variations, rerolls and pans ask for the prompt first)\n"
             "language: {language}", provider=provider, ratio=ratio, speed=speed, remix=remix,
             language=language)


def info_embed(statuses: Sequence[ProviderStatus], usage: Sequence[str] = (),
               now: float | None = None) -> discord.Embed:
    """/info: the asking user's usage and what is left, then each provider, what it can do, its queue
    and whether it is paused."""
    now = time.time() if now is None else now
    result = discord.Embed(title=t("Providers"), color=0x5865F2,
                           description=shorten("\n".join(usage), DESCRIPTION_LIMIT) or None)
    for status in statuses[:MAX_FIELDS]:
        actions = ", ".join(sorted(a.value for a in status.capabilities.actions))
        last = t("never") if status.last_success is None else t(
            "{seconds} s ago", seconds=max(0, int(now - status.last_success)))
        state = provider_state(status.held, status.rate_limited_until, now)
        value = t("{state} · {queued} queued · {active} running\nlast success: {last}\ncan: {actions}",
                  state=state, queued=status.queued, active=status.active, last=last, actions=actions)
        result.add_field(name=shorten(f"{status.name} ({status.type})", TITLE_LIMIT),
                         value=shorten(value, FIELD_LIMIT), inline=False)
    return result


# TRANSLATORS: /help; keep the /commands, option names and button labels (U1–U4, V1–V4, 🔄) as they are.
HELP = N_("""**imagine-bot**: image generation through this server's providers.
`/imagine prompt` a grid of four from a prompt (options: aspect ratio, provider, speed, version, \
stylize, chaos, no, seed, a reference image). Midjourney flags such as `--ar 16:9` work in the prompt too, \
and so do permutations (`a {red, green} bird`: one job each) and `--repeat 3`.
`/describe image` four prompts for an image; press a number to imagine one.
`/blend image1 image2 [image3..image5] [dimensions]` one image from 2 to 5.
`/shorten prompt` which words of a prompt matter most, and up to five shorter prompts to imagine.
`/jobs` your recent jobs · `/cancel [job]` stop a queued or running job · \
`/settings` your defaults and Remix (V, 🔄 and pans ask for the prompt; `--remix` for one job) · \
`/info` providers and their queues.
Buttons: **U1–U4** upscale one image, **V1–V4** variations, **🔄** again; after an upscale: Vary, \
Upscale (Subtle/Creative, 2x/4x), Redo Upscale, Zoom Out, 🔍 Custom Zoom (asks for the prompt with \
`--zoom 1-2`), Make Square, pans and Animate, where the provider offers them.""")
