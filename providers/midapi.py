"""midapi.ai / kie.ai Midjourney API: generate, record-info, upscale, vary, video and video extend.

Every answer is an envelope `{code, msg, data}` (usually in an HTTP 200); `code` is mapped here.
The API returns four separate images (no grid) and no progress; reroll resubmits `paramJson`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from providers._http import ProviderHTTP, bearer_headers, envelope, error_for, parse_as, status_kind
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
    Speed,
    TaskResult,
    TaskSnapshot,
    TaskStatus,
    grid_offers,
    offer_key,
    remix_request,
    upscale_offers,
)
from providers.errors import N_, ErrorKind, ProviderError, ProviderProtocolError, ProviderRejected

GENERATE = "/api/v1/mj/generate"
RECORD = "/api/v1/mj/record-info"
UPSCALE = "/api/v1/mj/generateUpscale"
VARY = "/api/v1/mj/generateVary"
EXTEND = "/api/v1/mj/generateVideoExtend"

ASPECT_RATIOS = ("1:2", "9:16", "2:3", "3:4", "5:6", "6:5", "4:3", "3:2", "1:1", "16:9", "2:1")
VERSIONS = frozenset({"7", "6.1", "6", "5.2", "5.1", "niji6"})
IMAGE_TYPES = frozenset({"mj_txt2img", "mj_img2img", "mj_style_reference", "mj_omni_reference"})
REFERENCE_TYPES = {"img2img": "mj_img2img", "style": "mj_style_reference", "omni": "mj_omni_reference"}
SPEEDS: dict[str, str] = {"relax": "relaxed", "relaxed": "relaxed", "fast": "fast", "turbo": "turbo"}
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov")

#: envelope `code` -> error kind (200 is success; 501 on a record is a failed snapshot instead)
CODE_KINDS: dict[int, ErrorKind] = {
    400: ErrorKind.REJECTED,
    401: ErrorKind.AUTH,
    402: ErrorKind.QUOTA,
    404: ErrorKind.NOT_FOUND,
    422: ErrorKind.REJECTED,
    429: ErrorKind.RATE_LIMITED,
    455: ErrorKind.UNAVAILABLE,
    500: ErrorKind.UNAVAILABLE,
    501: ErrorKind.REJECTED,
    505: ErrorKind.REJECTED,
}
CODE_TEXT = {501: "generation failed", 505: "this feature is disabled", 455: "under maintenance"}

#: Flags with body fields are mapped: --sref / --oref pick the taskType and their image URLs become
#: `fileUrls` (style codes and `random` stay in the prompt). The rest stay in the prompt text, which
#: midapi hands to Midjourney (INFERRED). Video is the Animate button here, not a prompt flag.
_MAPPED = frozenset(
    {Flag.ASPECT, Flag.VERSION, Flag.NIJI, Flag.STYLIZE, Flag.CHAOS, Flag.WEIRD}
    | {Flag.STYLE_REF, Flag.OMNI_REF, Flag.OMNI_WEIGHT}
)
FLAGS = FlagPolicy(mapped=_MAPPED, passed=ALL_FLAGS - _MAPPED - {Flag.VIDEO, Flag.MOTION})
#: the mapped flags' fields, cleared from what stays in the prompt text
_FIELDS_SENT = {"aspect_ratio", "version", "niji", "stylize", "chaos", "weird", "omni_weight"}


class MidapiConfig(ProviderConfig):
    required_secrets = ("api_key",)
    type: Literal["midapi"] = "midapi"
    base_url: str = "https://api.midapi.ai"
    max_prompt_length: int = Field(default=2000, ge=1)
    default_speed: Speed = "fast"
    reference_mode: Literal["img2img", "style", "omni"] = "img2img"  # taskType when images are given
    omni_weight: int | None = Field(default=None, ge=1, le=1000)  # `ow` for omni reference
    vary_index_base: Literal[0, 1] = 0  # CONFLICT: schema says 0-3, developer notes say 1-4
    video_hd: bool = False
    video_motion: Literal["high", "low"] = "high"
    video_batch_size: Literal[1, 2, 4] = 1
    watermark: str | None = None
    enable_translation: bool = False


class _Record(BaseModel):
    """A record-info `data` object, or a callback `data` (which has `promptJson` and flat URLs)."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    taskId: str
    taskType: str | None = None
    paramJson: dict[str, Any] | None = None
    promptJson: dict[str, Any] | None = None
    resultInfoJson: dict[str, Any] | None = None
    resultUrls: list[Any] | None = None
    successFlag: int | None = None
    errorMessage: str | None = None

    @field_validator("paramJson", "promptJson", "resultInfoJson", mode="before")
    @classmethod
    def _json_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else None
            except json.JSONDecodeError:
                return None
        return value

    def urls(self) -> list[str]:
        raw = self.resultUrls
        if raw is None and self.resultInfoJson:
            raw = self.resultInfoJson.get("resultUrls")
        out = [
            item.get("resultUrl") or item.get("url") if isinstance(item, dict) else item for item in raw or []
        ]
        return [url for url in out if isinstance(url, str) and url]


