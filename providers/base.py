"""The provider contract: the vocabulary every adapter speaks and the protocol it implements.

`providers/` never imports `bot/`; the bot's domain model builds on these types.
Adapters translate JSON <-> these models in pure functions and keep their async methods short.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

if TYPE_CHECKING:
    from providers.errors import ProviderRejected


class Action(StrEnum):
    """Everything a user can ask for: commands (imagine, describe, ...) and buttons (upscale, ...)."""

    IMAGINE = "imagine"
    DESCRIBE = "describe"
    BLEND = "blend"
    SHORTEN = "shorten"
    UPSCALE = "upscale"
    VARIATION = "variation"
    REROLL = "reroll"
    VARY_SUBTLE = "vary_subtle"
    VARY_STRONG = "vary_strong"
    UPSCALE_SUBTLE = "upscale_subtle"
    UPSCALE_CREATIVE = "upscale_creative"
    ZOOM_OUT_2X = "zoom_out_2x"
    ZOOM_OUT_1_5X = "zoom_out_1_5x"
    PAN_LEFT = "pan_left"
    PAN_RIGHT = "pan_right"
    PAN_UP = "pan_up"
    PAN_DOWN = "pan_down"
    VIDEO = "video"
    VIDEO_EXTEND = "video_extend"
    UPSCALE_2X = "upscale_2x"  # Midjourney v5's "Upscale (2x)"
    UPSCALE_4X = "upscale_4x"
    REDO_UPSCALE = "redo_upscale"  # "Redo Upscale (...)": the upscaler that made this image, again
    MAKE_SQUARE = "make_square"  # outpaint a non-square image to 1:1
    CUSTOM_ZOOM = "custom_zoom"  # zoom out by 1.0-2.0 with an edited prompt (`zoom` on the request)
    VARY_REGION = "vary_region"  # repaint the masked region (`mask` on the request), from the web editor


#: Actions that start a job from user input rather than from a parent job.
COMMANDS = frozenset({Action.IMAGINE, Action.DESCRIBE, Action.BLEND, Action.SHORTEN})

#: Actions a grid (imagine, variation, reroll, blend, ...) offers, with their indexes.
GRID_ACTIONS: tuple[tuple[Action, int], ...] = (
    *((Action.UPSCALE, i) for i in range(1, 5)),
    *((Action.VARIATION, i) for i in range(1, 5)),
    (Action.REROLL, 0),
)

#: Follow-ups an upscaled single image offers (index 0: they act on the image itself).
UPSCALE_FOLLOWUPS: tuple[Action, ...] = (
    Action.VARY_SUBTLE,
    Action.VARY_STRONG,
    Action.UPSCALE_SUBTLE,
    Action.UPSCALE_CREATIVE,
    Action.ZOOM_OUT_2X,
    Action.ZOOM_OUT_1_5X,
    Action.PAN_LEFT,
    Action.PAN_RIGHT,
    Action.PAN_UP,
    Action.PAN_DOWN,
    Action.VIDEO,
    Action.UPSCALE_2X,
    Action.UPSCALE_4X,
    Action.REDO_UPSCALE,  # only on an image an upscaler made (not on a plain U1-U4)
    Action.MAKE_SQUARE,  # only on a non-square image
    Action.CUSTOM_ZOOM,
)

#: Follow-ups of an upscale pressed on the web editor rather than in the chat (they need a drawn mask).
WEB_FOLLOWUPS: tuple[Action, ...] = (Action.VARY_REGION,)

#: Follow-ups whose result is again a single image (an upscaler's output).
UPSCALERS = frozenset(
    {Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE, Action.UPSCALE_2X, Action.UPSCALE_4X,
     Action.REDO_UPSCALE}
)  # fmt: skip

#: Custom Zoom's factor range (Midjourney's `--zoom`): 1.0 keeps the frame, 2.0 is Zoom Out 2x.
ZOOM_RANGE = (1.0, 2.0)

#: Actions that take a Remix prompt: with Remix on they ask for the prompt (pre-filled with the
#: parent's) and run with the edited one. Upscales keep the picture, so they have nothing to remix.
REMIXABLE = frozenset(
    {
        Action.VARIATION,
        Action.VARY_SUBTLE,
        Action.VARY_STRONG,
        Action.REROLL,
        Action.PAN_LEFT,
        Action.PAN_RIGHT,
        Action.PAN_UP,
        Action.PAN_DOWN,
    }
)

#: Actions whose result is a grid of four (their results offer GRID_ACTIONS).
GRID_PRODUCING = frozenset(
    {
        Action.IMAGINE,
        Action.BLEND,
        Action.VARIATION,
        Action.REROLL,
        Action.VARY_SUBTLE,
        Action.VARY_STRONG,
        Action.ZOOM_OUT_2X,
        Action.ZOOM_OUT_1_5X,
        Action.PAN_LEFT,
        Action.PAN_RIGHT,
        Action.PAN_UP,
        Action.PAN_DOWN,
        Action.MAKE_SQUARE,
        Action.CUSTOM_ZOOM,
        Action.VARY_REGION,
    }
)


def offer_key(action: Action, index: int = 0) -> str:
    """Key of an offered follow-up in `TaskSnapshot.actions`, e.g. ``"upscale:2"``."""
    return f"{action.value}:{index}"


def parse_offer_key(key: str) -> tuple[Action, int]:
    action, _, index = key.partition(":")
    return Action(action), int(index or 0)


class TaskStatus(StrEnum):
    """What a provider says about one of its tasks (the bot adds queued and timed_out)."""

    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


Speed = Literal["relax", "fast", "turbo"]
BlendDimensions = Literal["portrait", "square", "landscape"]


class Flag(StrEnum):
    """A Midjourney prompt flag, named as it is written in a prompt sent to Midjourney.

    `--repeat` is not one: the bot itself runs a prompt N times as N jobs (bot.prompt reads it), since
    a relay that passed it on would start N tasks of which the bot tracks, and charges, one."""

    ASPECT = "ar"
    VERSION = "v"
    NIJI = "niji"
    STYLIZE = "s"
    CHAOS = "c"
    QUALITY = "q"
    SEED = "seed"
    NO = "no"
    WEIRD = "weird"
    IMAGE_WEIGHT = "iw"
    STYLE = "style"
    TILE = "tile"
    STYLE_REF = "sref"
    STYLE_WEIGHT = "sw"
    STYLE_VERSION = "sv"
    CHARACTER_REF = "cref"
    CHARACTER_WEIGHT = "cw"
    OMNI_REF = "oref"
    OMNI_WEIGHT = "ow"
    PROFILE = "p"
    EXPERIMENTAL = "exp"
    DRAFT = "draft"
    STOP = "stop"
    VIDEO = "video"
    MOTION = "motion"


#: The flag table: each flag's `PromptParams` field, in the order `PromptParams.flags()` writes them.
FLAG_FIELDS: dict[Flag, str] = {
    Flag.ASPECT: "aspect_ratio",
    Flag.VERSION: "version",
    Flag.NIJI: "niji",
    Flag.STYLIZE: "stylize",
    Flag.CHAOS: "chaos",
    Flag.QUALITY: "quality",
    Flag.SEED: "seed",
    Flag.NO: "no",
    Flag.WEIRD: "weird",
    Flag.IMAGE_WEIGHT: "image_weight",
    Flag.STYLE: "style",
    Flag.TILE: "tile",
    Flag.STYLE_REF: "style_refs",
    Flag.STYLE_WEIGHT: "style_weight",
    Flag.STYLE_VERSION: "style_version",
    Flag.CHARACTER_REF: "character_refs",
    Flag.CHARACTER_WEIGHT: "character_weight",
    Flag.OMNI_REF: "omni_refs",
    Flag.OMNI_WEIGHT: "omni_weight",
    Flag.PROFILE: "profile",
    Flag.EXPERIMENTAL: "experimental",
    Flag.DRAFT: "draft",
    Flag.STOP: "stop",
    Flag.VIDEO: "video",
    Flag.MOTION: "motion",
}


class FlagPolicy(BaseModel):
    """What an adapter does with each prompt flag: `mapped` flags become API fields, `passed` flags
    go to Midjourney verbatim in the prompt text, and any other flag is refused (by the parser before
    a job is made, and by the adapter if a job reaches it anyway, e.g. through failover)."""

    model_config = ConfigDict(frozen=True)

    mapped: frozenset[Flag] = frozenset()
    passed: frozenset[Flag] = frozenset()

    def serves(self, flag: Flag) -> bool:
        return flag in self.mapped or flag in self.passed

    def refused(self, params: PromptParams | None) -> list[Flag]:
        """The flags of `params` this adapter cannot serve (empty: it serves them all)."""
        if params is None:
            return []
        return [flag for flag in params.given() if not self.serves(flag)]

    def rejection(self, provider: str, flag: Flag, typed: str | None = None) -> ProviderRejected:
        """The ProviderRejected saying `flag` (typed as `typed`) is refused by `provider` (its config
        name): `refusal()` is its English text, `check()` raises it."""
        from providers.errors import ProviderRejected

        served = ", ".join(f"--{f}" for f in Flag if self.serves(f))
        if served:
            return ProviderRejected(
                "{provider} does not support --{flag}; it supports {flags}.",
                provider=provider,
                flag=typed or flag.value,
                flags=served,
            )
        return ProviderRejected(
            "{provider} does not support --{flag}; it takes no flags.",
            provider=provider,
            flag=typed or flag.value,
        )

    def refusal(self, provider: str, flag: Flag, typed: str | None = None) -> str:
        """The user-facing reason `flag` (typed as `typed`) is refused by `provider` (its config name)."""
        return self.rejection(provider, flag, typed).message

    def check(self, provider: str, params: PromptParams | None) -> None:
        """Raise ProviderRejected for the first flag of `params` this adapter cannot serve."""
        refused = self.refused(params)
        if refused:
            raise self.rejection(provider, refused[0])


#: every flag, for adapters that hand the whole prompt to Midjourney
ALL_FLAGS = frozenset(Flag)


class Capabilities(BaseModel):
    """What a provider can do, declared truthfully: frontends show only these."""

    model_config = ConfigDict(frozen=True)

    actions: frozenset[Action] = frozenset({Action.IMAGINE})
    batch_fetch: int = 1  # max task ids per fetch call; 1 = one call per task
    webhooks: bool = False
    progress: bool = False
    preview: bool = False
    cancel: bool = False
    max_images: int = 0  # reference images accepted by imagine
    blend_range: tuple[int, int] = (2, 5)
    # `reconcile` can tell whether a submit whose outcome the bot never learned created a task
    reconcile: bool = False
    flags: FlagPolicy = FlagPolicy()  # prompt flags it maps or passes on; others are refused

    def can(self, action: Action) -> bool:
        return action in self.actions


class PromptParams(BaseModel):
    """A Midjourney-style prompt split into text and typed flags (parsed by `bot.prompt`)."""

    model_config = ConfigDict(frozen=True)

    text: str
    image_urls: tuple[str, ...] = ()  # image prompts given as leading URLs
    aspect_ratio: str | None = None
    version: str | None = None
    niji: str | None = None
    stylize: int | None = None
    chaos: int | None = None
    quality: float | None = None
    seed: int | None = None
    no: str | None = None
    weird: int | None = None
    tile: bool = False
    image_weight: float | None = None
    style: str | None = None
    # A reference list is None when its flag is absent; () is the flag alone: for --sref / --oref,
    # "the images given with the prompt" (where the adapter maps it), for --p the default profile.
    style_refs: tuple[str, ...] | None = None  # --sref: image URLs, style codes, "random"
    style_weight: int | None = None  # --sw
    style_version: int | None = None  # --sv
    character_refs: tuple[str, ...] | None = None  # --cref: image URLs
    character_weight: int | None = None  # --cw
    omni_refs: tuple[str, ...] | None = None  # --oref: one image URL
    omni_weight: int | None = None  # --ow
    profile: tuple[str, ...] | None = None  # --p / --profile: profile or moodboard codes
    experimental: int | None = None  # --exp
    draft: bool = False
    stop: int | None = None
    video: bool = False
    motion: str | None = None  # --motion low | high

    def given(self) -> list[Flag]:
        """The flags this prompt sets, in `FLAG_FIELDS` order."""
        values = ((flag, getattr(self, field)) for flag, field in FLAG_FIELDS.items())
        return [flag for flag, value in values if value is not None and value is not False]

    def flags(self) -> list[str]:
        """The flags in canonical Midjourney syntax, e.g. ``["--ar 16:9", "--v 7"]``."""
        out: list[str] = []
        for flag in self.given():
            value = getattr(self, FLAG_FIELDS[flag])
            words = value if isinstance(value, tuple) else () if value is True else (value,)
            out.append(" ".join([f"--{flag}", *map(str, words)]))
        return out

    def full(self) -> str:
        """Image URLs, text and flags as one Midjourney prompt string."""
        return " ".join([*self.image_urls, self.text, *self.flags()]).strip()


class ImageInput(BaseModel):
    """An image the user supplied: bytes (already checked) and, when known, a public URL.

    Stored, it is a reference: `sha256` names its bytes in the bot's store, and `data` is left out of
    the stored form (empty when read back) until the bytes are loaded for a submit. An input without
    `sha256` (made before the store kept inputs apart) carries its bytes inline."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    data: bytes = b""
    mime: str = "image/png"
    url: str | None = None
    filename: str = "image"
    sha256: str | None = None

    @field_serializer("data")
    def _stored_apart(self, data: bytes) -> bytes:
        return b"" if self.sha256 else data

    @property
    def loaded(self) -> bool:
        return bool(self.data) or self.sha256 is None

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


