"""Pure renderers: a Job (or a list of them, or settings) -> the text and buttons a Telegram message shows.

Telegram counts message lengths in UTF-16 code units (an emoji is two), so every cut here does too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from bot import presentation
from bot.domain import Job, JobState, Owner
from bot.i18n import N_, t
from providers.base import Action

MB = 1024 * 1024
CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
PHOTO_MAX_BYTES = 10 * MB  # sendPhoto / InputMediaPhoto
PHOTO_MAX_SIDE = 2560  # larger photos are re-encoded before upload (Telegram shrinks them anyway)
PHOTO_KEPT_SIDE = 1280  # what Telegram keeps of a photo: a larger image also goes out as a document
DOCUMENT_MAX_BYTES = 50 * MB

#: What a photo message shows besides its caption (`View.image`); a preview URL is the third kind.
PLACEHOLDER = "placeholder"
RESULT = "result"

#: Jobs whose message is text from start to end (their result is words, not pictures).
TEXT_KINDS = frozenset({Action.DESCRIBE, Action.SHORTEN})

Rows = tuple[tuple[tuple[str, str], ...], ...]  # rows of (label, callback_data)


@dataclass(frozen=True)
class View:
    """What one message should show. Hashable: it is its own fingerprint for `Delivery`."""

    text: str
    buttons: Rows = ()
    photo: bool = True  # a photo message (caption + image) or a text message
    image: str | None = None  # PLACEHOLDER, a preview URL, RESULT; None = leave the image as it is
    final: bool = False


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def cut(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 units, with an ellipsis when it was longer."""
    if utf16_len(text) <= limit:
        return text
    out = text[: max(0, limit - 1)]
    while utf16_len(out) > limit - 1:
        out = out[:-1]
    return out + "…"


def footer(job: Job) -> str:
    # TRANSLATORS: who asked, when their name is unknown (the message footer: provider · who · job id)
    name = job.owner.name or t("someone")
    return t("{provider} · {name} · job {job_id}", provider=job.provider, name=name, job_id=job.id)


def job_rows(job: Job) -> Rows:
    """The buttons as (label, callback_data); a link button's data is `url:<url>`, or `webapp:<url>`
    in a private chat over HTTPS (Telegram allows Web App buttons only there; elsewhere the plain link)."""
    private = job.placement is not None and not job.placement.chat_id.startswith("-")

    def link(url: str) -> str:
        return f"webapp:{url}" if private and url.startswith("https://") else f"url:{url}"

    return tuple(
        tuple((button.label, link(button.url) if button.url else button.ref.pack()) for button in row)
        for row in presentation.buttons(job)
    )


def caption(job: Job, queue_position: int = 0, limit: int = CAPTION_LIMIT) -> str:
    """Prompt (cut to fit), where the job stands (nothing once done), provider, who asked, job id."""
    done = job.state is JobState.SUCCEEDED
    status = "" if done else cut(presentation.status_line(job, queue_position), 400)
    tail = "\n".join(part for part in (status, footer(job)) if part)
    head = cut(presentation.title(job) or t("(no prompt)"), limit - utf16_len(tail) - 1)
    return f"{head}\n{tail}"


def describe_text(job: Job, queue_position: int = 0) -> str:
    """A describe job: its state, then the four prompts numbered like their buttons."""
    tail = footer(job)
    if job.state is not JobState.SUCCEEDED or not job.result or not job.result.prompts:
        status = cut(presentation.status_line(job, queue_position), 1000)
        return f"{presentation.title(job)}\n{status}\n{tail}"
    prompts = job.result.prompts
    summary = cut(job.result.summary, 1000) if job.result.summary else ""  # shorten's word scores
    share = (TEXT_LIMIT - utf16_len(tail) - utf16_len(summary) - 80) // len(prompts) - 6
    lines = [f"{i}. {cut(p, share)}" for i, p in enumerate(prompts, start=1)]
    if job.kind is Action.SHORTEN:
        intro = t("Shorten · press a number to imagine that prompt:")
    else:
        intro = t("Describe · press a number to imagine that prompt:")
    head = [part for part in (summary, intro) if part]
    return "\n\n".join([*head, *lines, tail])


def job_view(job: Job, queue_position: int = 0) -> View:
    """The message a job is shown in, at this moment of its life."""
    final = job.terminal
    rows = job_rows(job)
    if job.kind in TEXT_KINDS:
        return View(describe_text(job, queue_position), rows, photo=False, final=final)
    image: str | None = None
    if job.state is JobState.SUCCEEDED and job.result and (job.result.grid_url or job.result.image_urls):
        image = RESULT
    elif job.state is JobState.RUNNING and job.preview_url:
        image = job.preview_url
    return View(caption(job, queue_position), rows, photo=True, image=image, final=final)


