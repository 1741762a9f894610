"""OhMyGPT Midjourney Open API: imagine, action (by customId), blend, describe, query, bulk query.

Answers are envelopes `{statusCode, message, data}`; every call carries `model=midjourney`.
Buttons come as `actions: [{customId, emoji, label}]`: we map them to Actions and keep the customId.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from providers._http import ProviderHTTP, bearer_headers, envelope, error_for, parse_as, status_kind
from providers.base import (
    ALL_FLAGS,
    GRID_ACTIONS,
    UPSCALE_FOLLOWUPS,
    Action,
    ActRequest,
    BaseProvider,
    Capabilities,
    Flag,
    FlagPolicy,
    GenerationRequest,
    ImageInput,
    ParentTask,
    ProviderConfig,
    Speed,
    TaskResult,
    TaskSnapshot,
    TaskStatus,
    offer_key,
    progress_from,
    remix_request,
)
from providers.errors import N_, ErrorKind, ProviderProtocolError, ProviderRejected

API = "/api/v1/ai/draw/mj"
DIMENSIONS = {"portrait": "PORTRAIT", "square": "SQUARE", "landscape": "LANDSCAPE"}
STATUSES = {
    "NOT_START": TaskStatus.SUBMITTED,
    "SUBMITTED": TaskStatus.SUBMITTED,
    "IN_PROGRESS": TaskStatus.RUNNING,
    "SUCCESS": TaskStatus.SUCCEEDED,
    "FAILURE": TaskStatus.FAILED,
    "FAILED": TaskStatus.FAILED,
    "CANCEL": TaskStatus.CANCELLED,
    "CANCELLED": TaskStatus.CANCELLED,
}
STATUS_KINDS = {400: ErrorKind.REJECTED, 401: ErrorKind.AUTH, 402: ErrorKind.QUOTA, 403: ErrorKind.AUTH}
STATUS_KINDS |= {404: ErrorKind.NOT_FOUND, 429: ErrorKind.RATE_LIMITED}
#: OhMyGPT documents only 200/400; a 400's message says what went wrong (INFERRED wording)
MESSAGE_KINDS: tuple[tuple[re.Pattern[str], ErrorKind], ...] = (
    (re.compile(r"balance|insufficient|credit|quota|余额", re.I), ErrorKind.QUOTA),
    (re.compile(r"concurren|queue|busy|繁忙|排队", re.I), ErrorKind.BUSY),
    (re.compile(r"rate.?limit|too many requests|频繁", re.I), ErrorKind.RATE_LIMITED),
    (re.compile(r"api.?key|unauthori[sz]ed|permission|forbidden", re.I), ErrorKind.AUTH),
    (re.compile(r"maintenance|unavailable|维护", re.I), ErrorKind.UNAVAILABLE),
)

#: button label / emoji -> action (labels "U1".."V4" are handled by _GRID_LABEL)
LABELS = {
    "upscale (subtle)": Action.UPSCALE_SUBTLE,
    "upscale (creative)": Action.UPSCALE_CREATIVE,
    "vary (subtle)": Action.VARY_SUBTLE,
    "vary (strong)": Action.VARY_STRONG,
    "vary (region)": Action.VARY_REGION,
    "zoom out 2x": Action.ZOOM_OUT_2X,
    "zoom out 1.5x": Action.ZOOM_OUT_1_5X,
    "upscale (2x)": Action.UPSCALE_2X,
    "upscale (4x)": Action.UPSCALE_4X,
    "make square": Action.MAKE_SQUARE,
    "🔄": Action.REROLL,
    "⬅️": Action.PAN_LEFT,
    "➡️": Action.PAN_RIGHT,
    "⬆️": Action.PAN_UP,
    "⬇️": Action.PAN_DOWN,
}
#: customId pattern -> action, for buttons whose label is missing or unfamiliar
CUSTOM_IDS: tuple[tuple[re.Pattern[str], Action], ...] = (
    (re.compile(r"::upsample::(\d)::"), Action.UPSCALE),
    (re.compile(r"::variation::(\d)::"), Action.VARIATION),
    (re.compile(r"::reroll::"), Action.REROLL),
    (re.compile(r"::upsample_v[\w.]*_subtle::"), Action.UPSCALE_SUBTLE),
    (re.compile(r"::upsample_v[\w.]*_creative::"), Action.UPSCALE_CREATIVE),
    (re.compile(r"::upsample_v[\w.]*_2x::"), Action.UPSCALE_2X),
    (re.compile(r"::upsample_v[\w.]*_4x::"), Action.UPSCALE_4X),
    (re.compile(r"::Outpaint::100::"), Action.MAKE_SQUARE),
    (re.compile(r"::low_variation::"), Action.VARY_SUBTLE),
    (re.compile(r"^MJ::Inpaint::"), Action.VARY_REGION),
    (re.compile(r"::high_variation::"), Action.VARY_STRONG),
    (re.compile(r"::Outpaint::50::"), Action.ZOOM_OUT_2X),
    (re.compile(r"::Outpaint::75::"), Action.ZOOM_OUT_1_5X),
    (re.compile(r"::pan_left::"), Action.PAN_LEFT),
    (re.compile(r"::pan_right::"), Action.PAN_RIGHT),
    (re.compile(r"::pan_up::"), Action.PAN_UP),
    (re.compile(r"::pan_down::"), Action.PAN_DOWN),
)
_GRID_LABEL = re.compile(r"^([UV])([1-4])$")


def _norm(text: str) -> str:
    """Lower case, no emoji variation selector: "⬅️" and "⬅" match alike."""
    return text.strip().lower().replace("\ufe0f", "")


_LABEL_INDEX = {_norm(label): action for label, action in LABELS.items()}
_KEYCAP = re.compile(r"[1-9]\ufe0f?\u20e3")


class OhmygptConfig(ProviderConfig):
    required_secrets = ("api_key",)
    type: Literal["ohmygpt"] = "ohmygpt"
    base_url: str = "https://api.ohmygpt.com"
    body: Literal["json", "form"] = "json"  # CONFLICT: pages show form, the service doc recommends JSON
    default_pool: Literal["NORMAL", "FAST"] = "FAST"  # `type` when the request names no speed
    image_urls_in_prompt: bool = False  # put images that have public URLs in front of the prompt
    bulk_fetch: bool = True  # batch polling through query-mj-tasks
    bulk_page_size: int = Field(default=20, ge=5, le=20)
    bulk_max_pages: int = Field(default=2, ge=1, le=10)


class _Button(BaseModel):
    model_config = ConfigDict(extra="ignore")

    customId: str = ""
    emoji: str = ""
    label: str = ""

    @field_validator("customId", "emoji", "label", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else value


class _Task(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    taskId: str = Field(validation_alias=AliasChoices("taskId", "id"))
    status: str = ""
    action: str = ""
    progress: str | None = None
    prompt: str | None = None
    description: str | None = None
    failReason: str | None = None
    imageS3Url: str | None = None
    imageDcUrl: str | None = Field(default=None, validation_alias=AliasChoices("imageDcUrl", "imageUrl"))
    actions: list[_Button] = Field(default_factory=list, validation_alias=AliasChoices("actions", "buttons"))
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("status", "action", "actions", "properties", mode="before")
    @classmethod
    def _empty(cls, value: Any, info: Any) -> Any:
        if value is None:
            return [] if info.field_name == "actions" else {} if info.field_name == "properties" else ""
        return value


# --- requests -----------------------------------------------------------------------------------


def _pool(config: OhmygptConfig, speed: Speed | None) -> str:
    return config.default_pool if speed is None else "NORMAL" if speed == "relax" else "FAST"


def _common(config: OhmygptConfig, speed: Speed | None, webhook: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "midjourney", "type": _pool(config, speed)}
    if webhook:
        body["webhook"] = webhook
    return body


#: The prompt goes to Midjourney whole, flags included; the query schema has no video field, so
#: --video / --motion are refused rather than producing a video this adapter could not show.
FLAGS = FlagPolicy(passed=ALL_FLAGS - {Flag.VIDEO, Flag.MOTION})


def _imagine_body(config: OhmygptConfig, request: GenerationRequest) -> dict[str, Any]:
    FLAGS.check(config.name, request.prompt)
    linked = [i for i in request.images if i.url] if config.image_urls_in_prompt else []
    inline = [i for i in request.images if i not in linked]
    prompt = " ".join(
        [*(i.url or "" for i in linked), request.prompt.full() if request.prompt else ""]
    ).strip()
    if not prompt:
        raise ProviderRejected("OhMyGPT needs a prompt.")
    if len(prompt) > config.max_prompt_length:
        raise ProviderRejected(
            "The prompt is longer than {limit} characters.", limit=config.max_prompt_length
        )
    body = _common(config, request.speed, request.callback_url) | {"prompt": prompt}
    if inline:
        body["base64Array"] = [image.data_uri() for image in inline]
    return body


def _blend_body(config: OhmygptConfig, request: GenerationRequest, low: int, high: int) -> dict[str, Any]:
    if not low <= len(request.images) <= high:
        raise ProviderRejected("Blend takes {low} to {high} images.", low=low, high=high)
    body = _common(config, request.speed, request.callback_url)
    body["base64Array"] = [image.data_uri() for image in request.images]
    body["dimensions"] = DIMENSIONS[request.dimensions or "square"]
    return body


def _describe_body(config: OhmygptConfig, request: GenerationRequest) -> dict[str, Any]:
    if len(request.images) != 1:
        raise ProviderRejected("Describe takes exactly one image.")
    image: ImageInput = request.images[0]
    return _common(config, request.speed, request.callback_url) | {"base64": image.data_uri()}


def _action_body(config: OhmygptConfig, parent: ParentTask, request: ActRequest) -> dict[str, Any]:
    custom_id = parent.actions.get(offer_key(request.action, request.index))
    if not custom_id or not parent.task_id:
        raise ProviderRejected("This button is not available for this image.")
    body = _common(config, request.speed, request.callback_url)
    task_id: int | str = int(parent.task_id) if parent.task_id.isdigit() else parent.task_id
    if request.action is Action.VARY_REGION:  # the mask goes with the press (base64Mask, a data URI)
        if request.mask is None:
            raise ProviderRejected("Vary (Region) needs a region drawn on the image (the web editor).")
        body |= {"base64Mask": request.mask.data_uri()}
        body |= {"prompt": request.prompt} if request.prompt else {}
    return body | {"taskId": task_id, "customId": custom_id}


def _form(body: Mapping[str, Any]) -> dict[str, Any]:
    """Form fields are text; a list becomes repeated fields (`base64Array=...&base64Array=...`)."""
    return {
        k: [str(v) for v in value] if isinstance(value, list) else str(value) for k, value in body.items()
    }


# --- responses ----------------------------------------------------------------------------------


def _kind(status_code: int, message: str | None) -> ErrorKind:
    kind = status_kind(status_code, STATUS_KINDS)
    if kind in (ErrorKind.REJECTED, ErrorKind.NOT_FOUND) and message:
        kind = next((k for pattern, k in MESSAGE_KINDS if pattern.search(message)), kind)
    return kind


def _envelope(raw: Any, provider: str) -> tuple[int, str | None, Any]:
    return envelope(raw, provider, code="statusCode", message="message")


def _offer(button: _Button) -> tuple[Action, int] | None:
    if _norm(button.label).startswith("redo upscale"):  # the upscaler's customId again: read the label
        return Action.REDO_UPSCALE, 0
    if match := _GRID_LABEL.match(button.label.strip()):
        return (Action.UPSCALE if match[1] == "U" else Action.VARIATION), int(match[2])
    for text in (_norm(button.label), _norm(button.emoji)):
        if text in _LABEL_INDEX:
            return _LABEL_INDEX[text], 0
    for pattern, action in CUSTOM_IDS:
        if match := pattern.search(button.customId):
            index = int(match[1]) if action in (Action.UPSCALE, Action.VARIATION) else 0
            return action, index
    return None  # Vary (Region), animate, ❤️ ...: need forms or media we don't handle


def _offers(buttons: Sequence[_Button], caps: Capabilities) -> dict[str, str]:
    offers: dict[str, str] = {}
    for button in buttons:
        found = _offer(button)
        if found and button.customId and caps.can(found[0]):
            offers.setdefault(offer_key(*found), button.customId)
    return offers


def _prompts(task: _Task) -> list[str]:
    """Describe's four prompts, from `1️⃣ … 2️⃣ …` text or blank-line separated paragraphs."""
    final = task.properties.get("finalPrompt")
    texts = [t for t in (final if isinstance(final, str) else None, task.prompt, task.description) if t]
    for text in texts:
        if _KEYCAP.search(text):
            return [part.strip() for part in _KEYCAP.split(text) if part.strip()]
    for text in texts:
        if not text.startswith("/"):
            return [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]
    return []