# --- requests -----------------------------------------------------------------------------------


def _references(config: MidapiConfig, params: PromptParams) -> tuple[str | None, list[str], PromptParams]:
    """The reference mode --sref / --oref pick (None: the config's), their image URLs, and the params
    left for the prompt text (style codes and `random` stay there). Alone, they mean the images given
    with the prompt."""
    if params.style_refs is not None and params.omni_refs is not None:
        raise ProviderRejected(
            "{provider} takes one kind of image reference per job: --sref or --oref.", provider=config.name
        )
    if params.omni_refs is not None:
        return "omni", list(params.omni_refs), params.model_copy(update={"omni_refs": None})
    if params.style_refs is None:
        return None, [], params
    urls = [ref for ref in params.style_refs if ref.lower().startswith(("http://", "https://"))]
    codes = tuple(ref for ref in params.style_refs if ref not in urls)
    mode = "style" if urls or not params.style_refs else None
    return mode, urls, params.model_copy(update={"style_refs": codes or None})


def _version(params: PromptParams) -> str | None:
    if params.niji is not None:
        if params.niji.removesuffix(".0") != "6":
            raise ProviderRejected("midapi supports only --niji 6.")
        return "niji6"
    if params.version is None:
        return None
    version = params.version.removesuffix(".0")
    if version not in VERSIONS:
        raise ProviderRejected(
            "midapi supports --v {choices}.", choices=", ".join(sorted(VERSIONS - {"niji6"}))
        )
    return version


def _flag_fields(params: PromptParams) -> dict[str, Any]:
    """Flags midapi has body fields for; the others stay inline in the prompt."""
    out: dict[str, Any] = {}
    if params.aspect_ratio is not None:
        if params.aspect_ratio not in ASPECT_RATIOS:
            raise ProviderRejected("midapi supports --ar {choices}.", choices=", ".join(ASPECT_RATIOS))
        out["aspectRatio"] = params.aspect_ratio
    if (version := _version(params)) is not None:
        out["version"] = version
    if params.stylize is not None:
        out["stylization"] = max(0, min(1000, params.stylize))
    if params.weird is not None:
        out["weirdness"] = max(0, min(3000, params.weird))
    if params.chaos is not None:
        out["variety"] = max(0, min(100, 5 * round(params.chaos / 5)))
    return out


def _prompt(config: MidapiConfig, text: str) -> str:
    text = text.strip()
    if not text:
        raise ProviderRejected("midapi needs a prompt.")
    if len(text) > config.max_prompt_length:
        raise ProviderRejected(
            "The prompt is longer than {limit} characters.", limit=config.max_prompt_length
        )
    return text


