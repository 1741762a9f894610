"""Platform-neutral presentation of a job: its status line and its button layout.

Both frontends render from these pure functions, so Discord and Telegram show the same words and
the same buttons; each frontend's own render module only maps them onto its platform's types.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain import PICK_PROMPT, ActionRef, Job, JobState, button_label
from providers.base import UPSCALE_FOLLOWUPS, Action

_ROWS: tuple[tuple[Action, ...], ...] = (
    (Action.UPSCALE,),
    (Action.VARIATION, Action.REROLL),
    (Action.VARY_SUBTLE, Action.VARY_STRONG, Action.VARY_REGION, Action.UPSCALE_SUBTLE,
     Action.UPSCALE_CREATIVE),
    (Action.ZOOM_OUT_2X, Action.ZOOM_OUT_1_5X, Action.CUSTOM_ZOOM, Action.VIDEO, Action.VIDEO_EXTEND),
    (Action.PAN_LEFT, Action.PAN_RIGHT, Action.PAN_UP, Action.PAN_DOWN),
    (Action.UPSCALE_2X, Action.UPSCALE_4X, Action.REDO_UPSCALE, Action.MAKE_SQUARE),
)
assert {a for row in _ROWS[2:] for a in row} >= set(UPSCALE_FOLLOWUPS)

_VERBS: dict[str, str] = {
    Action.UPSCALE.value: "Upscaling",
    Action.VARIATION.value: "Making variations of",
    Action.REROLL.value: "Rerolling",
    PICK_PROMPT: "Imagining prompt",
}


@dataclass(frozen=True)
class Button:
    label: str
    ref: ActionRef
    url: str | None = None  # a link button (Vary (Region)'s web editor) rather than a press


#: Where the web pages are (`webhooks.public_url`), set at startup when `web.enabled`; without it the
#: buttons that open a page (Vary (Region)) are not shown.
_web: dict[str, str] = {}


def set_web_url(public_url: str | None) -> None:
    _web.clear()
    if public_url:
        _web["url"] = public_url.rstrip("/")


def editor_url(job_id: str) -> str | None:
    """The Vary (Region) editor of `job_id`, when the web pages are served."""
    return f"{_web['url']}/web/jobs/{job_id}/vary-region" if "url" in _web else None


def buttons(job: Job) -> list[list[Button]]:
    """The rows of buttons a finished job offers (at most 5 rows of at most 5), in a fixed order."""
    if job.state is not JobState.SUCCEEDED:
        return []
    if job.result and job.result.prompts:
        count = len(job.result.prompts)
        return [[Button(str(i), ActionRef(PICK_PROMPT, i, job.id)) for i in range(1, count + 1)]]
    offered = job.offers()
    rows: list[list[Button]] = []
    for row_actions in _ROWS:
        row = [
            Button(button_label(action.value, index), ActionRef(action.value, index, job.id),
                   editor_url(job.id) if action is Action.VARY_REGION else None)
            for action in row_actions
            for offered_action, index in offered
            if offered_action is action and (action is not Action.VARY_REGION or "url" in _web)
        ]
        for start in range(0, len(row), 5):
            rows.append(row[start : start + 5])
    return rows[:5]


def progress_bar(percent: int, width: int = 10) -> str:
    filled = max(0, min(width, round(percent * width / 100)))
    return "▰" * filled + "▱" * (width - filled)


def status_line(job: Job, queue_position: int = 0) -> str:
    """One line saying where a job stands: "Queued · position 3", "Running · 45% ▰▰▰▰▱…", ..."""
    if job.state is JobState.QUEUED:
        return f"Queued · position {queue_position}" if queue_position > 1 else "Starting…"
    if job.state is JobState.SUBMITTING:
        return "Starting…"
    if job.state is JobState.SUBMITTED:
        return "Submitted · waiting for the provider…"
    if job.state is JobState.RUNNING:
        return f"Running · {job.progress}% {progress_bar(job.progress)}"
    if job.state is JobState.SUCCEEDED:
        return "Done"
    if job.state is JobState.CANCELLED:
        return f"Cancelled. {job.error or ''}".strip()
    if job.state is JobState.TIMED_OUT:
        return f"Timed out. {job.error or ''}".strip()
    return f"Failed: {job.error or 'the provider could not generate this image.'}"


def congestion_status(held: int) -> str:
    """A busy chat's one status message, instead of a placeholder per job."""
    if not held:
        return "✅ Every job asked for here has its message."
    jobs = "1 more job is" if held == 1 else f"{held} more jobs are"
    return (f"⏳ {jobs} being made. This chat is busy, so each result is posted here as soon as it is "
            "ready, without a progress message first.")


def toast(action: str, index: int) -> str:
    """The short acknowledgement of a button press: "Upscaling U2…", "Vary (Strong)…"."""
    label = button_label(action, index)
    verb = _VERBS.get(action)
    return f"{verb} {label}…" if verb else f"{label}…"


def title(job: Job) -> str:
    """What a job is, for a caption or embed title: the prompt, or what was done to which parent."""
    if job.kind is Action.DESCRIBE:
        return "Describe"
    if job.kind is Action.BLEND:
        return f"Blend of {len(job.request.images)} images"
    prompt = job.request.prompt.full() if job.request.prompt else ""
    if job.kind is Action.SHORTEN:
        return f"Shorten · {prompt}"
    if job.parent_id and job.kind is not Action.IMAGINE:
        return f"{button_label(job.kind.value, job.index)} · {prompt}"
    if job.batch is not None:  # one of several jobs from one prompt: which one, so the chat reads in order
        return f"{job.batch[0]}/{job.batch[1]} · {prompt}"
    return prompt


def batch_summary(jobs: Sequence[Job]) -> str:
    """The answer before the messages of a prompt's several jobs: how many, and which prompts."""
    prompts = list(dict.fromkeys(job.request.prompt.full() for job in jobs if job.request.prompt))
    runs = len(jobs) // max(1, len(prompts))
    if len(prompts) == 1:
        return f"{len(jobs)} jobs from your prompt (--repeat {runs}): {shorten(prompts[0], 200)}"
    times = f", each {runs} times" if runs > 1 and runs * len(prompts) == len(jobs) else ""
    each = max(40, 1800 // len(prompts))  # every one listed within Discord's 2000 characters
    listed = "\n".join(f"• {shorten(prompt, each)}" for prompt in prompts)
    return f"{len(jobs)} jobs from your permutations{times}:\n{listed}"


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def provider_state(held: bool, rate_limited_until: float | None, now: float) -> str:
    """How /info describes a provider: available, held by an admin, or waiting out its Retry-After."""
    if held:
        return "paused by an admin"
    if rate_limited_until is not None and rate_limited_until > now:
        return f"rate-limited by the provider · resumes in {math.ceil(rate_limited_until - now)} s"
    return "available"
