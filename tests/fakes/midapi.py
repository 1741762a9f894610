"""A stateful loopback fake of the midapi.ai / kie.ai Midjourney API.

Implements generate (every taskType, validated as documented), record-info, generateUpscale,
generateVary, generateVideoExtend and success/failure callbacks; serves real PNGs from /cdn/.
Envelopes `{code, msg, data}` come in HTTP 200 (as documented); a rate limit is an HTTP 429.
A prompt containing FAIL2 / FAIL3 finishes with successFlag 2 / 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

from tests.fakes._server import HANG_AFTER_CREATE, FakeServer, serve_forever

TASK_TYPES = {
    "mj_txt2img",
    "mj_img2img",
    "mj_style_reference",
    "mj_omni_reference",
    "mj_video",
    "mj_video_hd",
}
ASPECT_RATIOS = {"1:2", "9:16", "2:3", "3:4", "5:6", "6:5", "4:3", "3:2", "1:1", "16:9", "2:1"}
VERSIONS = {"7", "6.1", "6", "5.2", "5.1", "niji6"}
SPEEDLESS = {"mj_video", "mj_video_hd", "mj_omni_reference"}
RANGES = {"variety": (0, 100), "stylization": (0, 1000), "weirdness": (0, 3000), "ow": (1, 1000)}

FAULTS: dict[str, tuple[int, str]] = {
    "auth": (401, "Unauthorized: the API key is invalid"),
    "quota": (402, "Insufficient credits"),
    "busy": (429, "Too many concurrent tasks, please try again later"),
    "unavailable": (455, "The system is under maintenance"),
    "rejected": (422, "The prompt contains banned words"),
}


@dataclass
class Job:
    task_id: str
    task_type: str
    params: dict[str, Any]
    callback: str | None
    outputs: list[str]
    flag: int = 0
    error: str | None = None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    completed: str | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat()


class MidapiFake(FakeServer):
    def __init__(self, api_key: str = "test-key", duration: float = 0.05) -> None:
        super().__init__()
        self.api_key = api_key
        self.duration = duration  # seconds from submit to finish
        self.vary_index_base = 0
        self.result_info_as_string = False
        self.result_urls_as_strings = False
        self.callback_repeats = 1
        self.jobs: dict[str, Job] = {}
        self.finished_at: dict[str, float] = {}  # task id -> time.monotonic() it finished (benchmarks)
        self.received: list[dict[str, Any]] = []  # {"method", "path", "auth", "body", "query"}
        self.callbacks_sent: list[dict[str, Any]] = []
        self._codes: list[tuple[int, str, dict[str, Any] | None]] = []
        self._images: dict[str, bytes] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/mj/generate", self.generate),
            web.post("/api/v1/mj/generateUpscale", self.upscale),
            web.post("/api/v1/mj/generateVary", self.vary),
            web.post("/api/v1/mj/generateVideoExtend", self.extend),
            web.get("/api/v1/mj/record-info", self.record_info),
            web.get("/cdn/{task}/{name}", self.cdn),
        ]

    # --- test controls ---------------------------------------------------------------------

    def created_ids(self) -> list[str]:
        return list(self.jobs)

    def inject_code(
        self, code: int, msg: str = "error", times: int = 1, data: dict[str, Any] | None = None
    ) -> None:
        """The next `times` requests of any kind answer with this envelope code."""
        self._codes += [(code, msg, data)] * times

    # --- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def _envelope(code: int, msg: str, data: Any = None, status: int = 200) -> web.Response:
        return web.json_response({"code": code, "msg": msg, "data": data}, status=status)

    async def _receive(self, request: web.Request, submit: bool) -> dict[str, Any] | web.Response:
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return self._envelope(400, "Body is not JSON")
        self.received.append(
            {
                "method": request.method,
                "path": request.path,
                "auth": request.headers.get("Authorization"),
                "body": body,
                "query": dict(request.query),
            }
        )
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._envelope(401, "You do not have access permissions")
        if self._codes:
            code, msg, data = self._codes.pop(0)
            return self._envelope(code, msg, data)
        if submit and self._faults:
            fault = self._faults.pop(0)
            if fault != HANG_AFTER_CREATE:
                return await self._fault(fault)
            self.hang_after(request)
        return body

    async def _fault(self, fault: str) -> web.Response:
        if fault == "rate_limited":
            return web.json_response(
                {"code": 429, "msg": "Rate limited"}, status=429, headers={"Retry-After": "2"}
            )
        if fault == "timeout":
            await asyncio.sleep(0.7)  # longer than the tests' request_timeout
            return self._envelope(500, "late")
        if fault == "malformed":
            return web.json_response({"code": 200, "msg": "success", "data": {"id": 42}})
        code, msg = FAULTS[fault]
        return self._envelope(code, msg)

    def _create(self, task_type: str, params: dict[str, Any], outputs: list[str]) -> web.Response:
        task_id = uuid.uuid4().hex
        job = Job(task_id, task_type, params, params.get("callBackUrl"), outputs)
        self.jobs[task_id] = job
        self.spawn(self._run(job))
        return self._envelope(200, "success", {"taskId": task_id})

    async def _run(self, job: Job) -> None:
        await asyncio.sleep(self.duration)
        prompt = str(job.params.get("prompt", ""))
        job.flag = 2 if "FAIL2" in prompt else 3 if "FAIL3" in prompt else 1
        job.error = {2: "Prompt was flagged by moderation", 3: "Midjourney returned no image"}.get(job.flag)
        job.completed = _now()
        self.finished_at[job.task_id] = time.monotonic()
        if job.callback:
            for _ in range(self.callback_repeats):
                await self._deliver(job)

    async def _deliver(self, job: Job) -> None:
        assert job.callback is not None
        prompt_json = json.dumps({"prompt": job.params.get("prompt", ""), "model": "midjourney"})
        data = {"taskId": job.task_id, "promptJson": prompt_json, "resultUrls": self._urls(job)}
        body = {"code": 200, "msg": "success", "data": data}
        if job.flag != 1:
            body = {"code": 500, "msg": "Image generation failed", "data": data | {"resultUrls": []}}
        self.callbacks_sent.append(body)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with aiohttp.ClientSession() as session, session.post(job.callback, json=body) as response:
                await response.read()

    def _urls(self, job: Job) -> list[str]:
        return [f"{self.base_url}/cdn/{job.task_id}/{name}" for name in job.outputs] if job.flag == 1 else []

    def _parent(self, task_id: Any, video: bool = False) -> Job | web.Response:
        job = self.jobs.get(str(task_id))
        if job is None:
            return self._envelope(404, "Task not found")
        if job.flag != 1:
            return self._envelope(422, "The original task has not succeeded")
        if video != job.outputs[0].endswith(".mp4"):
            return self._envelope(422, "The original task has the wrong type")
        return job

    # --- handlers ------------------------------------------------------------------------------

    async def generate(self, request: web.Request) -> web.Response:
        body = await self._receive(request, submit=True)
        if isinstance(body, web.Response):
            return body
        problem = _validate_generate(body)
        if problem:
            return self._envelope(422, problem)
        task_type = body["taskType"]
        if task_type in ("mj_video", "mj_video_hd"):
            outputs = [f"{n}.mp4" for n in range(int(body.get("videoBatchSize", 1)))]
        else:
            outputs = [f"{n}.png" for n in range(4)]
        return self._create(task_type, body, outputs)

    async def upscale(self, request: web.Request) -> web.Response:
        body = await self._receive(request, submit=True)
        if isinstance(body, web.Response):
            return body
        parent = self._parent(body.get("taskId"))
        if isinstance(parent, web.Response):
            return parent
        if body.get("imageIndex") not in (0, 1, 2, 3):
            return self._envelope(422, "imageIndex must be 0-3")
        return self._create("mj_upscale", body, ["upscale.png"])

    async def vary(self, request: web.Request) -> web.Response:
        body = await self._receive(request, submit=True)
        if isinstance(body, web.Response):
            return body
        parent = self._parent(body.get("taskId"))
        if isinstance(parent, web.Response):
            return parent
        valid = range(self.vary_index_base, self.vary_index_base + 4)
        if not isinstance(body.get("imageIndex"), int) or body["imageIndex"] not in valid:
            return self._envelope(422, f"imageIndex must be {valid.start}-{valid.stop - 1}")
        return self._create("mj_vary", body, [f"{n}.png" for n in range(4)])

    async def extend(self, request: web.Request) -> web.Response:
        body = await self._receive(request, submit=True)
        if isinstance(body, web.Response):
            return body
        parent = self._parent(body.get("taskId"), video=True)
        if isinstance(parent, web.Response):
            return parent
        task_type = body.get("taskType")
        if task_type not in ("mj_video_extend_manual", "mj_video_extend_auto"):
            return self._envelope(422, "taskType must be mj_video_extend_manual or mj_video_extend_auto")
        if task_type == "mj_video_extend_manual" and not (0 < len(str(body.get("prompt") or "")) <= 2000):
            return self._envelope(422, "prompt is required for a manual extension")
        if body.get("index", 0) not in range(len(parent.outputs)):
            return self._envelope(422, "index is out of range")
        return self._create(task_type, body, ["extended.mp4"])

    async def record_info(self, request: web.Request) -> web.Response:
        received = await self._receive(request, submit=False)
        if isinstance(received, web.Response):
            return received
        job = self.jobs.get(request.query.get("taskId", ""))
        if job is None:
            return self._envelope(404, "Task not found")
        return self._envelope(200, "success", self._record(job))

    def _record(self, job: Job) -> dict[str, Any]:
        params = {k: v for k, v in job.params.items()}
        if isinstance(params.get("speed"), str):
            params["speed"] = {"relaxed": "Relax"}.get(params["speed"], params["speed"].capitalize())
        urls: list[Any] = self._urls(job)
        if not self.result_urls_as_strings:
            urls = [{"resultUrl": url} for url in urls]
        info: Any = {"resultUrls": urls} if job.flag == 1 else None
        if info is not None and self.result_info_as_string:
            info = json.dumps(info)
        return {
            "taskId": job.task_id,
            "taskType": job.task_type,
            "paramJson": json.dumps(params),
            "completeTime": job.completed,
            "resultInfoJson": info,
            "successFlag": job.flag,
            "createTime": job.created,
            "errorCode": 500 if job.error else None,
            "errorMessage": job.error,
        }

    async def cdn(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        key = f"{request.match_info['task']}/{name}"
        if name.endswith(".mp4"):
            return web.Response(body=b"\x00\x00\x00\x18ftypmp42" + key.encode(), content_type="video/mp4")
        if key not in self._images:
            self._images[key] = _png(key, 512 if name.startswith("upscale") else 256)
        return web.Response(body=self._images[key], content_type="image/png")


def _validate_generate(body: dict[str, Any]) -> str | None:
    task_type = body.get("taskType")
    prompt = body.get("prompt")
    urls = body.get("fileUrls") or ([body["fileUrl"]] if body.get("fileUrl") else [])
    problems = [
        (task_type not in TASK_TYPES, f"taskType must be one of {sorted(TASK_TYPES)}"),
        (not isinstance(prompt, str) or not 0 < len(prompt) <= 2000, "prompt is required (max 2000)"),
        (
            task_type not in SPEEDLESS and body.get("speed") not in ("relaxed", "fast", "turbo"),
            "speed is invalid",
        ),
        ("aspectRatio" in body and body["aspectRatio"] not in ASPECT_RATIOS, "aspectRatio is invalid"),
        ("version" in body and body["version"] not in VERSIONS, "version is invalid"),
        (task_type != "mj_txt2img" and not urls, "fileUrls is required for this taskType"),
        ("ow" in body and task_type != "mj_omni_reference", "ow is only for mj_omni_reference"),
    ]
    if task_type in ("mj_video", "mj_video_hd"):
        problems += [
            (len(urls) != 1, "fileUrls can only have one image for video"),
            (body.get("motion") not in ("high", "low"), "motion is required for video"),
            (body.get("videoBatchSize", 1) not in (1, 2, 4), "videoBatchSize must be 1, 2 or 4"),
        ]
    for name, (low, high) in RANGES.items():
        value = body.get(name)
        problems.append(
            (value is not None and not (isinstance(value, int) and low <= value <= high), f"{name}")
        )
    return next((message for bad, message in problems if bad), None)


def _png(key: str, size: int) -> bytes:
    digest = hashlib.sha256(key.encode()).digest()
    image = Image.new("RGB", (size, size), (digest[0], digest[1], digest[2]))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


if __name__ == "__main__":
    serve_forever(MidapiFake(duration=3.0))