def first_view(job: Job, queue_position: int) -> View:
    """The reply sent at once for a new job: a placeholder photo (or text) saying where it stands.

    Its `image` is None (what a photo shows before any preview), so a later view of the same state
    has the same fingerprint and is not sent again.

    A job that ended before its first reply (it ran while the bot was down) is first shown as still
    finishing; its result comes as the edit once the store knows the message. So a reply that a crash
    orphans before then (sent, its message id never stored: sent again after the restart) never shows
    a second copy of the result with live buttons."""
    if job.terminal:
        job = job.model_copy(update={"state": JobState.RUNNING, "progress": 100, "preview_url": None})
    return dataclasses.replace(job_view(job, queue_position), image=None)


def jobs_text(jobs: Sequence[Job]) -> str:
    if not jobs:
        return t("You have no jobs yet. Start one with /imagine <prompt>.")
    lines = [t("Your recent jobs:")]
    for job in jobs:
        state = presentation.state_name(job.state)
        if job.state is JobState.RUNNING:
            state = t("running {progress}%", progress=job.progress)
        lines.append(f"• {job.id} · {job.kind.value.replace('_', ' ')} · {state} · "
                     f"{cut(presentation.title(job) or '-', 80)}")
    return cut("\n".join(lines), TEXT_LIMIT)


#: A job's state as /jobs lists it (the English is the state's value, "_" as a space).
def error_text(message: str) -> str:
    return cut(f"⚠️ {message}", TEXT_LIMIT)


#: How to use a command typed without what it needs (marked here, translated where shown: `t(USAGE[...])`).
USAGE = {
    "imagine": N_("Usage: /imagine <prompt> [--ar 16:9] [--seed 42] …\n"
                  "Example: /imagine a red fox in snow --ar 3:2"),
    "describe": N_("Send a photo with /describe as its caption, or reply /describe to a photo."),
    "blend": N_("Send an album of 2–5 photos with /blend as its caption, or reply /blend to an album. "
                "Add portrait, square or landscape to choose the shape."),
    "cancel": N_("Reply /cancel to a job's message, or send /cancel <job id>."),
    "shorten": N_("Usage: /shorten <prompt>: which words matter most, and up to five shorter prompts.\n"
                  "Example: /shorten a very beautiful lighthouse on a cliff at dusk, highly detailed"),
}


def help_text(bot_username: str) -> str:
    return "\n".join([
        t("I turn prompts into images."),
        "",
        t("/imagine <prompt> — four images in a grid; then U1–U4 upscale, V1–V4 vary, 🔄 rerolls"),
        t("/describe — reply to a photo (or caption a photo): four prompts that could have made it"),
        t("/blend — reply to an album of 2–5 photos (or caption the album): blend them"),
        t("/shorten <prompt> — the words that matter most, and up to five shorter prompts to imagine"),
        t("/jobs — your recent jobs and where they stand"),
        t("/cancel — reply to a job's message to cancel it while it waits"),
        t("/settings — your default provider, aspect ratio and speed; "
          "Remix (V, 🔄, pans ask for the prompt)"),
        t("/info — the providers and their queues, your usage and what is left"),
        t("/admin — for group administrators: bans, limits, stats"),
        "",
        t("Flags: --ar 16:9, --seed 42, --no cars, --stylize 250, --chaos 20, --fast/--relax, --remix …"),
        t("Several jobs at once: a {red, green} bird (one per option), --repeat 3 (three runs)."),
        t("In groups, commands may be addressed as /imagine@{bot}.", bot=bot_username),
        t("In a private chat any plain message is an /imagine."),
    ])  # fmt: skip


def settings_text(owner: Owner, current: dict[str, str], default_provider: str,
                  language: str | None = None) -> str:
    """The /settings message; `language` is the person's choice as `keyboards.language_name` shows it."""
    lines = [
        t("Settings for {name} (used by /imagine):", name=owner.name or t("you")),
        t("Provider: {option}", option=current.get("provider", default_provider)),
        t("Aspect ratio: {option}", option=current.get("aspect_ratio") or t("1:1 (default)")),
        t("Speed: {option}", option=current.get("speed") or t("the provider default")),
        t("Remix: {option} (on: variations, rerolls and pans ask for the prompt first)",
          option=current.get("remix", "off")),
    ]
    if language is not None:
        lines.append(t("Language: {language}", language=language))
    return "\n".join(lines)
