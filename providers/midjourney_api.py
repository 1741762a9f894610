"""midjourney-api.com Midjourney: `submit-jobs`, batched `job-status`, `hookUrl` callbacks.

The API has no button endpoints. A finished job carries the grid (`image`) and the four separate
images (`images`), so U1-U4 are served from the stored images without a provider call, reroll
resubmits the prompt, and variations are not offered. The envelope helpers and `submit_job` /
`fetch_jobs` here are shared with `providers.gpt_image`, which speaks the same envelope on the same host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from providers._http import ProviderHTTP, error_for, parse_as
from providers.base import (
    ALL_FLAGS,
    Action,
    ActRequest,
    BaseProvider,
    Capabilities,
    Flag,
    FlagPolicy,
    GenerationRequest,
    ParentTask,
    PromptParams,
    ProviderConfig,
    TaskResult,
    TaskSnapshot,
    TaskStatus,
    offer_key,
    remix_request,
)
from providers.errors import N_, ErrorKind, ProviderProtocolError, ProviderRejected

SUBMIT_PATH = "/midjourney/v1/submit-jobs"
STATUS_PATH = "/midjourney/v1/job-status"

#: Envelope `status` codes besides 0; any other undocumented code is treated as a refusal.
ENVELOPE_CODES: dict[int, ErrorKind] = {1001: ErrorKind.QUOTA, 1002: ErrorKind.BUSY}
_TASK_STATUS = {0: TaskStatus.RUNNING, 1: TaskStatus.SUCCEEDED, 2: TaskStatus.FAILED}
#: Our speeds -> the API's `mode` (the API has no turbo: fast is the nearest it offers).
_MODES: dict[str, Literal["relaxed", "fast"]] = {"relax": "relaxed", "fast": "fast", "turbo": "fast"}
_LOCAL_ID = re.compile(r":u[1-4]$")
#: The prompt goes to Midjourney whole, flags included; a job's result is images only (no video field),
#: so --video / --motion are refused rather than producing a video this adapter could not show.
FLAGS = FlagPolicy(passed=ALL_FLAGS - {Flag.VIDEO, Flag.MOTION})


class MidjourneyApiConfig(ProviderConfig):
    required_secrets = ("api_key",)
    type: Literal["midjourney_api"] = "midjourney_api"
    base_url: str = "https://api.midjourney-api.com"
    default_mode: Literal["relaxed", "fast"] = "fast"  # used when the user picks no speed
    generation_timeout: int | None = Field(default=None, ge=300, le=1200)  # sent as `timeout`
    batch_fetch: int = Field(default=50, ge=1, le=500)  # task ids per job-status call


class Envelope(BaseModel):
    """`{status, message, data}`; the quickstart's job-status sample omits `status`, so 0 is assumed."""

    model_config = ConfigDict(extra="ignore")

    status: int = 0
    message: str | None = None
    data: Any = None


class _Meta(BaseModel):
    model_config = ConfigDict(extra="ignore")

    width: int | None = None
    height: int | None = None


class JobItem(BaseModel):
    """One job-status entry (also the body of a callback). Status 0 running, 1 done, 2 failed."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, coerce_numbers_to_str=True)

    task_id: str = Field(alias="taskId", min_length=1)
    status: int
    image: str | None = None
    images: list[str | None] = Field(default_factory=list)
    prompt: str | None = None
    mj_prompt: str | None = Field(default=None, alias="mjPrompt")
    fail_reason: str | None = Field(default=None, alias="failReason")
    meta: _Meta | None = None

    def urls(self) -> list[str]:
        return [url for url in self.images if url][:4]


def auth_headers(config: ProviderConfig) -> dict[str, str]:
    return {"API-KEY": config.api_key.get_secret_value()} if config.api_key else {}


def unwrap(body: Any, provider: str) -> Any:
    """The envelope's `data`; a non-zero `status` (0 or "0" is success) raises the mapped error."""
    if not isinstance(body, dict):
        raise ProviderProtocolError(
            "{provider} sent a response that is not its documented envelope.", provider=provider
        )
    error = ProviderProtocolError("{provider} sent an envelope with an unknown status.", provider=provider)
    envelope = parse_as(Envelope, body, error)
    if envelope.status != 0:
        kind = ENVELOPE_CODES.get(envelope.status, ErrorKind.REJECTED)
        raise error_for(kind, envelope.message, provider)
    return envelope.data