class GenerationRequest(BaseModel):
    """A command sent to a provider: imagine, describe, blend or shorten."""

    model_config = ConfigDict(frozen=True)

    kind: Action = Action.IMAGINE
    prompt: PromptParams | None = None
    images: tuple[ImageInput, ...] = ()
    speed: Speed | None = None
    dimensions: BlendDimensions | None = None
    callback_url: str | None = None
    client_ref: str | None = None  # the bot's attempt key, sent where the API carries one (reconcile)
    # --remix: this job's variations, rerolls and pans ask for the prompt first (kept by its children)
    remix: bool = False
    # an action whose prompt the person edited (Remix): `prompt` goes to the provider with the action
    remixed: bool = False
    zoom: float | None = None  # Custom Zoom's factor (ZOOM_RANGE); its edited prompt is `prompt`
    # Vary (Region)'s mask: a black/white PNG at the image's size, white = the region to repaint
    mask: ImageInput | None = None


class TaskResult(BaseModel):
    """A normalised result: grid + up to four images (+ videos) + describe/shorten prompts."""

    grid_url: str | None = None
    image_urls: list[str] = Field(default_factory=list)
    video_urls: list[str] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list)
    summary: str | None = None  # text shown above `prompts` (shorten's analysis of the prompt)
    width: int | None = None
    height: int | None = None