def _input_urls(request: GenerationRequest) -> list[str]:
    if any(image.url is None for image in request.images):
        raise ProviderRejected("midapi needs images as public URLs; this image has none.")
    return [image.url for image in request.images if image.url]


def _image_payload(config: MidapiConfig, request: GenerationRequest) -> dict[str, Any]:
    params = request.prompt or PromptParams(text="")
    FLAGS.check(config.name, params)
    mode, ref_urls, rest = _references(config, params)
    urls = [*params.image_urls, *ref_urls, *_input_urls(request)]
    if mode is not None and not urls:
        flag = "--oref" if mode == "omni" else "--sref"
        raise ProviderRejected(
            "{flag} alone uses the images given with the prompt, and there are none.", flag=flag
        )
    task_type = REFERENCE_TYPES[mode or config.reference_mode] if urls else "mj_txt2img"
    if params.omni_weight is not None and task_type != "mj_omni_reference":
        raise ProviderRejected("--ow is the weight of an omni reference (--oref), and this prompt has none.")
    inline = rest.model_copy(update={**dict.fromkeys(_FIELDS_SENT), "image_urls": ()})
    body: dict[str, Any] = {"taskType": task_type, "prompt": _prompt(config, inline.full())}
    body |= _flag_fields(params)
    if task_type == "mj_omni_reference":
        if (weight := params.omni_weight or config.omni_weight) is not None:
            body["ow"] = max(1, min(1000, weight))
    else:
        body["speed"] = SPEEDS[request.speed or config.default_speed]
    if urls:
        body["fileUrls"] = urls
    return body


def _video_payload(config: MidapiConfig, prompt: str, image_url: str) -> dict[str, Any]:
    return {
        "taskType": "mj_video_hd" if config.video_hd else "mj_video",
        "prompt": _prompt(config, prompt),
        "fileUrls": [image_url],
        "motion": config.video_motion,
        "videoBatchSize": config.video_batch_size,
    }


def _resubmittable(config: MidapiConfig, params: Mapping[str, Any], speed: Speed | None) -> dict[str, Any]:
    """A record's `paramJson` cleaned up to be posted to generate again (reroll)."""
    body = {k: v for k, v in params.items() if v not in ("", None, []) and k != "callBackUrl"}
    if "fileUrl" in body and "fileUrls" not in body:
        body["fileUrls"] = [body.pop("fileUrl")]
    body.pop("fileUrl", None)
    if "speed" in body or speed:
        body["speed"] = SPEEDS.get(str(speed or body["speed"]).lower(), SPEEDS[config.default_speed])
    return body


def _reroll_call(config: MidapiConfig, parent: ParentTask, request: ActRequest) -> tuple[str, dict[str, Any]]:
    params = parent.extra.get("paramJson")
    if isinstance(params, Mapping) and params.get("taskType") in IMAGE_TYPES:
        return GENERATE, _resubmittable(config, params, request.speed)
    if isinstance(params, Mapping) and {"taskId", "imageIndex"} <= params.keys():
        return VARY, {"taskId": params["taskId"], "imageIndex": params["imageIndex"]}
    if parent.request.prompt is None:
        raise ProviderRejected("This job cannot be rerolled.")
    return GENERATE, _image_payload(config, parent.request.model_copy(update={"speed": request.speed}))


def _grid_index(request: ActRequest) -> int:
    if not 1 <= request.index <= 4:
        raise ProviderRejected("Pick an image from 1 to 4.")
    return request.index - 1


def _video_call(config: MidapiConfig, parent: ParentTask, request: ActRequest) -> tuple[str, dict[str, Any]]:
    images = parent.result.image_urls if parent.result else []
    if not images:
        raise ProviderRejected("There is no image to animate.")
    url = images[request.index - 1] if 1 <= request.index <= len(images) else images[0]
    text = request.prompt or (parent.request.prompt.text if parent.request.prompt else "") or "animate"
    return GENERATE, _video_payload(config, text, url)


