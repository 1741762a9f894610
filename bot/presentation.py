"""Platform-neutral presentation of a job: its status line and its button layout.

Both frontends render from these pure functions, so Discord and Telegram show the same words and
the same buttons; each frontend's own render module only maps them onto its platform's types.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain import PICK_PROMPT, ActionRef, Job, JobState, button_label
from bot.i18n import N_, t, tn
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

#: A button press's acknowledgement, by action ({label}: the button's, e.g. U2); others: "{label}…".
_VERBS: dict[str, str] = {
    # TRANSLATORS: a short pop-up after pressing a button; {label} is the button (U2)
    Action.UPSCALE.value: N_("Upscaling {label}…"),
    # TRANSLATORS: a short pop-up after pressing a button; {label} is the button (V2)
    Action.VARIATION.value: N_("Making variations of {label}…"),
    # TRANSLATORS: a short pop-up after pressing a button; {label} is the button (🔄)
    Action.REROLL.value: N_("Rerolling {label}…"),
    # TRANSLATORS: a short pop-up after pressing a button; {label} is the number of a prompt
    PICK_PROMPT: N_("Imagining prompt {label}…"),
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
        if queue_position > 1:
            return t("Queued · position {position}", position=queue_position)
        return t("Starting…")
    if job.state is JobState.SUBMITTING:
        return t("Starting…")
    if job.state is JobState.SUBMITTED:
        return t("Submitted · waiting for the provider…")
    if job.state is JobState.RUNNING:
        return t("Running · {percent}% {bar}", percent=job.progress, bar=progress_bar(job.progress))
    if job.state is JobState.SUCCEEDED:
        return t("Done")
    if job.state is JobState.CANCELLED:
        return t("Cancelled. {reason}", reason=job.error) if job.error else t("Cancelled.")
    if job.state is JobState.TIMED_OUT:
        return t("Timed out. {reason}", reason=job.error) if job.error else t("Timed out.")
    if job.error:
        return t("Failed: {reason}", reason=job.error)
    return t("Failed: the provider could not generate this image.")


def congestion_status(held: int) -> str:
    """A busy chat's one status message, instead of a placeholder per job."""
    if not held:
        return t("✅ Every job asked for here has its message.")
    return tn("⏳ {n} more job is being made. This chat is busy, so each result is posted here as soon as "
              "it is ready, without a progress message first.",
              "⏳ {n} more jobs are being made. This chat is busy, so each result is posted here as soon as "
              "it is ready, without a progress message first.", held)


def toast(action: str, index: int) -> str:
    """The short acknowledgement of a button press: "Upscaling U2…", "Vary (Strong)…"."""
    label = button_label(action, index)
    verb = _VERBS.get(action)
    return t(verb, label=label) if verb else f"{label}…"


def title(job: Job) -> str:
    """What a job is, for a caption or embed title: the prompt, or what was done to which parent."""
    if job.kind is Action.DESCRIBE:
        return t("Describe")
    if job.kind is Action.BLEND:
        return tn("Blend of {n} image", "Blend of {n} images", len(job.request.images))
    prompt = job.request.prompt.full() if job.request.prompt else ""
    if job.kind is Action.SHORTEN:
        return t("Shorten · {prompt}", prompt=prompt)
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
        return tn("{n} job from your prompt (--repeat {runs}): {prompt}",
                  "{n} jobs from your prompt (--repeat {runs}): {prompt}", len(jobs), runs=runs,
                  prompt=shorten(prompts[0], 200))
    each = max(40, 1800 // len(prompts))  # every one listed within Discord's 2000 characters
    listed = "\n".join(f"• {shorten(prompt, each)}" for prompt in prompts)
    if runs > 1 and runs * len(prompts) == len(jobs):
        return tn("{n} job from your permutations, each {runs} times:\n{prompts}",
                  "{n} jobs from your permutations, each {runs} times:\n{prompts}", len(jobs), runs=runs,
                  prompts=listed)
    return tn("{n} job from your permutations:\n{prompts}", "{n} jobs from your permutations:\n{prompts}",
              len(jobs), prompts=listed)


def shorten(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis when it is longer."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


_STATES = {
    JobState.QUEUED: N_("queued"),
    JobState.SUBMITTING: N_("submitting"),
    JobState.SUBMITTED: N_("submitted"),
    JobState.RUNNING: N_("running"),
    JobState.SUCCEEDED: N_("succeeded"),
    JobState.FAILED: N_("failed"),
    JobState.CANCELLED: N_("cancelled"),
    JobState.TIMED_OUT: N_("timed out"),
}


def state_name(state: JobState) -> str:
    """A job's state in words, in the current language."""
    words = _STATES.get(state)
    return t(words) if words else state.value.replace("_", " ")


def provider_state(held: bool, rate_limited_until: float | None, now: float) -> str:
    """How /info describes a provider: available, held by an admin, or waiting out its Retry-After."""
    if held:
        return t("paused by an admin")
    if rate_limited_until is not None and rate_limited_until > now:
        return t("rate-limited by the provider · resumes in {seconds} s",
                 seconds=math.ceil(rate_limited_until - now))
    return t("available")
