"""`mj_proxy`: the midjourney-proxy family (providers.md §5).

Plus-API servers (litter-coder Plus, trueai-org, most hosted relays) answer with Discord-like
`buttons`; a button is pressed by posting its `customId` to /mj/submit/action, and a task that
needs a confirmation (code 21, status MODAL) is finished through /mj/submit/modal. The open-source
server (novicezk) has no buttons: U/V/reroll go through /mj/submit/change (or simple-change).

Every submit carries the bot's attempt key in the documented `state` field, which each task echoes:
`reconcile` finds the task of a submit whose answer was lost in GET /mj/task/list by that state.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from providers._http import ProviderHTTP, bearer_headers, error_for, parse_as
from providers.base import (
    ALL_FLAGS,
    COMMANDS,
    UPSCALE_FOLLOWUPS,
    Action,
    ActRequest,
    BaseProvider,
    Capabilities,
    Flag,
    FlagPolicy,
    GenerationRequest,
    ParentTask,
    ProviderConfig,
    Speed,
    SubmitAttempt,
    TaskResult,
    TaskSnapshot,
    TaskStatus,
    grid_offers,
    offer_key,
    progress_from,
    remix_request,
)
from providers.errors import N_, ErrorKind, ProviderProtocolError, ProviderRejected, ProviderUnavailable


class MjProxyConfig(ProviderConfig):
    type: Literal["mj_proxy"] = "mj_proxy"
    base_url: str = "http://127.0.0.1:8080"
    auth: Literal["mj-api-secret", "bearer"] = "mj-api-secret"  # self-hosted vs hosted relays
    api_flavor: Literal["plus", "opensource"] = "plus"
    change_endpoint: Literal["change", "simple-change"] = "change"  # U/V/reroll without buttons
    speed_paths: Literal["mj", "short", "none"] = "mj"  # /mj-fast/mj/..., /fast/mj/..., /mj/...
    batch_size: int = Field(default=50, ge=1)  # ids per list-by-condition; 1 = GET .../fetch per id
    animate_motion: Literal["high", "low"] = "high"  # which Animate button the video offer presses
    # echoed back in every task: tells this bot's tasks apart on a shared proxy. A submit sends
    # "<state>:<client_ref>" (just the client_ref when state is empty), which `reconcile` looks for.
    state: str = Field(default="", max_length=255)
    task_list: bool = True  # GET /mj/task/list is served (novicezk, trueai); false: no reconcile
    clock_slack: float = Field(default=60.0, ge=0)  # how far the proxy's clock may be from ours, s


_COMMON = {Action.IMAGINE, Action.DESCRIBE, Action.BLEND, Action.UPSCALE, Action.VARIATION, Action.REROLL}
#: buttons (Vary (Region): MJ::Inpaint, whose MODAL takes `maskBase64`) + shorten
_PLUS_ONLY = {*UPSCALE_FOLLOWUPS, Action.VARY_REGION, Action.SHORTEN, Action.VIDEO_EXTEND}
#: The prompt goes to Midjourney whole, flags included. A Plus relay reports videos (`videoUrls`) on
#: any task, so --video / --motion pass too; the open-source proxy has no video and refuses them.
_PLUS_FLAGS = FlagPolicy(passed=ALL_FLAGS)
_OPENSOURCE_FLAGS = FlagPolicy(passed=ALL_FLAGS - {Flag.VIDEO, Flag.MOTION})

_STATUS = {
    "NOT_START": TaskStatus.SUBMITTED,
    "SUBMITTED": TaskStatus.SUBMITTED,
    "IN_PROGRESS": TaskStatus.RUNNING,
    "MODAL": TaskStatus.RUNNING,  # waiting for /mj/submit/modal (we send it right after code 21)
    "SUCCESS": TaskStatus.SUCCEEDED,
    "FAILURE": TaskStatus.FAILED,
    "CANCEL": TaskStatus.CANCELLED,
    "CANCELED": TaskStatus.CANCELLED,
    "CANCELLED": TaskStatus.CANCELLED,
}
_CODE_KINDS = {3: ErrorKind.NOT_FOUND, 4: ErrorKind.REJECTED, 9: ErrorKind.UNAVAILABLE, 23: ErrorKind.BUSY}
_QUOTA_TEXT = re.compile(r"quota|credit|insufficient|balance|余额|额度", re.IGNORECASE)
_GRID_TASKS = {"IMAGINE", "VARIATION", "REROLL", "BLEND", "ZOOM", "PAN", "OUTPAINT", "INPAINT"}
_PROMPT_TASKS = {"DESCRIBE", "SHORTEN"}
_CHANGE = {
    Action.UPSCALE: ("UPSCALE", "U"),
    Action.VARIATION: ("VARIATION", "V"),
    Action.REROLL: ("REROLL", "R"),
}

#: customId patterns (providers.md §5.5), most specific first; group 1 is the U/V index
_CUSTOM_IDS: tuple[tuple[re.Pattern[str], Action], ...] = tuple(
    (re.compile(pattern), action)
    for pattern, action in (
        (r"^MJ::JOB::upsample::([1-4])::", Action.UPSCALE),
        (r"^MJ::JOB::variation::([1-4])::", Action.VARIATION),
        (r"^MJ::JOB::reroll::", Action.REROLL),
        (r"^MJ::JOB::upsample_v[\w.]*_subtle::", Action.UPSCALE_SUBTLE),
        (r"^MJ::JOB::upsample_v[\w.]*_creative::", Action.UPSCALE_CREATIVE),
        (r"^MJ::JOB::upsample_v[\w.]*_2x::", Action.UPSCALE_2X),
        (r"^MJ::JOB::upsample_v[\w.]*_4x::", Action.UPSCALE_4X),
        (r"^MJ::Outpaint::100::", Action.MAKE_SQUARE),
        (r"^MJ::CustomZoom::", Action.CUSTOM_ZOOM),
        (r"^MJ::Inpaint::", Action.VARY_REGION),
        (r"^MJ::JOB::low_variation::", Action.VARY_SUBTLE),
        (r"^MJ::JOB::high_variation::", Action.VARY_STRONG),
        (r"^MJ::Outpaint::50::", Action.ZOOM_OUT_2X),
        (r"^MJ::Outpaint::75::", Action.ZOOM_OUT_1_5X),
        (r"^MJ::JOB::pan_left::", Action.PAN_LEFT),
        (r"^MJ::JOB::pan_right::", Action.PAN_RIGHT),
        (r"^MJ::JOB::pan_up::", Action.PAN_UP),
        (r"^MJ::JOB::pan_down::", Action.PAN_DOWN),
        (r"^MJ::JOB::animate_(?:high|low)_extend::", Action.VIDEO_EXTEND),
        (r"^MJ::JOB::animate_(?:high|low)::", Action.VIDEO),
    )
)
_LABELS = {
    "upscale (subtle)": Action.UPSCALE_SUBTLE,
    "upscale (creative)": Action.UPSCALE_CREATIVE,
    "vary (subtle)": Action.VARY_SUBTLE,
    "vary (strong)": Action.VARY_STRONG,
    "zoom out 2x": Action.ZOOM_OUT_2X,
    "zoom out 1.5x": Action.ZOOM_OUT_1_5X,
    "upscale (2x)": Action.UPSCALE_2X,
    "upscale (4x)": Action.UPSCALE_4X,
    "make square": Action.MAKE_SQUARE,
    "custom zoom": Action.CUSTOM_ZOOM,
    "vary (region)": Action.VARY_REGION,
}
#: "Redo Upscale (2x)", "Redo Upscale (Subtle)" ...: the upscaler's own customId again, told apart by label
_REDO = re.compile(r"^redo upscale\b", re.IGNORECASE)
_EMOJI = {
    "🔄": Action.REROLL,
    "⬅": Action.PAN_LEFT,
    "➡": Action.PAN_RIGHT,
    "⬆": Action.PAN_UP,
    "⬇": Action.PAN_DOWN,
}
_KEYCAP = re.compile(r"([1-9])\ufe0f?\u20e3")
_STATE_MAX = 255
#: trueai answers GET /mj/task/list with its newest 100 tasks (novicezk with all of them)
LIST_LIMIT = 100


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class _Envelope(_Model):
    code: int
    description: str | None = None
    result: str | None = None
    properties: dict[str, Any] | None = None


class _Button(_Model):
    customId: str = ""
    emoji: str | None = ""
    label: str | None = ""


class _Url(_Model):
    url: str


class _Task(_Model):
    id: str
    action: str | None = None
    status: str | None = None
    state: str | None = None
    submitTime: float | str | None = None  # epoch milliseconds (read leniently: only reconcile needs it)
    progress: str | float | None = None
    prompt: str | None = None
    imageUrl: str | None = None
    imageUrls: list[_Url | str] | None = None
    videoUrl: str | None = None
    videoUrls: list[_Url | str] | None = None
    failReason: str | None = None
    properties: dict[str, Any] | None = None
    buttons: list[_Button] | None = None
    width: int | None = None
    height: int | None = None
    imageWidth: int | None = None
    imageHeight: int | None = None


def button_action(button: _Button) -> tuple[Action, int] | None:
    """Our action for a proxy button: by customId pattern, else by label, else by emoji. A redo
    carries the customId of the upscaler it repeats, so its label is read first."""
    if _REDO.match((button.label or "").strip()):
        return Action.REDO_UPSCALE, 0
    for pattern, action in _CUSTOM_IDS:
        match = pattern.match(button.customId)
        if match:
            return action, int(match.group(1)) if match.groups() else 0
    label = (button.label or "").strip()
    if re.fullmatch(r"[UV][1-4]", label):
        return (Action.UPSCALE if label[0] == "U" else Action.VARIATION), int(label[1])
    if label.lower() in _LABELS:
        return _LABELS[label.lower()], 0
    emoji = (button.emoji or "").replace("\ufe0f", "").strip()
    return (_EMOJI[emoji], 0) if emoji in _EMOJI else None


def _offers(task: _Task, caps: Capabilities, motion: str) -> dict[str, str]:
    offers: dict[str, str] = {}
    for button in task.buttons or []:
        found = button_action(button)
        if found is None or not caps.can(found[0]) or not button.customId:
            continue
        key = offer_key(*found)
        if key not in offers or f"animate_{motion}" in button.customId:  # both Animate buttons -> VIDEO
            offers[key] = button.customId
    return offers


def _urls(items: list[_Url | str] | None) -> list[str]:
    return [item if isinstance(item, str) else item.url for item in items or []]


def parse_prompts(text: str) -> list[str]:
    """`"1️⃣ a … \\n\\n2️⃣ b …"` (describe and shorten results) as a list of prompts."""
    parts = _KEYCAP.split(text)
    if len(parts) > 1:  # [preamble, "1", prompt, "2", prompt, ...]
        return [p.strip() for p in parts[2::2] if p.strip()]
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _is_grid(task: _Task) -> bool:
    if task.buttons:
        return any((button_action(b) or (None, 0))[0] is Action.UPSCALE for b in task.buttons)
    return (task.action or "IMAGINE").upper() in _GRID_TASKS


def _result(task: _Task) -> TaskResult:
    action = (task.action or "").upper()
    size = {"width": task.width or task.imageWidth, "height": task.height or task.imageHeight}
    if action in _PROMPT_TASKS:
        final = str((task.properties or {}).get("finalPrompt") or task.prompt or "")
        return TaskResult(prompts=parse_prompts(final), **size)
    videos = _urls(task.videoUrls) or ([task.videoUrl] if task.videoUrl else [])
    if action == "VIDEO" or videos:
        return TaskResult(video_urls=videos, **size)
    if _is_grid(task):
        return TaskResult(grid_url=task.imageUrl, image_urls=_urls(task.imageUrls)[:4], **size)
    return TaskResult(image_urls=[task.imageUrl] if task.imageUrl else [], **size)


def _snapshot(task: _Task, caps: Capabilities, motion: str) -> TaskSnapshot:
    status = _STATUS.get((task.status or "").upper())
    if status is None:
        raise ProviderProtocolError("mj_proxy sent a task with an unknown status.")
    snapshot = TaskSnapshot(task_id=task.id, status=status, progress=progress_from(task.progress))
    if status is TaskStatus.RUNNING:
        snapshot.preview_url = task.imageUrl
    elif status is TaskStatus.SUCCEEDED:
        snapshot.progress = 100
        snapshot.result = _result(task)
        snapshot.actions = _offers(task, caps, motion)
        if not task.buttons and snapshot.result.grid_url:  # no buttons: U/V/reroll via /change
            snapshot.actions = grid_offers(caps)
    elif status is TaskStatus.FAILED:
        snapshot.error = (task.failReason or N_("The generation failed."))[:300]
    return snapshot


def zoom_prompt(parent: ParentTask, request: ActRequest) -> str:
    """Custom Zoom's form text: the edited prompt (else the parent's) with ``--zoom <factor>``."""
    prompt = request.prompt or (parent.request.prompt.full() if parent.request.prompt else "")
    if request.zoom is None:
        raise ProviderRejected("Custom Zoom needs a zoom factor (--zoom 1-2).")
    return f"{prompt} --zoom {request.zoom:g}".strip()


def _task(data: Any) -> _Task:
    error = ProviderProtocolError("mj_proxy sent a task that is not in the documented shape.")
    return parse_as(_Task, data, error)


def attempt_state(prefix: str, client_ref: str | None) -> str:
    """The `state` a submit sends: the configured state and the attempt key, as ``prefix:client_ref``."""
    if not client_ref:
        return prefix
    if not prefix:
        return client_ref[:_STATE_MAX]
    room = max(0, _STATE_MAX - len(client_ref) - 1)
    return f"{prefix[:room]}:{client_ref}"[:_STATE_MAX]


def _millis(task: _Task) -> float | None:
    try:
        return float(task.submitTime) if task.submitTime is not None else None
    except ValueError:
        return None


def find_attempt(tasks: list[_Task], state: str, since_ms: float) -> _Task | None:
    """The task whose echoed `state` is `state` (the earliest, should a proxy hold two), or None when
    the list is known to cover every task submitted since `since_ms`; otherwise the answer is unknown."""
    mine = sorted((t for t in tasks if t.state == state), key=lambda t: _millis(t) or 0)
    if mine:
        return mine[0]
    times = [ms for ms in map(_millis, tasks) if ms is not None]
    if len(tasks) < LIST_LIMIT or (times and min(times) <= since_ms):
        return None
    raise ProviderUnavailable("mj_proxy's task list does not reach back to that submit; it cannot tell.")


def accepted(body: Any, provider: str) -> tuple[str, _Envelope]:
    """The task id of a submit answer (codes 1, 21, 22), or the error its code stands for."""
    error = ProviderProtocolError("{provider} sent a submit answer without a code.", provider=provider)
    envelope = parse_as(_Envelope, body, error)
    if envelope.code in (1, 21, 22):
        if not envelope.result:
            raise ProviderProtocolError(
                "{provider} accepted the task but sent no task id.", provider=provider
            )
        return envelope.result, envelope
    detail = envelope.description or f"code {envelope.code}"
    if envelope.code == 24:
        word = (envelope.properties or {}).get("bannedWord")
        detail = f"the prompt contains the banned word '{word}'" if word else detail
        raise error_for(ErrorKind.REJECTED, detail, provider)
    kind = ErrorKind.QUOTA if _QUOTA_TEXT.search(detail) else _CODE_KINDS.get(envelope.code)
    raise error_for(kind or ErrorKind.REJECTED, detail, provider)


class MjProxyProvider(BaseProvider):
    config_class: ClassVar[type[ProviderConfig]] = MjProxyConfig
    capabilities = Capabilities(
        actions=frozenset(_COMMON | _PLUS_ONLY),
        batch_fetch=50,
        webhooks=True,
        progress=True,
        preview=True,
        cancel=True,
        max_images=5,
        reconcile=True,
        flags=_PLUS_FLAGS,
    )

    def __init__(self, config: MjProxyConfig, client: httpx.AsyncClient) -> None:
        super().__init__(config)
        self._settings = config
        plus = config.api_flavor == "plus"
        actions = _COMMON | _PLUS_ONLY if plus else _COMMON
        update = {"actions": frozenset(actions), "batch_fetch": config.batch_size, "cancel": plus}
        update |= {"reconcile": config.task_list, "flags": _PLUS_FLAGS if plus else _OPENSOURCE_FLAGS}
        self.capabilities = self.capabilities.model_copy(update=update)
        key = config.api_key.get_secret_value() if config.api_key else ""
        headers = bearer_headers(config) if config.auth == "bearer" else {"mj-api-secret": key} if key else {}
        self._http = ProviderHTTP(client, config, headers)

    def _path(self, endpoint: str, speed: Speed | None) -> str:
        style = self._settings.speed_paths
        if speed is None or style == "none":
            return f"/mj/submit/{endpoint}"
        return f"/mj-{speed}/mj/submit/{endpoint}" if style == "mj" else f"/{speed}/mj/submit/{endpoint}"

    def _common(self, callback_url: str | None, client_ref: str | None) -> dict[str, str]:
        state = attempt_state(self._settings.state, client_ref)
        fields = {"notifyHook": callback_url or "", "state": state}
        return {k: v for k, v in fields.items() if v}

    async def _post(self, endpoint: str, body: dict[str, Any], speed: Speed | None) -> tuple[str, _Envelope]:
        answer = await self._http.request("POST", self._path(endpoint, speed), json_body=body)
        return accepted(answer, self.config.name)

    def _command(self, request: GenerationRequest) -> tuple[str, dict[str, Any]]:
        plus = self._settings.api_flavor == "plus"
        self.capabilities.flags.check(self.config.name, request.prompt)
        prompt = request.prompt.full() if request.prompt else ""
        body: dict[str, Any] = self._common(request.callback_url, request.client_ref)
        if plus and request.prompt and request.kind is not Action.SHORTEN:
            body["botType"] = "NIJI_JOURNEY" if request.prompt.niji else "MID_JOURNEY"
        if request.kind is Action.IMAGINE and prompt:
            images = [i.data_uri() for i in request.images]
            return "imagine", body | {"prompt": prompt} | ({"base64Array": images} if images else {})
        if request.kind is Action.DESCRIBE and request.images:
            return "describe", body | {"base64": request.images[0].data_uri()}
        if request.kind is Action.BLEND and 2 <= len(request.images) <= 5:
            dims = {"dimensions": request.dimensions.upper()} if request.dimensions else {}
            return "blend", body | {"base64Array": [i.data_uri() for i in request.images]} | dims
        if request.kind is Action.SHORTEN and prompt and plus:
            return "shorten", body | {"prompt": prompt}
        raise ProviderRejected(
            "Provider '{provider}' cannot run this {command} request.",
            provider=self.config.name,
            command=request.kind.value,
        )

    async def submit(self, request: GenerationRequest) -> TaskSnapshot:
        endpoint, body = self._command(request)
        task_id, _ = await self._post(endpoint, body, request.speed)
        return TaskSnapshot(task_id=task_id, status=TaskStatus.SUBMITTED)

    async def act(self, parent: ParentTask, request: ActRequest) -> TaskSnapshot:
        if not parent.task_id:
            raise ProviderRejected("This job has no provider task to act on.")
        custom_id = parent.actions.get(offer_key(request.action, request.index), "")
        if request.action is Action.CUSTOM_ZOOM:  # its form takes the edited prompt with --zoom
            request = request.model_copy(update={"prompt": zoom_prompt(parent, request)})
        if custom_id and self._settings.api_flavor == "plus":
            if request.action is Action.VARY_REGION and request.mask is None:
                raise ProviderRejected("Vary (Region) needs a region drawn on the image (the web editor).")
            return await self._press(parent, parent.task_id, custom_id, request)
        if (remixed := remix_request(parent, request)) is not None:  # /change has no remix form
            return await self.submit(remixed)
        if request.action in _CHANGE and (request.action is Action.REROLL or 1 <= request.index <= 4):
            return await self._change(parent.task_id, request)
        raise ProviderRejected(
            "Provider '{provider}' cannot {action} this job.",
            provider=self.config.name,
            action=request.action.value,
        )

    async def _press(
        self, parent: ParentTask, task_id: str, custom_id: str, request: ActRequest
    ) -> TaskSnapshot:
        common = self._common(request.callback_url, request.client_ref)
        body: dict[str, Any] = {"taskId": task_id, "customId": custom_id} | common
        if request.remix is not None:  # Remix: the press waits in MODAL for the edited prompt
            body["enableRemix"] = True
        new_id, envelope = await self._post("action", body, request.speed)
        status = (envelope.properties or {}).get("status")
        if envelope.code == 21 and status in (None, "MODAL"):  # remix / custom input / region: confirm it
            prompt = request.prompt or (parent.request.prompt.full() if parent.request.prompt else "")
            mask = {"maskBase64": request.mask.data_uri()} if request.mask is not None else {}
            new_id = await self._confirm(new_id, prompt, common | mask, request.speed)
        return TaskSnapshot(task_id=new_id, status=TaskStatus.SUBMITTED)

    async def _confirm(self, task_id: str, prompt: str, common: dict[str, str], speed: Speed | None) -> str:
        """Finish a task waiting in MODAL (code 21) through /mj/submit/modal."""
        new_id, _ = await self._post("modal", {"taskId": task_id, "prompt": prompt} | common, speed)
        return new_id

    async def _change(self, task_id: str, request: ActRequest) -> TaskSnapshot:
        name, letter = _CHANGE[request.action]
        body: dict[str, Any]
        if self._settings.change_endpoint == "simple-change":
            command = f"{task_id} {letter}{request.index if letter != 'R' else ''}"
            endpoint, body = "simple-change", {"content": command}
        else:
            index = {} if request.action is Action.REROLL else {"index": request.index}
            endpoint, body = "change", {"taskId": task_id, "action": name} | index
        common = self._common(request.callback_url, request.client_ref)
        new_id, _ = await self._post(endpoint, body | common, request.speed)
        return TaskSnapshot(task_id=new_id, status=TaskStatus.SUBMITTED)

    async def fetch(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return []
        if self._settings.batch_size == 1:
            return [s for i in ids for s in await self._fetch_one(i)]
        body = await self._http.request("POST", "/mj/task/list-by-condition", json_body={"ids": ids})
        if not isinstance(body, list):
            raise ProviderProtocolError("mj_proxy sent a task list that is not a list.")
        found = {task.id: task for task in map(_task, body)}
        return [self._snap(found[i]) for i in ids if i in found]

    async def _fetch_one(self, task_id: str) -> list[TaskSnapshot]:
        try:
            body = await self._http.request("GET", f"/mj/task/{task_id}/fetch")
        except ProviderRejected:  # 404 on relays
            return []
        except ProviderProtocolError:  # the open-source server answers an unknown id with an empty 200
            return []
        return [self._snap(_task(body))]

    async def reconcile(self, attempt: SubmitAttempt) -> TaskSnapshot | None:
        """The task whose `state` carries `attempt.client_ref`, from GET /mj/task/list; a task still
        waiting in MODAL lost its confirmation with the answer, so it is confirmed here."""
        if not self.capabilities.reconcile or not attempt.client_ref:  # nothing to look for
            return await super().reconcile(attempt)
        body = await self._http.request("GET", "/mj/task/list")
        if not isinstance(body, list):
            raise ProviderProtocolError("mj_proxy sent a task list that is not a list.")
        state = attempt_state(self._settings.state, attempt.client_ref)
        since_ms = (attempt.started_at - self._settings.clock_slack) * 1000
        task = find_attempt([_task(item) for item in body], state, since_ms)
        if task is not None and (task.status or "").upper() == "MODAL" and attempt.kind not in COMMANDS:
            common = self._common(None, attempt.client_ref)
            await self._confirm(task.id, attempt.prompt or "", common, None)
            return TaskSnapshot(task_id=task.id, status=TaskStatus.SUBMITTED)
        return self._snap(task) if task is not None else None

    def _snap(self, task: _Task) -> TaskSnapshot:
        return _snapshot(task, self.capabilities, self._settings.animate_motion)

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskSnapshot:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProviderProtocolError("The notifyHook body is not JSON.") from exc
        if not isinstance(data, dict):
            raise ProviderProtocolError("The notifyHook body is not a task.")
        return self._snap(_task(data))

    async def cancel(self, task_id: str) -> None:
        if not self.capabilities.cancel:
            await super().cancel(task_id)
        await self._http.request("POST", f"/mj/task/{task_id}/cancel")