def _extend_call(config: MidapiConfig, parent: ParentTask, request: ActRequest) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"taskType": "mj_video_extend_auto", "taskId": parent.task_id}
    body["index"] = max(request.index - 1, 0)
    if request.prompt:
        body |= {"taskType": "mj_video_extend_manual", "prompt": _prompt(config, request.prompt)}
    return EXTEND, body


def _act_call(config: MidapiConfig, parent: ParentTask, request: ActRequest) -> tuple[str, dict[str, Any]]:
    if request.action is Action.REROLL:
        return _reroll_call(config, parent, request)
    if request.action is Action.VIDEO:
        return _video_call(config, parent, request)
    if not parent.task_id:
        raise ProviderRejected("The original job has no midapi task id.")
    if request.action is Action.UPSCALE:
        return UPSCALE, {"taskId": parent.task_id, "imageIndex": _grid_index(request)}
    if request.action is Action.VARIATION:
        index = _grid_index(request) + config.vary_index_base
        return VARY, {"taskId": parent.task_id, "imageIndex": index}
    if request.action is Action.VIDEO_EXTEND:
        return _extend_call(config, parent, request)
    raise ProviderRejected("midapi cannot do {action}.", action=request.action.value)


def _with_common(config: MidapiConfig, body: dict[str, Any], callback_url: str | None) -> dict[str, Any]:
    if config.watermark:
        body["waterMark"] = config.watermark
    if config.enable_translation and "prompt" in body:
        body["enableTranslation"] = True
    if callback_url:
        body["callBackUrl"] = callback_url
    return body


# --- responses ----------------------------------------------------------------------------------


def _envelope(raw: Any, provider: str) -> tuple[int, str | None, Any]:
    return envelope(raw, provider, code="code", message="msg", code_name="status code")


def _code_error(code: int, msg: str | None, provider: str) -> ProviderError:
    kind = status_kind(code, CODE_KINDS)
    detail = msg if msg and msg.lower() not in ("error", "failed") else CODE_TEXT.get(code, msg)
    return error_for(kind, detail, provider)


def _parse_record(data: Any, provider: str) -> _Record:
    error = ProviderProtocolError("{provider} sent a task in an unexpected shape.", provider=provider)
    return parse_as(_Record, data, error)


def _result(urls: list[str], task_type: str, caps: Capabilities) -> tuple[TaskResult, dict[str, str]]:
    if "video" in task_type or (urls and all(u.lower().split("?")[0].endswith(VIDEO_SUFFIXES) for u in urls)):
        many = len(urls) > 1
        offers = {offer_key(Action.VIDEO_EXTEND, i + 1 if many else 0): "" for i in range(len(urls))}
        return TaskResult(video_urls=urls), offers if caps.can(Action.VIDEO_EXTEND) else {}
    if len(urls) == 1:
        return TaskResult(image_urls=urls), upscale_offers(caps)
    return TaskResult(image_urls=urls[:4]), grid_offers(caps)


def _snapshot(
    record: _Record, caps: Capabilities, *, code: int = 200, msg: str | None = None
) -> TaskSnapshot:
    extra = {k: v for k, v in (("taskType", record.taskType), ("paramJson", record.paramJson)) if v}
    snap = TaskSnapshot(task_id=record.taskId, status=TaskStatus.RUNNING, extra=extra)
    flag = record.successFlag
    if flag is None and record.resultUrls is not None:  # a callback: its envelope code decides
        flag = 1 if code == 200 and record.urls() else 2
    if code == 501 or flag in (2, 3):
        snap.status = TaskStatus.FAILED
        fallback = N_("Midjourney did not finish this image.") if flag == 3 else N_("The generation failed.")
        snap.error = (record.errorMessage or (msg if code != 200 else None) or fallback)[:300]
    elif flag == 1:
        urls = record.urls()
        snap.status = TaskStatus.SUCCEEDED if urls else TaskStatus.FAILED
        snap.error = None if urls else "The provider returned no images."
        if urls:
            snap.result, snap.actions = _result(urls, record.taskType or "", caps)
    return snap