class TaskSnapshot(BaseModel):
    """What a provider reports about one task at one moment (from submit, fetch or a callback)."""

    task_id: str
    status: TaskStatus
    progress: int | None = None  # 0-100 when the provider reports it
    preview_url: str | None = None
    result: TaskResult | None = None
    error: str | None = None  # user-safe failure reason
    actions: dict[str, str] = Field(default_factory=dict)  # offer_key -> provider ref ("" if none)
    extra: dict[str, Any] = Field(default_factory=dict)  # provider-owned data, persisted with the job


class ParentTask(BaseModel):
    """What `act` needs to know about the job a button belongs to."""

    task_id: str | None
    kind: Action
    request: GenerationRequest
    result: TaskResult | None = None
    actions: dict[str, str] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


class ActRequest(BaseModel):
    """A button press sent to a provider."""

    model_config = ConfigDict(frozen=True)

    action: Action
    index: int = 0
    prompt: str | None = None  # remix / video-extend prompt, when the action takes one
    zoom: float | None = None  # Custom Zoom's factor; `prompt` is then the edited prompt, without --zoom
    remix: PromptParams | None = None  # Remix: the edited prompt, parsed (`prompt` is its full text)
    mask: ImageInput | None = None  # Vary (Region): black/white PNG, white = the region to repaint
    speed: Speed | None = None
    callback_url: str | None = None
    client_ref: str | None = None  # the bot's attempt key, sent where the API carries one (reconcile)


