"""`mj_rest`: the REST job API of `reference/mj-rest.openapi.yml` (+ its AsyncAPI webhook notes).

Jobs are uuids. U/V are dedicated endpoints taking index 1-4; reroll has no endpoint, so it replays
the parent's request. `GET /v1/jobs` (the account's newest jobs) serves batched status, with one
`GET /v1/jobs/{id}` per id the page did not hold. Webhooks may be signed (`X-Midjourney-Signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr

from providers._http import ProviderHTTP, bearer_headers, parse_as
from providers.base import (
    Action,
    ActRequest,
    BaseProvider,
    Capabilities,
    GenerationRequest,
    ParentTask,
    PromptParams,
    ProviderConfig,
    TaskResult,
    TaskSnapshot,
    TaskStatus,
    grid_offers,
    progress_from,
)
from providers.errors import CallbackSignatureError, ErrorKind, ProviderProtocolError, ProviderRejected

SIGNATURE_HEADER = "x-midjourney-signature"


class MjRestConfig(ProviderConfig):
    type: Literal["mj_rest"] = "mj_rest"
    base_url: str = "https://api.midjourney.com"
    webhook_type: Literal["progress", "result"] = "progress"  # progress: one webhook per change
    webhook_secret: SecretStr | None = None  # set -> callbacks must carry a valid signature
    batch_via_list: bool = True  # batched status through GET /v1/jobs (else one GET per id)
    list_limit: int = Field(default=100, ge=1, le=100)


_CAPABILITIES = Capabilities(
    actions=frozenset(
        {Action.IMAGINE, Action.DESCRIBE, Action.BLEND, Action.UPSCALE, Action.VARIATION, Action.REROLL}
    ),
    batch_fetch=100,
    webhooks=True,
    progress=True,
    cancel=True,
    max_images=1,
)

_STATUS = {
    "pending": TaskStatus.SUBMITTED,
    "in_progress": TaskStatus.RUNNING,
    "completed": TaskStatus.SUCCEEDED,
    "failed": TaskStatus.FAILED,
    "cancelled": TaskStatus.CANCELLED,
}
_VERSIONS = {"5.2": "5.2", "6": "6.0", "6.0": "6.0", "6.1": "6.1", "7": "7.0", "7.0": "7.0"}
_QUALITIES = (0.25, 0.5, 1.0, 2.0)
_RATIO = re.compile(r"^[0-9]+:[0-9]+$")
_BLEND_RATIOS = {"portrait": "2:3", "square": "1:1", "landscape": "3:2"}
_GRID_TYPES = {"imagine", "variation", "blend"}
_MAX_PROMPT = 4000
#: Error codes that say more than their HTTP status: a 429 whose quota is spent is no rate limit (waiting
#: `busy_wait` for it would not help; the user hears "out of credits" and failover can act at once).
_ERROR_CODES = {"quota_exceeded": ErrorKind.QUOTA, "insufficient_credits": ErrorKind.QUOTA}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Image(_Model):
    url: str
    index: int | None = None  # the spec's prose says null for the grid; its schema omits it
    width: int | None = None
    height: int | None = None


class _Result(_Model):
    images: list[_Image] | None = None
    prompts: list[str] | None = None


class _Error(_Model):
    code: str | None = None
    message: str | None = None


class _Job(_Model):
    """A `Job` (jobs endpoints) or a `JobWebhookPayload` (webhooks): the same fields."""

    id: str = Field(validation_alias=AliasChoices("id", "job_id"))
    status: str
    type: str | None = None
    progress: float | str | None = None
    result: _Result | None = None
    error: _Error | None = None


class _Created(_Model):
    class _Data(_Model):
        job_id: str

    data: _Data


def _split_flags(params: PromptParams) -> tuple[dict[str, Any], PromptParams]:
    """Flags the spec has fields for (when valid per its schema), and the params left in the text."""
    fields: dict[str, Any] = {}
    taken: dict[str, Any] = {}
    if params.aspect_ratio and _RATIO.match(params.aspect_ratio):
        fields["aspect_ratio"], taken["aspect_ratio"] = params.aspect_ratio, None
    if params.version in _VERSIONS:
        fields["model_version"], taken["version"] = _VERSIONS[params.version], None
    if params.quality in _QUALITIES:
        fields["quality"], taken["quality"] = params.quality, None
    if params.stylize is not None and 0 <= params.stylize <= 1000:
        fields["stylize"], taken["stylize"] = params.stylize, None
    if params.chaos is not None and 0 <= params.chaos <= 100:
        fields["chaos"], taken["chaos"] = params.chaos, None
    if params.seed is not None and 0 <= params.seed <= 4294967295:
        fields["seed"], taken["seed"] = params.seed, None
    if params.no:
        fields["no"], taken["no"] = params.no, None
    return fields, params.model_copy(update=taken)


def _checked_prompt(text: str) -> str:
    if not text:
        raise ProviderRejected("The prompt is empty.")
    if len(text) > _MAX_PROMPT:
        raise ProviderRejected(f"The prompt is longer than {_MAX_PROMPT} characters.")
    return text


def _imagine_payload(request: GenerationRequest) -> dict[str, Any]:
    if request.prompt is None:
        raise ProviderRejected("Imagine needs a prompt.")
    fields, rest = _split_flags(request.prompt)
    urls = [image.url for image in request.images if image.url] + list(rest.image_urls)
    if request.images and not request.images[0].url:
        raise ProviderRejected("This provider needs a public URL for the reference image.")
    if urls:
        fields["image_url"] = urls[0]
        rest = rest.model_copy(update={"image_urls": tuple(u for u in rest.image_urls if u != urls[0])})
    if request.speed:
        fields["process_mode"] = request.speed
    return {"prompt": _checked_prompt(rest.full()), **fields}


def _describe_payload(request: GenerationRequest) -> dict[str, Any]:
    if not request.images:
        raise ProviderRejected("Describe needs an image.")
    image = request.images[0]
    return {"image_url": image.url} if image.url else {"image_base64": image.base64()}


def _blend_payload(request: GenerationRequest) -> dict[str, Any]:
    if not 2 <= len(request.images) <= 5:
        raise ProviderRejected("Blend takes two to five images.")
    images = [{"url": i.url} if i.url else {"base64": i.base64()} for i in request.images]
    body: dict[str, Any] = {"images": images}
    if request.dimensions:
        body["aspect_ratio"] = _BLEND_RATIOS[request.dimensions]
    text = request.prompt.full() if request.prompt else ""
    if text:
        body["prompt"] = text[:_MAX_PROMPT]
    return body


def _result(job: _Job) -> TaskResult:
    images = (job.result.images if job.result else None) or []
    indexed = sorted((i for i in images if i.index), key=lambda i: i.index or 0)
    loose = [i for i in images if not i.index]
    first = next(iter(loose or indexed), None)
    size = {"width": first.width, "height": first.height} if first else {}
    prompts = (job.result.prompts if job.result else None) or []
    if job.type in _GRID_TYPES or (job.type is None and indexed):
        grid = loose[0].url if loose else None
        return TaskResult(grid_url=grid, image_urls=[i.url for i in indexed][:4], prompts=prompts, **size)
    return TaskResult(image_urls=[i.url for i in loose + indexed][:4], prompts=prompts, **size)


def _snapshot(job: _Job, capabilities: Capabilities) -> TaskSnapshot:
    status = _STATUS.get(job.status.lower())
    if status is None:
        raise ProviderProtocolError(f"mj_rest sent an unknown job status {job.status[:40]!r}.")
    snapshot = TaskSnapshot(task_id=job.id, status=status, progress=progress_from(job.progress))
    if status is TaskStatus.SUCCEEDED:
        snapshot.progress = 100
        snapshot.result = _result(job)
        if snapshot.result.image_urls and (job.type in _GRID_TYPES or job.type is None):
            snapshot.actions = grid_offers(capabilities)
    elif status is TaskStatus.FAILED:
        message = job.error.message if job.error else None
        snapshot.error = (message or "The generation failed.")[:300]
    return snapshot


def _job(data: Any) -> _Job:
    return parse_as(_Job, data, "mj_rest sent a job that is not in the documented shape.")


def _job_id(body: Any) -> str:
    return parse_as(_Created, body, "mj_rest accepted the job but sent no job_id.").data.job_id


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """`header` is the hex HMAC-SHA256 of the raw body, optionally prefixed ``sha256=``."""
    if not header:
        return False
    given = header.strip().removeprefix("sha256=").lower()
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given, expected)


class MjRestProvider(BaseProvider):
    config_class: ClassVar[type[ProviderConfig]] = MjRestConfig
    capabilities = _CAPABILITIES

    def __init__(self, config: MjRestConfig, client: httpx.AsyncClient) -> None:
        super().__init__(config)
        self._settings = config
        if not config.batch_via_list:
            self.capabilities = _CAPABILITIES.model_copy(update={"batch_fetch": 1})
        self._http = ProviderHTTP(client, config, bearer_headers(config), error_codes=_ERROR_CODES)

    def _webhook(self, callback_url: str | None) -> dict[str, str]:
        if not callback_url:
            return {}
        return {"webhook_url": callback_url, "webhook_type": self._settings.webhook_type}

    async def _create(self, path: str, body: dict[str, Any], extra: dict[str, Any]) -> TaskSnapshot:
        response = await self._http.request("POST", path, json_body=body)
        return TaskSnapshot(task_id=_job_id(response), status=TaskStatus.SUBMITTED, extra=extra)

    async def submit(self, request: GenerationRequest) -> TaskSnapshot:
        builders = {Action.IMAGINE: _imagine_payload, Action.DESCRIBE: _describe_payload}
        builders[Action.BLEND] = _blend_payload
        if request.kind not in builders:
            raise ProviderRejected(f"Provider '{self.config.name}' cannot {request.kind.value}.")
        body = builders[request.kind](request) | self._webhook(request.callback_url)
        return await self._create(f"/v1/{request.kind.value}", body, {"type": request.kind.value})

    async def act(self, parent: ParentTask, request: ActRequest) -> TaskSnapshot:
        if request.action is Action.REROLL:
            return await self._reroll(parent, request)
        paths = {
            Action.UPSCALE: ("/v1/upscale", "upscale"),
            Action.VARIATION: ("/v1/variations", "variation"),
        }
        if request.action not in paths or not 1 <= request.index <= 4:
            raise ProviderRejected(f"Provider '{self.config.name}' cannot {request.action.value} this job.")
        if not _is_uuid(parent.task_id):
            raise ProviderRejected("This job has no provider task to act on.")
        path, kind = paths[request.action]
        body = {"job_id": parent.task_id, "index": request.index} | self._webhook(request.callback_url)
        extra = {"type": kind, "source_job": parent.task_id, "index": request.index}
        return await self._create(path, body, extra)

    async def _reroll(self, parent: ParentTask, request: ActRequest) -> TaskSnapshot:
        """No reroll endpoint: run the variation again, or resubmit the original command."""
        source, index = parent.extra.get("source_job"), parent.extra.get("index")
        if parent.extra.get("type") == "variation" and _is_uuid(source) and isinstance(index, int):
            body = {"job_id": source, "index": index} | self._webhook(request.callback_url)
            return await self._create("/v1/variations", body, dict(parent.extra))
        update: dict[str, Any] = {"callback_url": request.callback_url}
        if request.speed:
            update["speed"] = request.speed
        return await self.submit(parent.request.model_copy(update=update))

    async def fetch(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        wanted = [i for i in dict.fromkeys(task_ids) if _is_uuid(i)]  # others cannot exist here
        found: dict[str, TaskSnapshot] = {}
        if len(wanted) > 1 and self._settings.batch_via_list:
            params = {"limit": self._settings.list_limit, "sort": "created_at_desc"}
            page = await self._http.request("GET", "/v1/jobs", params=params)
            jobs = page.get("data") if isinstance(page, dict) else None
            if not isinstance(jobs, list):
                raise ProviderProtocolError("mj_rest sent a job list that is not in the documented shape.")
            for job in map(_job, jobs):
                if job.id in wanted:
                    found[job.id] = _snapshot(job, self.capabilities)
        for task_id in (i for i in wanted if i not in found):
            try:
                body = await self._http.request("GET", f"/v1/jobs/{task_id}")
            except ProviderRejected:  # 404 (or 400): not a job of ours
                continue
            found[task_id] = _snapshot(_job(body), self.capabilities)
        return [found[i] for i in wanted if i in found]

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskSnapshot:
        if self._settings.webhook_secret is not None:
            given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
            if not verify_signature(self._settings.webhook_secret.get_secret_value(), body, given):
                raise CallbackSignatureError("The webhook signature is missing or wrong.")
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProviderProtocolError("The webhook body is not JSON.") from exc
        if isinstance(data, dict) and "status" not in data and isinstance(data.get("event"), str):
            data = {**data, "status": data["event"].removeprefix("job.").replace("progress", "in_progress")}
        return _snapshot(_job(data), self.capabilities)

    async def cancel(self, task_id: str) -> None:
        if not _is_uuid(task_id):
            raise ProviderRejected("This job has no provider task to cancel.")
        await self._http.request("POST", f"/v1/jobs/{task_id}/cancel")