class MidapiProvider(BaseProvider):
    config_class: ClassVar[type[ProviderConfig]] = MidapiConfig
    capabilities = Capabilities(
        actions=frozenset(
            {
                Action.IMAGINE,
                Action.UPSCALE,
                Action.VARIATION,
                Action.REROLL,
                Action.VIDEO,
                Action.VIDEO_EXTEND,
            }
        ),
        batch_fetch=1,
        webhooks=True,
        max_images=5,
        flags=FLAGS,
    )

    def __init__(self, config: MidapiConfig, client: httpx.AsyncClient) -> None:
        super().__init__(config)
        self._settings = config
        self._http = ProviderHTTP(client, config, bearer_headers(config))

    async def submit(self, request: GenerationRequest) -> TaskSnapshot:
        if request.kind is Action.IMAGINE:
            body = _image_payload(self._settings, request)
        elif request.kind is Action.VIDEO:
            urls = _input_urls(request) or list(request.prompt.image_urls if request.prompt else ())
            if not urls:
                raise ProviderRejected("A video needs one image URL.")
            text = request.prompt.text if request.prompt else ""
            body = _video_payload(self._settings, text or "animate", urls[0])
        else:
            raise ProviderRejected("midapi cannot {command}.", command=request.kind.value)
        return await self._start(GENERATE, body, request.callback_url)

    async def act(self, parent: ParentTask, request: ActRequest) -> TaskSnapshot:
        if (remixed := remix_request(parent, request)) is not None:  # generateVary takes no prompt
            return await self.submit(remixed)
        path, body = _act_call(self._settings, parent, request)
        return await self._start(path, body, request.callback_url)

    async def fetch(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        snapshots = [await self._fetch_one(task_id) for task_id in task_ids]
        return [snapshot for snapshot in snapshots if snapshot is not None]

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskSnapshot:
        try:
            raw = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProviderProtocolError("The midapi callback is not JSON.") from exc
        code, msg, data = _envelope(raw, self.config.name)
        record = _parse_record(data, self.config.name)
        return _snapshot(record, self.capabilities, code=code, msg=msg)

    async def _start(self, path: str, body: dict[str, Any], callback_url: str | None) -> TaskSnapshot:
        extra = {"taskType": body.get("taskType", path.rsplit("/", 1)[-1]), "paramJson": dict(body)}
        raw = await self._http.request(
            "POST", path, json_body=_with_common(self._settings, body, callback_url)
        )
        code, msg, data = _envelope(raw, self.config.name)
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if code == 501 and task_id:
            error = (msg or N_("The generation failed."))[:300]
            return TaskSnapshot(task_id=str(task_id), status=TaskStatus.FAILED, error=error, extra=extra)
        if code != 200:
            raise _code_error(code, msg, self.config.name)
        if not isinstance(task_id, str | int) or not str(task_id):
            raise ProviderProtocolError(
                "{provider} accepted the task but sent no task id.", provider=self.config.name
            )
        return TaskSnapshot(task_id=str(task_id), status=TaskStatus.SUBMITTED, extra=extra)

    async def _fetch_one(self, task_id: str) -> TaskSnapshot | None:
        raw = await self._http.request("GET", RECORD, params={"taskId": task_id})
        code, msg, data = _envelope(raw, self.config.name)
        if code == 404 or (code in (200, 501) and not data):
            if code == 501:
                return TaskSnapshot(task_id=task_id, status=TaskStatus.FAILED, error=msg or N_("Failed."))
            return None
        if code not in (200, 501):
            raise _code_error(code, msg, self.config.name)
        return _snapshot(_parse_record(data, self.config.name), self.capabilities, code=code, msg=msg)