class SubmitAttempt(BaseModel):
    """A submit (or button press) whose outcome the bot never learned: a timeout, a connection lost
    after the request went out, or a process killed while it was in flight. `reconcile` looks for the
    task it may have created."""

    model_config = ConfigDict(frozen=True)

    client_ref: str  # sent with the request as `client_ref`
    kind: Action
    prompt: str | None = None  # the full prompt sent, for APIs that can only be searched by prompt
    parent_task_id: str | None = None  # for a button press: the task whose button it was
    index: int = 0
    started_at: float  # Unix time just before the request went out
    remix: bool = False  # a press with an edited prompt (sent as an imagine where the API has no remix)


class ProviderConfig(BaseModel):
    """Settings every provider entry has; adapters subclass it with `type: Literal[...]`."""

    model_config = ConfigDict(extra="forbid")
    #: Secret keys an entry of this type cannot work without (checked non-empty when the config loads).
    required_secrets: ClassVar[tuple[str, ...]] = ()

    name: str
    type: str
    base_url: str = ""
    api_key: SecretStr | None = None
    max_concurrency: int = Field(default=10, ge=1)
    fallbacks: list[str] = Field(default_factory=list)
    poll_interval: float = Field(default=3.0, gt=0)
    request_timeout: float = Field(default=30.0, gt=0)
    job_timeout: float = Field(default=900.0, gt=0)  # deadline per job, seconds
    max_prompt_length: int = Field(default=4000, ge=1)
    busy_wait: float = Field(default=120.0, ge=0)  # how long a busy provider may hold a job before failover
    # A submit whose outcome is unknown, on a provider that can't be asked whether it created a task:
    # false = fail the job and refund it (never risk a second charge); true = send it again.
    resubmit_unknown: bool = False