def _status(task: _Task) -> TaskStatus:
    if task.failReason:
        return TaskStatus.FAILED
    return STATUSES.get(task.status.upper(), TaskStatus.RUNNING)


def _snapshot(task: _Task, caps: Capabilities) -> TaskSnapshot:
    image = task.imageS3Url or task.imageDcUrl
    snap = TaskSnapshot(task_id=task.taskId, status=_status(task), progress=progress_from(task.progress))
    if task.status.upper() == "MODAL":  # waits for a form OhMyGPT has no endpoint for (Remix mode)
        snap.status, snap.error = TaskStatus.FAILED, "Midjourney asked for input this provider can't send."
    if snap.status in (TaskStatus.SUBMITTED, TaskStatus.RUNNING):
        snap.preview_url = image
    elif snap.status is TaskStatus.FAILED:
        snap.error = snap.error or (task.failReason or N_("The generation failed."))[:300]
    elif snap.status is TaskStatus.SUCCEEDED and task.action.upper() == "DESCRIBE":
        snap.result = TaskResult(prompts=_prompts(task))
    elif snap.status is TaskStatus.SUCCEEDED:
        if not image:
            snap.status, snap.error = TaskStatus.FAILED, "The provider returned no image."
            return snap
        snap.actions = _offers(task.actions, caps)
        grid = any(key.startswith("upscale:") for key in snap.actions) or (
            not task.actions and task.action.upper() != "UPSCALE"
        )
        snap.result = TaskResult(grid_url=image) if grid else TaskResult(image_urls=[image])
    return snap


