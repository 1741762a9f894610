"""midjourney-api.com GPT-Image (`gpt-image-2`): `POST /gpt/v1/generations`, `hookUrl` callbacks.

Same host, key and `{status, data, message}` envelope as `providers.midjourney_api`, whose envelope,
submit and job-status helpers this module reuses. The status endpoint for GPT tasks is not documented:
`status_path` (default: the Midjourney job-status endpoint) makes it configurable. See
docs/providers/gpt_image.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

import httpx
from pydantic import Field, model_validator

from providers._http import ProviderHTTP
from providers.base import (
    Action,
    ActRequest,
    BaseProvider,
    Capabilities,
    Flag,
    FlagPolicy,
    GenerationRequest,
    ParentTask,
    ProviderConfig,
    TaskSnapshot,
    TaskStatus,
    offer_key,
    remix_request,
)
from providers.errors import ProviderRejected
from providers.midjourney_api import JobItem, auth_headers, callback_job, fetch_jobs, job_snapshot, submit_job

GENERATIONS_PATH = "/gpt/v1/generations"
ASPECT_RATIOS = ("1:1", "3:4", "4:3", "16:9", "9:16")
MULTIPLE, MAX_EDGE, MAX_RATIO = 16, 3840, 3
MIN_PIXELS, MAX_PIXELS = 655_360, 8_294_400
_NEAR = [(i, j) for i in (-1, 0, 1, 2) for j in (-1, 0, 1, 2)]  # multiples of 16 around a size
_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")


class GptImageConfig(ProviderConfig):
    required_secrets = ("api_key",)
    type: Literal["gpt_image"] = "gpt_image"
    base_url: str = "https://api.midjourney-api.com"
    model: str = "gpt-image-2"
    size: str | None = None  # "WxH"; omitted from requests when unset
    adjust_size: bool = False  # true: an invalid size is fixed at load time instead of refused
    status_path: str = "/midjourney/v1/job-status"  # undocumented for GPT tasks
    batch_fetch: int = Field(default=50, ge=1, le=500)
    max_images: int = Field(default=4, ge=0, le=16)  # referImages has no documented limit

    @model_validator(mode="after")
    def _check_size(self) -> Self:
        if self.size is None:
            return self
        width, height = parse_size(self.size)
        problems = size_problems(width, height)
        if problems and not self.adjust_size:
            raise ValueError(
                f"size {self.size!r} is not accepted by {self.model}: {'; '.join(problems)} "
                "(or set adjust_size: true to have it adjusted)"
            )
        if problems:
            self.size = "{}x{}".format(*adjusted_size(width, height))
        return self


def parse_size(text: str) -> tuple[int, int]:
    match = _SIZE.match(text)
    if not match or 0 in (int(match[1]), int(match[2])):
        raise ValueError(f"size {text!r} must look like WIDTHxHEIGHT, e.g. 1024x1024")
    return int(match[1]), int(match[2])


def size_problems(width: int, height: int) -> list[str]:
    """The documented size rules `width`x`height` breaks (empty when it is valid)."""
    problems = []
    if width % MULTIPLE or height % MULTIPLE:
        problems.append(f"width and height must be multiples of {MULTIPLE}")
    if max(width, height) > MAX_EDGE:
        problems.append(f"the longer edge must be at most {MAX_EDGE}")
    if max(width, height) > MAX_RATIO * min(width, height):
        problems.append(f"the aspect ratio must be at most {MAX_RATIO}:1")
    if not MIN_PIXELS <= width * height <= MAX_PIXELS:
        problems.append(f"width × height must be between {MIN_PIXELS:,} and {MAX_PIXELS:,} pixels")
    return problems


def adjusted_size(width: int, height: int) -> tuple[int, int]:
    """The valid size nearest in shape to `width`x`height`: ratio capped, scaled into range, snapped."""
    w, h = float(width), float(height)
    w, h = max(w, h / MAX_RATIO), max(h, w / MAX_RATIO)
    scale = min(1.0, MAX_EDGE / max(w, h), math.sqrt(MAX_PIXELS / (w * h)))
    scale = max(scale, math.sqrt(MIN_PIXELS / (w * h)))
    w, h = w * scale, h * scale
    near = [(MULTIPLE * (int(w // MULTIPLE) + i), MULTIPLE * (int(h // MULTIPLE) + j)) for i, j in _NEAR]
    valid = [(cw, ch) for cw, ch in near if cw > 0 and ch > 0 and not size_problems(cw, ch)]

    def distance(size: tuple[int, int]) -> tuple[float, float]:
        return abs(math.log(size[0] / size[1] * h / w)), abs(size[0] * size[1] - w * h)

    return min(valid, key=distance)


#: gpt-image-2 is no Midjourney: only --ar has a field (`aspect_ratio`); the prompt text goes alone.
FLAGS = FlagPolicy(mapped=frozenset({Flag.ASPECT}))


def aspect_ratio(value: str | None, model: str) -> str | None:
    """`--ar` as one of the model's ratios (reduced, so 32:18 is 16:9); anything else is refused."""
    if value is None:
        return None
    left, _, right = value.strip().partition(":")
    if left.isdigit() and right.isdigit() and int(left) and int(right):
        divisor = math.gcd(int(left), int(right))
        ratio = f"{int(left) // divisor}:{int(right) // divisor}"
        if ratio in ASPECT_RATIOS:
            return ratio
    raise ProviderRejected(
        "{model} supports only --ar {choices}; got --ar {value}.",
        model=model,
        choices=", ".join(ASPECT_RATIOS),
        value=value,
    )