@runtime_checkable
class Provider(Protocol):
    """An image API adapter. Constructed with its config and the shared `httpx.AsyncClient`."""

    config: ProviderConfig
    capabilities: Capabilities

    async def start(self) -> None:
        """Called once before use (the local provider starts its image server here)."""

    async def aclose(self) -> None:
        """Release what `start` acquired."""

    async def submit(self, request: GenerationRequest) -> TaskSnapshot:
        """Start a command; the snapshot has at least the provider's task id."""

    async def act(self, parent: ParentTask, request: ActRequest) -> TaskSnapshot:
        """Press a button of `parent`. May return a finished snapshot (e.g. U1 served locally)."""

    async def fetch(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        """Current state of up to `capabilities.batch_fetch` tasks; unknown ids are left out."""

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskSnapshot:
        """A webhook body as a snapshot; raises ProviderProtocolError if it is not one."""

    async def cancel(self, task_id: str) -> None:
        """Cancel a running task, where `capabilities.cancel`."""

    async def reconcile(self, attempt: SubmitAttempt) -> TaskSnapshot | None:
        """Where `capabilities.reconcile`: the task `attempt` created, or None when the provider has
        none (so sending it again is safe). Raises ProviderError when the provider can't be asked now."""

    def trusts_url(self, url: str) -> bool:
        """True if `url` is served by this provider itself (so a loopback base_url may be fetched)."""

    def locate(self, url: str) -> str:
        """Where a result URL this provider gave earlier can be fetched now (usually `url` itself)."""


class BaseProvider:
    """Defaults shared by adapters: no-op lifecycle, no cancel, trust of the own base_url host."""

    capabilities: Capabilities = Capabilities()

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def cancel(self, task_id: str) -> None:
        from providers.errors import ProviderRejected

        raise ProviderRejected("Provider '{provider}' cannot cancel jobs.", provider=self.config.name)

    async def reconcile(self, attempt: SubmitAttempt) -> TaskSnapshot | None:
        from providers.errors import ProviderRejected

        raise ProviderRejected(
            "Provider '{provider}' cannot look up a submit it never answered.", provider=self.config.name
        )

    def trusts_url(self, url: str) -> bool:
        return bool(self.config.base_url) and _host(url) == _host(self.config.base_url)

    def locate(self, url: str) -> str:
        return url


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "").lower()


def remix_request(parent: ParentTask, request: ActRequest) -> GenerationRequest | None:
    """A Remix press for an API without a remix form: the parent's command with the edited prompt,
    to be submitted as a new imagine (the way a reroll is resubmitted). None for any other press."""
    if request.remix is None or request.action not in REMIXABLE:
        return None
    update = {"kind": Action.IMAGINE, "prompt": request.remix, "images": parent.request.images,
              "speed": request.speed or parent.request.speed, "callback_url": request.callback_url,
              "client_ref": request.client_ref, "remixed": False}  # fmt: skip
    return parent.request.model_copy(update=update)


def grid_offers(capabilities: Capabilities) -> dict[str, str]:
    """The U/V/reroll offers of a finished grid, limited to what the provider can do."""
    return {offer_key(a, i): "" for a, i in GRID_ACTIONS if capabilities.can(a)}


def upscale_offers(capabilities: Capabilities) -> dict[str, str]:
    """The follow-ups of a finished upscale, limited to what the provider can do."""
    return {offer_key(a, 0): "" for a in (*UPSCALE_FOLLOWUPS, *WEB_FOLLOWUPS) if capabilities.can(a)}


def progress_from(value: object) -> int | None:
    """Accept 45, 45.0, "45", "45%" and return 0-100, or None when absent or unparsable."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip().rstrip("%")
    try:
        number = int(float(text))
    except ValueError:
        return None
    return max(0, min(100, number))
