"""`mj_rest`: the REST job API of `reference/mj-rest.openapi.yml` (+ its AsyncAPI webhook notes).

Jobs are uuids. U/V are dedicated endpoints taking index 1-4; reroll has no endpoint, so it replays
the parent's request. `GET /v1/jobs` (the account's newest jobs) serves batched status, with one
`GET /v1/jobs/{id}` per id the page did not hold. Webhooks may be signed (`X-Midjourney-Signature`).

A job carries no client reference (nor its webhook_url), so `reconcile` searches GET /v1/jobs for a
job of the right type created around the attempt: an imagine is told apart by its `seed`, which a
submit with a client_ref sets (from that key) unless the prompt has one, and which the job echoes in
`parameters`; other jobs only by prompt and time, and two such candidates are an error, not a guess.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr

from providers._http import ProviderHTTP, bearer_headers, parse_as
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
    SubmitAttempt,
    TaskResult,
    TaskSnapshot,
    TaskStatus,
    grid_offers,
    progress_from,
    remix_request,
)
from providers.errors import (
    N_,
    CallbackSignatureError,
    ErrorKind,
    ProviderProtocolError,
    ProviderRejected,
    ProviderUnavailable,
)

SIGNATURE_HEADER = "x-midjourney-signature"


class MjRestConfig(ProviderConfig):
    required_secrets = ("api_key",)
    type: Literal["mj_rest"] = "mj_rest"
    base_url: str = "https://api.midjourney.com"
    webhook_type: Literal["progress", "result"] = "progress"  # progress: one webhook per change
    webhook_secret: SecretStr | None = None  # set -> callbacks must carry a valid signature
    batch_via_list: bool = True  # batched status through GET /v1/jobs (else one GET per id)
    list_limit: int = Field(default=100, ge=1, le=100)
    seed_tag: bool = True  # an imagine without --seed gets one derived from its client_ref (reconcile)
    clock_slack: float = Field(default=60.0, ge=0)  # how far the API's clock may be from ours, s


#: Flags the spec has fields for go there (when their value fits its schema); the others stay in the
#: prompt, which "may include Midjourney parameters". Results are images only: no --video / --motion.
_MAPPED = frozenset({Flag.ASPECT, Flag.VERSION, Flag.QUALITY, Flag.STYLIZE, Flag.CHAOS, Flag.SEED, Flag.NO})
FLAGS = FlagPolicy(mapped=_MAPPED, passed=ALL_FLAGS - _MAPPED - {Flag.VIDEO, Flag.MOTION})

_CAPABILITIES = Capabilities(
    actions=frozenset(
        {Action.IMAGINE, Action.DESCRIBE, Action.BLEND, Action.UPSCALE, Action.VARIATION, Action.REROLL}
    ),
    batch_fetch=100,
    webhooks=True,
    progress=True,
    cancel=True,
    max_images=1,
    reconcile=True,
    flags=FLAGS,
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
_RECONCILE_PAGES = 10  # pages of `list_limit` jobs reconcile reads before it gives up
_SEED_FLAG = re.compile(r"(?:^|\s)--seed\s+(\d+)")
_COMMAND_TYPES = {Action.IMAGINE: "imagine", Action.DESCRIBE: "describe", Action.BLEND: "blend"}
_PRESS_TYPES = {Action.UPSCALE: "upscale", Action.VARIATION: "variation"}


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
    prompt: str | None = None
    parameters: dict[str, Any] | None = None
    created_at: Any = None  # ISO 8601; read leniently, as only reconcile needs it

    def created(self) -> float | None:
        """`created_at` as Unix time (None when absent or unreadable: such a job is never ruled out)."""
        try:
            return datetime.fromisoformat(str(self.created_at)).timestamp() if self.created_at else None
        except ValueError:
            return None

    def seed(self) -> int | None:
        value = (self.parameters or {}).get("seed")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


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
        raise ProviderRejected("The prompt is longer than {limit} characters.", limit=_MAX_PROMPT)
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
        raise ProviderProtocolError(
            "mj_rest sent an unknown job status {state}.", state=repr(job.status[:40])
        )
    snapshot = TaskSnapshot(task_id=job.id, status=status, progress=progress_from(job.progress))
    if status is TaskStatus.SUCCEEDED:
        snapshot.progress = 100
        snapshot.result = _result(job)
        if snapshot.result.image_urls and (job.type in _GRID_TYPES or job.type is None):
            snapshot.actions = grid_offers(capabilities)
    elif status is TaskStatus.FAILED:
        message = job.error.message if job.error else None
        snapshot.error = (message or N_("The generation failed."))[:300]
    return snapshot


def _job(data: Any) -> _Job:
    error = ProviderProtocolError("mj_rest sent a job that is not in the documented shape.")
    return parse_as(_Job, data, error)


def _page(body: Any) -> list[_Job]:
    jobs = body.get("data") if isinstance(body, dict) else None
    if not isinstance(jobs, list):
        raise ProviderProtocolError("mj_rest sent a job list that is not in the documented shape.")
    return [_job(job) for job in jobs]


def _job_id(body: Any) -> str:
    error = ProviderProtocolError("mj_rest accepted the job but sent no job_id.")
    return parse_as(_Created, body, error).data.job_id


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


def ref_seed(client_ref: str) -> int:
    """The seed an imagine with this attempt key carries (in the spec's 0..2**32-1)."""
    return int.from_bytes(hashlib.sha256(client_ref.encode()).digest()[:4], "big")


@dataclass(frozen=True)
class Expected:
    """What the job of one attempt looks like, as far as the request it sent tells."""

    types: frozenset[str]
    window: tuple[float, float]  # created_at bounds, Unix time: the attempt's start, widened by slack
    seed: int | None = None
    own_seed: bool = False  # `seed` came from the attempt's key: a job with it is this attempt's
    seed_known: bool = False  # the request surely carried `seed`: a job with another one is not ours
    prompt: str | None = None  # the prompt sent (the job echoes it, maybe minus the flags it split out)
    parent: str | None = None  # a button's parent job, never a candidate itself


def _words_within(short: str, full: str) -> bool:
    """`short`'s words appear in `full` in order: an imagine's echoed prompt is the one sent minus the
    flags (and first image URL) that went into their own fields."""
    words = iter(full.split())
    return all(word in words for word in short.split())


def _verdict(job: _Job, expected: Expected) -> tuple[bool, bool]:
    """(may be the attempt's job, surely is)."""
    created = job.created()
    if job.id == expected.parent or (job.type is not None and job.type not in expected.types):
        return False, False
    if created is not None and not expected.window[0] <= created <= expected.window[1]:
        return False, False
    seed = job.seed()
    if expected.seed is not None and seed is not None:
        if seed == expected.seed and expected.own_seed:
            return True, True
        if seed != expected.seed and expected.seed_known:
            return False, False
    if expected.prompt and job.prompt:
        return _words_within(job.prompt, expected.prompt), False
    return True, False


def pick_job(jobs: Sequence[_Job], expected: Expected) -> _Job | None:
    """The job surely the attempt's, else the only one that may be; None when none may be. Several
    candidates raise ProviderUnavailable: the bot asks again later rather than adopt a stranger's job."""
    verdicts = [(job, _verdict(job, expected)) for job in jobs]
    sure = [job for job, (_, surely) in verdicts if surely]
    found = sure or [job for job, (maybe, _) in verdicts if maybe]
    if len(found) > 1:
        raise ProviderUnavailable("mj_rest holds several jobs that may be that submit; it cannot tell which.")
    return found[0] if found else None


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
            raise ProviderRejected(
                "Provider '{provider}' cannot {command}.",
                provider=self.config.name,
                command=request.kind.value,
            )
        FLAGS.check(self.config.name, request.prompt)
        body = builders[request.kind](request) | self._webhook(request.callback_url)
        if request.kind is Action.IMAGINE and request.client_ref and self._settings.seed_tag:
            body.setdefault("seed", ref_seed(request.client_ref))  # what reconcile recognises it by
        return await self._create(f"/v1/{request.kind.value}", body, {"type": request.kind.value})

    async def act(self, parent: ParentTask, request: ActRequest) -> TaskSnapshot:
        if (remixed := remix_request(parent, request)) is not None:  # /v1/variations takes no prompt
            return await self.submit(remixed)
        if request.action is Action.REROLL:
            return await self._reroll(parent, request)
        paths = {
            Action.UPSCALE: ("/v1/upscale", "upscale"),
            Action.VARIATION: ("/v1/variations", "variation"),
        }
        if request.action not in paths or not 1 <= request.index <= 4:
            raise ProviderRejected(
                "Provider '{provider}' cannot {action} this job.",
                provider=self.config.name,
                action=request.action.value,
            )
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
        update: dict[str, Any] = {"callback_url": request.callback_url, "client_ref": request.client_ref}
        if request.speed:
            update["speed"] = request.speed
        return await self.submit(parent.request.model_copy(update=update))

    async def fetch(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        wanted = [i for i in dict.fromkeys(task_ids) if _is_uuid(i)]  # others cannot exist here
        found: dict[str, TaskSnapshot] = {}
        if len(wanted) > 1 and self._settings.batch_via_list:
            for job in await self._list_page(0):
                if job.id in wanted:
                    found[job.id] = _snapshot(job, self.capabilities)
        for task_id in (i for i in wanted if i not in found):
            one = await self._get(task_id)
            if one is not None:
                found[task_id] = _snapshot(one, self.capabilities)
        return [found[i] for i in wanted if i in found]

    async def _list_page(self, page: int) -> list[_Job]:
        limit = self._settings.list_limit
        params = {"limit": limit, "sort": "created_at_desc"} | ({"offset": page * limit} if page else {})
        return _page(await self._http.request("GET", "/v1/jobs", params=params))

    async def _get(self, job_id: str | None) -> _Job | None:
        if not _is_uuid(job_id):
            return None
        try:
            return _job(await self._http.request("GET", f"/v1/jobs/{job_id}"))
        except ProviderRejected:  # 404 (or 400): not a job of ours
            return None

    async def reconcile(self, attempt: SubmitAttempt) -> TaskSnapshot | None:
        expected = await self._expected(attempt)
        if expected is None:  # a request this adapter refuses before sending it created nothing
            return None
        job = pick_job(await self._jobs_since(expected.window[0]), expected)
        return _snapshot(job, self.capabilities) if job is not None else None

    async def _expected(self, attempt: SubmitAttempt) -> Expected | None:
        slack, tagged = self._settings.clock_slack, self._settings.seed_tag and attempt.client_ref
        window = (attempt.started_at - slack, attempt.started_at + self._settings.request_timeout + slack)
        own = ref_seed(attempt.client_ref) if tagged else None  # what the submit sent, if it sent one
        if attempt.remix:  # a Remix press went out as an imagine of the edited prompt
            attempt = attempt.model_copy(update={"kind": Action.IMAGINE})
        if attempt.kind in _COMMAND_TYPES:
            given = _SEED_FLAG.search(attempt.prompt or "")
            seed = int(given[1]) if given else own if attempt.kind is Action.IMAGINE else None
            types = frozenset({_COMMAND_TYPES[attempt.kind]})
            known = attempt.prompt is not None  # then the prompt tells whether it carried its own seed
            return Expected(types, window, seed, own_seed=not given, seed_known=known, prompt=attempt.prompt)
        if attempt.kind not in (*_PRESS_TYPES, Action.REROLL):
            return None
        parent = await self._get(attempt.parent_task_id)
        if parent is None:  # the API refuses a press on a job it does not know
            return None
        if attempt.kind is Action.REROLL:  # the parent's request again, with this attempt's seed
            types = frozenset({parent.type or "imagine"})
            return Expected(types, window, own, own_seed=True, prompt=parent.prompt, parent=parent.id)
        types = frozenset({_PRESS_TYPES[attempt.kind]})
        return Expected(types, window, prompt=parent.prompt, parent=parent.id)

    async def _jobs_since(self, since: float) -> list[_Job]:
        """The account's jobs created since `since` (and some older), newest pages first."""
        jobs: dict[str, _Job] = {}
        for page in range(_RECONCILE_PAGES):
            batch = await self._list_page(page)
            jobs |= {job.id: job for job in batch if job.id not in jobs}
            if len(batch) < self._settings.list_limit or any((j.created() or since) < since for j in batch):
                return list(jobs.values())
        raise ProviderUnavailable("mj_rest holds too many recent jobs to look that submit up.")

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