def submitted_id(data: Any, provider: str) -> str:
    task_id = data.get("taskId") if isinstance(data, dict) else None
    if isinstance(task_id, int | str) and not isinstance(task_id, bool) and str(task_id):
        return str(task_id)
    raise ProviderProtocolError("{provider} accepted the job but sent no task id.", provider=provider)


def job_items(data: Any, provider: str) -> list[JobItem]:
    """job-status `data`: a list of entries (a single object or null are tolerated)."""
    raws = [] if data is None else [data] if isinstance(data, dict) else data
    if not isinstance(raws, list):
        raise ProviderProtocolError(
            "{provider} sent a job-status answer that is not a list.", provider=provider
        )
    return [parse_job(raw, provider) for raw in raws if isinstance(raw, dict)]


def parse_job(raw: Mapping[str, Any], provider: str) -> JobItem:
    error = ProviderProtocolError("{provider} sent a job without a task id or status.", provider=provider)
    return parse_as(JobItem, raw, error)


def callback_job(body: bytes, provider: str) -> JobItem:
    """`{status, data: {taskId, status, ...}}` or a bare `{taskId, status, ...}`; `data` wins."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderProtocolError(
            "{provider} sent a callback that is not JSON.", provider=provider
        ) from exc
    if not isinstance(payload, dict):
        raise ProviderProtocolError("{provider} sent a callback that is not an object.", provider=provider)
    data = payload.get("data")
    if isinstance(data, list) and data:
        data = data[0]
    merged = {key: value for key, value in payload.items() if key not in ("data", "message")}
    if isinstance(data, dict):
        merged.update(data)
    return parse_job(merged, provider)


async def submit_job(http: ProviderHTTP, path: str, payload: dict[str, Any], provider: str) -> TaskSnapshot:
    """POST one job (`payload` has its `prompt`) and return it as submitted."""
    body = await http.request("POST", path, json_body=payload)
    task_id = submitted_id(unwrap(body, provider), provider)
    return TaskSnapshot(task_id=task_id, status=TaskStatus.SUBMITTED, extra={"prompt": payload["prompt"]})


async def fetch_jobs(
    http: ProviderHTTP,
    path: str,
    task_ids: Sequence[str],
    batch: int,
    provider: str,
    snapshot: Callable[[JobItem], TaskSnapshot],
) -> list[TaskSnapshot]:
    """job-status for `task_ids`, `batch` ids a call; each job asked for becomes `snapshot(job)`."""
    out: list[TaskSnapshot] = []
    for start in range(0, len(task_ids), batch):
        chunk = task_ids[start : start + batch]
        body = await http.request("POST", path, json_body={"taskIds": list(chunk)})
        jobs = job_items(unwrap(body, provider), provider)
        out.extend(snapshot(job) for job in jobs if job.task_id in chunk)
    return out


def job_snapshot(job: JobItem, *, grid: bool) -> TaskSnapshot:
    """A job as a snapshot without offers; `grid` keeps `image` as the grid of `images`."""
    status = _TASK_STATUS.get(job.status)
    if status is None:
        raise ProviderProtocolError(
            "Unknown job status {state} for task {task}.", state=job.status, task=job.task_id
        )
    found = {"prompt": job.mj_prompt or job.prompt, "images": job.urls()}
    extra: dict[str, Any] = {key: value for key, value in found.items() if value}
    snapshot = TaskSnapshot(task_id=job.task_id, status=status, extra=extra)
    if status is TaskStatus.FAILED:
        snapshot.error = (job.fail_reason or N_("The generation failed."))[:300]
    if status is not TaskStatus.SUCCEEDED:
        return snapshot
    urls = job.urls() if grid else list(dict.fromkeys([*job.urls(), *([job.image] if job.image else [])]))
    if not urls and not job.image:
        snapshot.status, snapshot.error = TaskStatus.FAILED, N_("The provider finished without an image.")
        return snapshot
    meta = job.meta or _Meta()
    snapshot.result = TaskResult(
        grid_url=job.image if grid else None, image_urls=urls[:4], width=meta.width, height=meta.height
    )
    return snapshot


class MidjourneyApiProvider(BaseProvider):
    config_class: ClassVar[type[ProviderConfig]] = MidjourneyApiConfig
    capabilities = Capabilities(
        actions=frozenset({Action.IMAGINE, Action.UPSCALE, Action.REROLL}),
        batch_fetch=50,
        webhooks=True,
        flags=FLAGS,
    )

    def __init__(self, config: MidjourneyApiConfig, client: httpx.AsyncClient) -> None:
        super().__init__(config)
        self._settings = config
        self.capabilities = self.capabilities.model_copy(update={"batch_fetch": config.batch_fetch})
        self._http = ProviderHTTP(client, config, auth_headers(config))

    async def submit(self, request: GenerationRequest) -> TaskSnapshot:
        return await self._submit(to_payload(request, self._settings))

    async def act(self, parent: ParentTask, request: ActRequest) -> TaskSnapshot:
        if (remixed := remix_request(parent, request)) is not None:  # no remix form: a new imagine
            return await self.submit(remixed)
        if request.action is Action.UPSCALE:
            return upscale_snapshot(parent, request.index)
        if request.action is Action.REROLL:
            return await self._submit(to_payload(reroll_request(parent, request), self._settings))
        raise ProviderRejected(
            "{provider} cannot do {action}: it offers U1-U4 and reroll only.",
            provider=self._settings.name,
            action=request.action.value,
        )

    async def fetch(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        # Locally served upscales ("<parent>:u2") were final when made; they are never polled.
        wanted = [task_id for task_id in dict.fromkeys(task_ids) if not _LOCAL_ID.search(task_id)]
        batch, name = self.capabilities.batch_fetch, self._settings.name
        return await fetch_jobs(self._http, STATUS_PATH, wanted, batch, name, _snapshot)

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskSnapshot:
        return _snapshot(callback_job(body, self._settings.name))

    async def _submit(self, payload: dict[str, Any]) -> TaskSnapshot:
        return await submit_job(self._http, SUBMIT_PATH, payload, self._settings.name)


def to_payload(request: GenerationRequest, config: MidjourneyApiConfig) -> dict[str, Any]:
    """A submit-jobs body: the full prompt with its flags, mode, and the optional hookUrl/timeout."""
    if request.kind is not Action.IMAGINE:
        raise ProviderRejected(
            "{provider} supports /imagine only, not /{command}.",
            provider=config.name,
            command=request.kind.value,
        )
    if request.images:
        raise ProviderRejected(
            "{provider} takes image prompts as URLs at the start of the prompt, not as uploads.",
            provider=config.name,
        )
    FLAGS.check(config.name, request.prompt)
    prompt = request.prompt.full() if request.prompt else ""
    if not prompt:
        raise ProviderRejected("A prompt is required.")
    if len(prompt) > config.max_prompt_length:
        raise ProviderRejected(
            "The prompt is longer than {limit} characters.", limit=config.max_prompt_length
        )
    payload: dict[str, Any] = {
        "prompt": prompt,
        "mode": _MODES[request.speed] if request.speed else config.default_mode,
    }
    if config.generation_timeout is not None:
        payload["timeout"] = config.generation_timeout
    if request.callback_url:
        payload["hookUrl"] = request.callback_url
    return payload


def reroll_request(parent: ParentTask, request: ActRequest) -> GenerationRequest:
    """The parent's request again (its prompt, or the prompt the provider reported), as a new job."""
    prompt = parent.request.prompt
    if prompt is None and isinstance(parent.extra.get("prompt"), str):
        prompt = PromptParams(text=parent.extra["prompt"])
    return parent.request.model_copy(
        update={
            "prompt": prompt,
            "speed": request.speed or parent.request.speed,
            "callback_url": request.callback_url,
        }
    )


