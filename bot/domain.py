"""The bot's domain model: jobs, their states and transitions, and the button payload (ActionRef)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from bot import i18n
from bot.i18n import N_, t
from providers.base import (
    Action,
    GenerationRequest,
    ParentTask,
    TaskResult,
    TaskSnapshot,
    TaskStatus,
    parse_offer_key,
)

__all__ = [
    "CLI_PLATFORM",
    "LIVE_AT_PROVIDER",
    "TERMINAL",
    "Action",
    "ActionRef",
    "Job",
    "JobState",
    "Owner",
    "Placement",
    "can_transition",
    "merge_snapshot",
    "new_job_id",
    "same_person",
]


class JobState(StrEnum):
    QUEUED = "queued"  # waiting for provider capacity
    SUBMITTING = "submitting"  # claimed by one process; its submit is in flight or its outcome unknown
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @classmethod
    def from_task(cls, status: TaskStatus) -> JobState:
        return cls(status.value)

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT})

#: States of a job that holds (or may hold) a task at the provider: they count against its concurrency.
LIVE_AT_PROVIDER = frozenset({JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING})
_ACTIVE = (JobState.SUBMITTED, JobState.RUNNING)
_ENDINGS = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.TIMED_OUT)

#: The only moves a job can make. Terminal states have none; nothing moves backwards, except that a
#: submit known not to have reached the provider (refused, busy, unreachable) releases its claim.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.SUBMITTING, *_ACTIVE, *_ENDINGS}),
    JobState.SUBMITTING: frozenset({JobState.QUEUED, *_ACTIVE, *_ENDINGS}),
    JobState.SUBMITTED: frozenset({JobState.RUNNING, *_ENDINGS}),
    JobState.RUNNING: frozenset(_ENDINGS),
    **{state: frozenset() for state in _ENDINGS},
}


def can_transition(old: JobState, new: JobState) -> bool:
    return new in TRANSITIONS[old]


_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # base32 without look-alikes (l, o, 0, 1)
JOB_ID_LENGTH = 10


def new_job_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(JOB_ID_LENGTH))


CLI_PLATFORM = "cli"  # the owner platform of jobs asked for from the terminal


class Owner(BaseModel):
    """Who asked: platform ("discord", "telegram", "cli"), their id and display name."""

    platform: str
    user_id: str
    name: str = ""


def same_person(a: Owner, b: Owner) -> bool:
    """The one owner comparison: the same account on the same platform. The display name is left out
    (it changes, and an anonymous admin's jobs carry the group's)."""
    return (a.platform, a.user_id) == (b.platform, b.user_id)


class Placement(BaseModel):
    """Where a job is shown: the chat and the message the bot edits in place."""

    platform: str
    chat_id: str
    message_id: str | None = None  # None until the job's first reply is sent (see `reply_to`)
    thread_id: str | None = None
    reply_to: str | None = None  # the message (a command, a pressed button's) the first reply answers


_BATCH_RE = re.compile(r"#([0-9]+)/([0-9]+)$")


def batch_origins(origin: str | None, size: int) -> list[str | None]:
    """The origins of the `size` jobs one event makes: the event itself for one job; for several, each
    its place in the set (deterministic, so the event processed again finds the same jobs)."""
    if origin is None or size == 1:
        return [origin] * size
    return [f"{origin}#{n}/{size}" for n in range(1, size + 1)]


class Job(BaseModel):
    id: str
    kind: Action
    parent_id: str | None = None
    index: int = 0
    provider: str
    provider_task_id: str | None = None
    request: GenerationRequest
    state: JobState = JobState.QUEUED
    progress: int = 0
    preview_url: str | None = None
    result: TaskResult | None = None
    actions: dict[str, str] = Field(default_factory=dict)
    provider_data: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    owner: Owner
    placement: Placement | None = None
    created_at: float
    updated_at: float
    deadline: float
    next_poll_at: float | None = None
    poll_failures: int = 0
    submit_attempts: int = 0
    tried_providers: list[str] = Field(default_factory=list)
    submit_key: str | None = None  # the attempt key of the submit in flight (state `submitting`)
    submit_started: float | None = None
    claimed_until: float | None = None  # the lease of the process submitting it
    # the platform event that created it ("telegram:<update_id>"): unique; one of several jobs made by
    # one event (permutations, --repeat) adds its place in the set, "telegram:<update_id>#2/4"
    origin: str | None = None
    locale: str = "en"  # the language it was asked in (bot/i18n.py): its message is written in it

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    @property
    def batch(self) -> tuple[int, int] | None:
        """(n, size) of a job made with others by one prompt (its message shows "n/size"), else None."""
        match = _BATCH_RE.search(self.origin or "")
        return (int(match[1]), int(match[2])) if match else None

    @property
    def event(self) -> str | None:
        """The platform event that created the job (the same for every job of a set)."""
        return _BATCH_RE.sub("", self.origin) if self.origin else None

    def offers(self) -> list[tuple[Action, int]]:
        """The follow-up actions this job's result offers, in the provider's order."""
        return [parse_offer_key(key) for key in self.actions]

    def as_parent(self) -> ParentTask:
        return ParentTask(
            task_id=self.provider_task_id,
            kind=self.kind,
            request=self.request,
            result=self.result,
            actions=self.actions,
            extra=self.provider_data,
        )


#: The pseudo-action of a describe result's "imagine prompt N" buttons.
PICK_PROMPT = "pick"

_ACTION_CODES: dict[str, str] = {
    **{action.value: code for action, code in (
        (Action.UPSCALE, "u"),
        (Action.VARIATION, "v"),
        (Action.REROLL, "r"),
        (Action.VARY_SUBTLE, "vs"),
        (Action.VARY_STRONG, "vS"),
        (Action.UPSCALE_SUBTLE, "us"),
        (Action.UPSCALE_CREATIVE, "uc"),
        (Action.ZOOM_OUT_2X, "z2"),
        (Action.ZOOM_OUT_1_5X, "z15"),
        (Action.PAN_LEFT, "pl"),
        (Action.PAN_RIGHT, "pr"),
        (Action.PAN_UP, "pu"),
        (Action.PAN_DOWN, "pd"),
        (Action.VIDEO, "an"),
        (Action.VIDEO_EXTEND, "ax"),
        (Action.UPSCALE_2X, "u2x"),
        (Action.UPSCALE_4X, "u4x"),
        (Action.REDO_UPSCALE, "ru"),
        (Action.MAKE_SQUARE, "sq"),
        (Action.CUSTOM_ZOOM, "cz"),
        (Action.VARY_REGION, "vr"),
        (Action.SHORTEN, "sh"),
        (Action.DESCRIBE, "d"),
        (Action.BLEND, "b"),
        (Action.IMAGINE, "i"),
    )},
    PICK_PROMPT: "p",
}
_CODE_ACTIONS = {code: name for name, code in _ACTION_CODES.items()}
_REF_RE = re.compile(r"^ib:(?P<code>[a-zA-Z0-9]{1,4}):(?P<index>[0-9]):(?P<job>[a-z0-9]{1,16})$")


@dataclass(frozen=True)
class ActionRef:
    """A button's payload: which action, which index, on which job. All other state is in the store.

    Packed as ``ib:<code>:<index>:<job_id>`` (at most 26 ASCII bytes), well inside Telegram's
    64-byte callback_data and Discord's 100-char custom_id.
    """

    action: str  # an Action value, or PICK_PROMPT
    index: int
    job_id: str

    PATTERN = r"ib:(?P<code>[a-zA-Z0-9]{1,4}):(?P<index>[0-9]):(?P<job>[a-z0-9]{1,16})"

    def pack(self) -> str:
        return f"ib:{_ACTION_CODES[self.action]}:{self.index}:{self.job_id}"

    @classmethod
    def unpack(cls, data: str) -> ActionRef | None:
        """The ref in `data`, or None if it is not one of ours (or is malformed)."""
        match = _REF_RE.fullmatch(data)  # `$` alone would accept a trailing newline
        if match is None or match["code"] not in _CODE_ACTIONS:
            return None
        return cls(_CODE_ACTIONS[match["code"]], int(match["index"]), match["job"])


_ORDER = {state: rank for rank, state in enumerate(JobState)}


def merge_snapshot(job: Job, snapshot: TaskSnapshot, now: float) -> Job | None:
    """`job` updated by a provider report, or None when the report changes nothing.

    Idempotent and order-tolerant: a terminal job never changes, states never move backwards,
    progress never decreases, so duplicate and out-of-order webhooks or polls are harmless.
    """
    if job.terminal:
        return None
    update: dict[str, Any] = {}
    state = JobState.from_task(snapshot.status)
    if state != job.state and can_transition(job.state, state) and _ORDER[state] > _ORDER[job.state]:
        update["state"] = state
    final = update.get("state", job.state)
    progress = 100 if final is JobState.SUCCEEDED else max(job.progress, snapshot.progress or 0)
    if progress != job.progress:
        update["progress"] = progress
    if snapshot.preview_url and snapshot.preview_url != job.preview_url and not final.terminal:
        update["preview_url"] = snapshot.preview_url
    if final is JobState.SUCCEEDED and snapshot.result is not None:
        update["result"] = snapshot.result
        update["actions"] = snapshot.actions
    if final is JobState.FAILED:
        with i18n.use(job.locale):  # stored on the job: in the language it was asked in
            update["error"] = snapshot.error or t("The provider could not generate this image.")
    if snapshot.extra and {**job.provider_data, **snapshot.extra} != job.provider_data:
        update["provider_data"] = {**job.provider_data, **snapshot.extra}
    if not update:
        return None
    if final.terminal:
        update["next_poll_at"] = None
    update["updated_at"] = now
    return job.model_copy(update=update)


#: How a button or CLI argument names each action (index-free ones; U/V/P take 1-4), in English:
#: `button_label` translates them (the emoji-only ones stay).
ACTION_LABELS: dict[str, str] = {
    Action.REROLL.value: "🔄",
    Action.VARY_SUBTLE.value: N_("Vary (Subtle)"),
    Action.VARY_STRONG.value: N_("Vary (Strong)"),
    Action.UPSCALE_SUBTLE.value: N_("Upscale (Subtle)"),
    Action.UPSCALE_CREATIVE.value: N_("Upscale (Creative)"),
    Action.ZOOM_OUT_2X.value: N_("Zoom Out 2x"),
    Action.ZOOM_OUT_1_5X.value: N_("Zoom Out 1.5x"),
    Action.PAN_LEFT.value: "⬅️",
    Action.PAN_RIGHT.value: "➡️",
    Action.PAN_UP.value: "⬆️",
    Action.PAN_DOWN.value: "⬇️",
    Action.VIDEO.value: N_("Animate"),
    Action.VIDEO_EXTEND.value: N_("Extend video"),
    Action.UPSCALE_2X.value: N_("Upscale (2x)"),
    Action.UPSCALE_4X.value: N_("Upscale (4x)"),
    Action.REDO_UPSCALE.value: N_("Redo Upscale"),
    Action.MAKE_SQUARE.value: N_("Make Square"),
    Action.CUSTOM_ZOOM.value: N_("🔍 Custom Zoom"),
    Action.VARY_REGION.value: N_("🖌️ Vary (Region)"),
}
_INDEXED = {"u": Action.UPSCALE.value, "v": Action.VARIATION.value, "p": PICK_PROMPT}
#: The one CLI spelling of each index-free action (U, V and P take 1-4: U2, V3, P1): the action's own
#: name with hyphens, the way its button reads ("Zoom Out 2x" is zoom-out-2x). Only these are printed.
ACTION_NAMES: dict[str, str] = {
    Action.REROLL.value: "reroll",
    Action.VARY_SUBTLE.value: "vary-subtle",
    Action.VARY_STRONG.value: "vary-strong",
    Action.UPSCALE_SUBTLE.value: "upscale-subtle",
    Action.UPSCALE_CREATIVE.value: "upscale-creative",
    Action.ZOOM_OUT_2X.value: "zoom-out-2x",
    Action.ZOOM_OUT_1_5X.value: "zoom-out-1.5x",
    Action.PAN_LEFT.value: "pan-left",
    Action.PAN_RIGHT.value: "pan-right",
    Action.PAN_UP.value: "pan-up",
    Action.PAN_DOWN.value: "pan-down",
    Action.VIDEO.value: "animate",
    Action.VIDEO_EXTEND.value: "extend",
    Action.UPSCALE_2X.value: "upscale-2x",
    Action.UPSCALE_4X.value: "upscale-4x",
    Action.REDO_UPSCALE.value: "redo-upscale",
    Action.MAKE_SQUARE.value: "make-square",
    Action.CUSTOM_ZOOM.value: "custom-zoom",
    Action.VARY_REGION.value: "vary-region",
}
#: Other spellings still understood (older CLI names, the button labels, the stored action values),
#: after `_normal` has lower-cased them and made spaces and underscores hyphens; never printed.
_ALIASES = {
    "r": Action.REROLL.value, "🔄": Action.REROLL.value,
    "zoom-2x": Action.ZOOM_OUT_2X.value, "zoom-1.5x": Action.ZOOM_OUT_1_5X.value,
    "zoom-out-1-5x": Action.ZOOM_OUT_1_5X.value,
    "video": Action.VIDEO.value, "video-extend": Action.VIDEO_EXTEND.value,
    "extend-video": Action.VIDEO_EXTEND.value,
}  # fmt: skip
_NAMES = {name: action for action, name in ACTION_NAMES.items()} | _ALIASES


def button_label(action: str, index: int) -> str:
    """The text on a button: U2, V3, 🔄, Vary (Strong), 2 (a describe prompt) ..."""
    if action == Action.UPSCALE.value:
        return f"U{index}"
    if action == Action.VARIATION.value:
        return f"V{index}"
    if action == PICK_PROMPT:
        return str(index)
    label = ACTION_LABELS.get(action)
    return t(label) if label is not None else action.replace("_", " ")


def action_name(action: str, index: int) -> str:
    """The CLI spelling of an action: U2, V3, P1, reroll, vary-strong, zoom-out-2x ..."""
    prefix = {v: k.upper() for k, v in _INDEXED.items()}.get(action)
    if prefix:
        return f"{prefix}{index}"
    return ACTION_NAMES.get(action, action)


def _normal(text: str) -> str:
    """`Zoom Out 2x`, `zoom_out_2x`, `Vary (Subtle)` -> zoom-out-2x, vary-subtle."""
    return re.sub(r"[\s_]+", "-", re.sub(r"[()]", "", text.strip().lower()))


def parse_action_name(text: str) -> tuple[str, int] | None:
    """`U2` -> ("upscale", 2), `vary-strong` -> ("vary_strong", 0), any case and any of the aliases;
    None if it names no action."""
    name = _normal(text)
    if len(name) == 2 and name[0] in _INDEXED and (name[1] in "1234" or name == "p5"):  # P5: a shorten's
        return _INDEXED[name[0]], int(name[1])
    if name in _NAMES:
        return _NAMES[name], 0
    return None