def _parse_task(data: Any, provider: str) -> _Task:
    error = ProviderProtocolError("{provider} sent a task in an unexpected shape.", provider=provider)
    return parse_as(_Task, data, error)


class OhmygptProvider(BaseProvider):
    config_class: ClassVar[type[ProviderConfig]] = OhmygptConfig
    capabilities = Capabilities(
        # every grid button and every upscale follow-up but Animate (the query schema has no video field)
        # and Custom Zoom (a MODAL task: OhMyGPT has no endpoint to send its form)
        actions=frozenset(
            {Action.IMAGINE, Action.DESCRIBE, Action.BLEND, *(a for a, _ in GRID_ACTIONS), *UPSCALE_FOLLOWUPS,
             Action.VARY_REGION}
            - {Action.VIDEO, Action.CUSTOM_ZOOM}  # Custom Zoom's form has no endpoint here
        ),
        batch_fetch=20,
        webhooks=True,
        flags=FLAGS,
        progress=True,
        preview=True,
        max_images=5,
        blend_range=(2, 5),
    )

    def __init__(self, config: OhmygptConfig, client: httpx.AsyncClient) -> None:
        super().__init__(config)
        self._settings = config
        batch = config.bulk_page_size if config.bulk_fetch else 1
        self.capabilities = type(self).capabilities.model_copy(update={"batch_fetch": batch})
        self._http = ProviderHTTP(client, config, bearer_headers(config))

    async def submit(self, request: GenerationRequest) -> TaskSnapshot:
        settings = self._settings
        if request.kind is Action.IMAGINE:
            path, body = "imagine", _imagine_body(settings, request)
        elif request.kind is Action.BLEND:
            path, body = "blend", _blend_body(settings, request, *self.capabilities.blend_range)
        elif request.kind is Action.DESCRIBE:
            path, body = "describe", _describe_body(settings, request)
        else:
            raise ProviderRejected("OhMyGPT cannot {command}.", command=request.kind.value)
        return await self._start(path, body)

    async def act(self, parent: ParentTask, request: ActRequest) -> TaskSnapshot:
        if (remixed := remix_request(parent, request)) is not None:  # it has no endpoint for the form
            return await self.submit(remixed)
        return await self._start("action", _action_body(self._settings, parent, request))

    async def fetch(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        wanted = list(dict.fromkeys(task_ids))
        found: dict[str, TaskSnapshot] = {}
        if self._settings.bulk_fetch and len(wanted) > 1:
            found = await self._bulk(set(wanted))
        for task_id in wanted:  # what the recent pages did not hold (older tasks, unknown ids)
            if task_id not in found and (snapshot := await self._query(task_id)) is not None:
                found[task_id] = snapshot
        return [found[task_id] for task_id in wanted if task_id in found]

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskSnapshot:
        try:
            raw = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProviderProtocolError("The OhMyGPT webhook is not JSON.") from exc
        if isinstance(raw, dict) and "statusCode" in raw and isinstance(raw.get("data"), dict):
            raw = raw["data"]
        return _snapshot(_parse_task(raw, self.config.name), self.capabilities)

    async def _call(self, path: str, body: dict[str, Any], params: Mapping[str, Any] | None = None) -> Any:
        """POST, unwrap the envelope, raise for statusCode != 200; returns `data`."""
        form = self._settings.body == "form"
        try:
            raw = await self._http.request(
                "POST",
                f"{API}/{path}",
                json_body=None if form else body,
                form=_form(body) if form else None,
                params=params,
            )
        except ProviderRejected as exc:  # an HTTP 400 whose message names the real problem
            kind = _kind(400, exc.message)
            if kind is ErrorKind.REJECTED:
                raise
            raise error_for(kind, None, self.config.name) from exc
        status_code, message, data = _envelope(raw, self.config.name)
        if status_code != 200:
            raise error_for(_kind(status_code, message), message, self.config.name)
        return data

    async def _start(self, path: str, body: dict[str, Any]) -> TaskSnapshot:
        data = await self._call(path, body)
        task_id = data.get("taskId") if isinstance(data, dict) else data
        if isinstance(task_id, bool) or not isinstance(task_id, int | str) or not str(task_id).isdigit():
            raise ProviderProtocolError(
                "{provider} accepted the task but sent no task id.", provider=self.config.name
            )
        return TaskSnapshot(task_id=str(task_id), status=TaskStatus.SUBMITTED)

    async def _query(self, task_id: str) -> TaskSnapshot | None:
        body: dict[str, Any] = {
            "model": "midjourney",
            "taskId": int(task_id) if task_id.isdigit() else task_id,
        }
        try:
            data = await self._call("query", body)
        except ProviderRejected:  # "task not found" and the like: not a task of ours
            return None
        return _snapshot(_parse_task(data, self.config.name), self.capabilities) if data else None

    async def _bulk(self, wanted: set[str]) -> dict[str, TaskSnapshot]:
        found: dict[str, TaskSnapshot] = {}
        size = self._settings.bulk_page_size
        for page in range(1, self._settings.bulk_max_pages + 1):
            data = await self._call(
                "query-mj-tasks", {"model": "midjourney"}, {"page": page, "pageSize": size}
            )
            tasks = data.get("tasks") if isinstance(data, dict) else None
            if not isinstance(tasks, list):
                raise ProviderProtocolError(
                    "{provider} sent a task page in an unexpected shape.", provider=self.config.name
                )
            for task in (_parse_task(raw, self.config.name) for raw in tasks):
                if task.taskId in wanted:
                    found[task.taskId] = _snapshot(task, self.capabilities)
            if len(found) == len(wanted) or len(tasks) < size:
                break
        return found