def upscale_snapshot(parent: ParentTask, index: int) -> TaskSnapshot:
    """U<index> from the parent's four stored images: finished at once, no provider call."""
    stored = parent.extra.get("images")
    images = [url for url in stored if isinstance(url, str)] if isinstance(stored, list) else []
    images = images or (parent.result.image_urls if parent.result else [])
    if not 1 <= index <= len(images):
        raise ProviderRejected("Image {index} of this grid is not available for upscaling.", index=index)
    result = TaskResult(
        image_urls=[images[index - 1]],
        width=parent.result.width if parent.result else None,
        height=parent.result.height if parent.result else None,
    )
    return TaskSnapshot(
        task_id=f"{parent.task_id or 'grid'}:u{index}",
        status=TaskStatus.SUCCEEDED,
        result=result,
        extra={"parent": parent.task_id, "index": index},
    )


def _snapshot(job: JobItem) -> TaskSnapshot:
    """A job as a grid: a finished one offers U1-U4 for the images it has, and reroll."""
    snapshot = job_snapshot(job, grid=True)
    if snapshot.status is TaskStatus.SUCCEEDED and snapshot.result:
        count = len(snapshot.result.image_urls)
        snapshot.actions = {offer_key(Action.UPSCALE, i): "" for i in range(1, count + 1)}
        snapshot.actions[offer_key(Action.REROLL)] = ""
    return snapshot