def to_payload(request: GenerationRequest, config: GptImageConfig) -> dict[str, Any]:
    """A generations body: the prompt text, reference images, aspect ratio, size, hookUrl.

    --ar is the only Midjourney flag gpt-image-2 has a field for; any other is refused (`FLAGS`).
    Uploaded images without a public URL are sent as data URIs.
    """
    if request.kind is not Action.IMAGINE:
        raise ProviderRejected(
            "{provider} supports /imagine only, not /{command}.",
            provider=config.name,
            command=request.kind.value,
        )
    prompt = request.prompt
    if prompt is None or not prompt.text.strip():
        raise ProviderRejected("A prompt is required.")
    FLAGS.check(config.name, prompt)
    if len(prompt.text) > config.max_prompt_length:
        raise ProviderRejected(
            "The prompt is longer than {limit} characters.", limit=config.max_prompt_length
        )
    refer = [*prompt.image_urls, *(image.url or image.data_uri() for image in request.images)]
    if len(refer) > config.max_images:
        raise ProviderRejected(
            "{provider} takes at most {limit} reference images.",
            provider=config.name,
            limit=config.max_images,
        )
    payload: dict[str, Any] = {"prompt": prompt.text, "model": config.model}
    optional = {
        "referImages": refer,
        "aspect_ratio": aspect_ratio(prompt.aspect_ratio, config.model),
        "size": config.size,
        "hookUrl": request.callback_url,
    }
    payload.update({key: value for key, value in optional.items() if value})
    return payload


class GptImageProvider(BaseProvider):
    config_class: ClassVar[type[ProviderConfig]] = GptImageConfig
    capabilities = Capabilities(
        actions=frozenset({Action.IMAGINE, Action.REROLL}),
        batch_fetch=50,
        webhooks=True,
        max_images=4,
        flags=FLAGS,
    )

    def __init__(self, config: GptImageConfig, client: httpx.AsyncClient) -> None:
        super().__init__(config)
        self._settings = config
        self.capabilities = self.capabilities.model_copy(
            update={"batch_fetch": config.batch_fetch, "max_images": config.max_images}
        )
        self._http = ProviderHTTP(client, config, auth_headers(config))

    async def submit(self, request: GenerationRequest) -> TaskSnapshot:
        return await self._submit(to_payload(request, self._settings))

    async def act(self, parent: ParentTask, request: ActRequest) -> TaskSnapshot:
        if (remixed := remix_request(parent, request)) is not None:  # no remix form: a new generation
            return await self.submit(remixed)
        if request.action is not Action.REROLL:
            raise ProviderRejected(
                "{provider} cannot do {action}: it offers reroll only.",
                provider=self._settings.name,
                action=request.action.value,
            )
        again = parent.request.model_copy(update={"callback_url": request.callback_url})
        return await self._submit(to_payload(again, self._settings))

    async def fetch(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        wanted, path = list(dict.fromkeys(task_ids)), self._settings.status_path
        batch, name = self.capabilities.batch_fetch, self._settings.name
        return await fetch_jobs(self._http, path, wanted, batch, name, _snapshot)

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskSnapshot:
        return _snapshot(callback_job(body, self._settings.name))

    async def _submit(self, payload: dict[str, Any]) -> TaskSnapshot:
        return await submit_job(self._http, GENERATIONS_PATH, payload, self._settings.name)


def _snapshot(job: JobItem) -> TaskSnapshot:
    """Finished images offer reroll (a resubmission) and nothing else: the API has no buttons."""
    snapshot = job_snapshot(job, grid=False)
    if snapshot.status is TaskStatus.SUCCEEDED:
        snapshot.actions = {offer_key(Action.REROLL): ""}
    return snapshot
