"""A stateful loopback fake of the OhMyGPT Midjourney Open API.

imagine / action / blend / describe / query / query-mj-tasks, JSON or form bodies, `model=midjourney`
checked, tasks that progress NOT_START -> SUBMITTED -> IN_PROGRESS x% -> SUCCESS over `step` seconds,
webhooks on every change (bare task object, or the `{statusCode,message,data}` envelope), real PNGs on
/dc/ (Discord-like) and /s3/ (object storage). A prompt containing FAIL fails with a failReason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

from tests.fakes._server import HANG_AFTER_CREATE, FakeServer, grid_buttons, serve_forever, upscale_buttons

API = "/api/v1/ai/draw/mj"
DESCRIBED = "1️⃣ a red fox in snow --ar 3:2\n\n2️⃣ fox, winter, painterly\n\n3️⃣ a small fox\n\n4️⃣ snowy forest"

#: fault -> (HTTP status, statusCode, message, extra headers)
FAULTS: dict[str, tuple[int, int, str, dict[str, str]]] = {
    "auth": (401, 401, "Invalid API key", {}),
    "quota": (200, 400, "Insufficient balance, please recharge", {}),
    "busy": (200, 400, "Too many concurrent tasks: the queue is full", {}),
    "rate_limited": (429, 429, "Too Many Requests", {"Retry-After": "3"}),
    "unavailable": (503, 503, "Service Unavailable", {}),
    "rejected": (200, 400, "Prompt contains a banned word: gore", {}),
}


def _iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Task:
    task_id: int
    action: str  # IMAGINE, UPSCALE, VARIATION, REROLL, ZOOM, PAN, BLEND, DESCRIBE
    prompt: str
    pool: str
    webhook: str | None
    single: bool = False  # an upscale: one image, follow-up buttons
    status: str = "NOT_START"
    progress: int = 0
    fail_reason: str | None = None
    submit_time: str = field(default_factory=_iso)
    start_time: str | None = None
    finish_time: str | None = None
    seen: asyncio.Event = field(default_factory=asyncio.Event)  # a status answer showed the current stage


#: customId marker -> (action of the task it starts, single image?)
CHILDREN = (
    ("::upsample::", "UPSCALE", True),
    ("::upsample_v7_2x_", "UPSCALE", True),
    ("::variation::", "VARIATION", False),
    ("_variation::", "VARIATION", False),
    ("::reroll::", "REROLL", False),
    ("::Outpaint::", "ZOOM", False),
    ("::pan_", "PAN", False),
    ("MJ::Inpaint::", "INPAINT", False),  # Vary (Region): `base64Mask` (a data URI) goes with the press
)


class OhmygptFake(FakeServer):
    def __init__(self, api_key: str = "test-key", step: float = 0.02) -> None:
        super().__init__()
        self.api_key = api_key
        self.step = step  # seconds between progress stages
        self.lockstep = False  # True: a stage lasts until a status answer has shown it (no stage skipped)
        self.s3 = True  # imageS3Url set on success (else null, as the docs allow)
        self.webhook_envelope = False  # webhooks as {statusCode,message,data} instead of the bare task
        self.describe_field = "prompt"  # where describe's prompts go: "prompt" or "description"
        self.masks: list[str] = []  # the `base64Mask` of each Vary (Region) press
        self.tasks: dict[int, Task] = {}
        self.received: list[dict[str, Any]] = []  # {"path", "auth", "content_type", "body", "query"}
        self.webhooks_sent: list[dict[str, Any]] = []
        self._next_id = 1000
        self._codes: list[tuple[int, int, str]] = []
        self._images: dict[str, bytes] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{API}/imagine", self.imagine),
            web.post(f"{API}/action", self.action),
            web.post(f"{API}/blend", self.blend),
            web.post(f"{API}/describe", self.describe),
            web.post(f"{API}/query", self.query),
            web.post(f"{API}/query-mj-tasks", self.bulk),
            web.get("/dc/{task}/{name}", self.image),
            web.get("/s3/{task}/{name}", self.image),
        ]

    # --- test controls ---------------------------------------------------------------------

    def created_ids(self) -> list[str]:
        return [str(task_id) for task_id in self.tasks]

    def inject_code(self, status_code: int, message: str, times: int = 1, http_status: int = 200) -> None:
        """The next `times` requests of any kind answer `{statusCode, message}` with `http_status`."""
        self._codes += [(http_status, status_code, message)] * times

    # --- plumbing -----------------------------------------------------------------------------

    @staticmethod
    def _answer(status_code: int, message: str, data: Any = None, http: int = 200) -> web.Response:
        return web.json_response({"statusCode": status_code, "message": message, "data": data}, status=http)

    async def _receive(self, request: web.Request, submit: bool) -> dict[str, Any] | web.Response:
        content_type = request.content_type
        if content_type == "application/json":
            body = await request.json()
        else:
            form = await request.post()
            body = {k: form.getall(k) if k == "base64Array" else form[k] for k in set(form.keys())}
        self.received.append(
            {
                "path": request.path,
                "auth": request.headers.get("Authorization"),
                "content_type": content_type,
                "body": body,
                "query": dict(request.query),
            }
        )
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._answer(401, "Unauthorized", http=401)
        if self._codes:
            http, status_code, message = self._codes.pop(0)
            return self._answer(status_code, message, http=http)
        if submit and self._faults:
            fault = self._faults.pop(0)
            if fault != HANG_AFTER_CREATE:
                return await self._fault(fault)
            self.hang_after(request)
        if body.get("model") != "midjourney":
            return self._answer(400, "model must be midjourney")
        if body.get("type", "FAST") not in ("NORMAL", "FAST"):
            return self._answer(400, "type must be NORMAL or FAST")
        return dict(body)

    async def _fault(self, fault: str) -> web.Response:
        if fault == "timeout":
            await asyncio.sleep(0.7)  # longer than the tests' request_timeout
            return self._answer(500, "late")
        if fault == "malformed":
            return web.json_response({"statusCode": 200, "message": "Success", "data": {"unexpected": True}})
        http, status_code, message, headers = FAULTS[fault]
        response = self._answer(status_code, message, http=http)
        response.headers.update(headers)
        return response

    def _create(self, body: dict[str, Any], action: str, prompt: str, single: bool = False) -> web.Response:
        self._next_id += 1
        task = Task(self._next_id, action, prompt, body.get("type", "FAST"), body.get("webhook"), single)
        self.tasks[task.task_id] = task
        self.spawn(self._run(task))
        return self._answer(200, "Success", task.task_id)

    async def _run(self, task: Task) -> None:
        stages = [("SUBMITTED", 0), ("IN_PROGRESS", 30), ("IN_PROGRESS", 60), ("IN_PROGRESS", 90)]
        for status, progress in stages:
            await self._next_stage(task)
            task.status, task.progress = status, progress
            task.start_time = task.start_time or (_iso() if status == "IN_PROGRESS" else None)
            await self._notify(task)
            if "FAIL" in task.prompt and progress == 30:
                task.status, task.fail_reason, task.finish_time = "FAILURE", "Banned prompt detected", _iso()
                await self._notify(task)
                return
        await self._next_stage(task)
        task.status, task.progress, task.finish_time = "SUCCESS", 100, _iso()
        await self._notify(task)

    async def _next_stage(self, task: Task) -> None:
        await asyncio.sleep(self.step)
        if self.lockstep:
            await task.seen.wait()
            task.seen.clear()

    async def _notify(self, task: Task) -> None:
        if not task.webhook:
            return
        body: dict[str, Any] = self.task_json(task)
        if self.webhook_envelope:
            body = {"statusCode": 200, "message": "Success", "data": body}
        self.webhooks_sent.append(body)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with aiohttp.ClientSession() as session, session.post(task.webhook, json=body) as response:
                await response.read()

    def task_json(self, task: Task) -> dict[str, Any]:
        h = hashlib.sha1(str(task.task_id).encode()).hexdigest()[:16]
        done = task.status == "SUCCESS"
        name = "upscale.png" if task.single else "grid.png"
        running = task.status == "IN_PROGRESS"
        buttons = upscale_buttons(h, low_motion=False) if task.single else grid_buttons(h)
        describe = task.action == "DESCRIBE"
        return {
            "taskId": task.task_id,
            "taskType": task.pool,
            "status": task.status,
            "action": task.action,
            "progress": f"{task.progress}%",
            "description": DESCRIBED
            if describe and done and self.describe_field == "description"
            else f"/{task.action.lower()} {task.prompt}",
            "prompt": DESCRIBED if describe and done and self.describe_field == "prompt" else task.prompt,
            "failReason": task.fail_reason,
            "submitTime": task.submit_time,
            "startTime": task.start_time,
            "finishTime": task.finish_time,
            "webhookUrl": task.webhook,
            "imageDcUrl": f"{self.base_url}/dc/{task.task_id}/{name if done else 'preview.png'}"
            if (done or running)
            else None,
            "imageS3Url": f"{self.base_url}/s3/{task.task_id}/{name}" if done and self.s3 else None,
            "actions": buttons if done and not describe else [],
        }

    # --- handlers ------------------------------------------------------------------------------

    async def imagine(self, request: web.Request) -> web.Response:
        body = await self._receive(request, submit=True)
        if isinstance(body, web.Response):
            return body
        if not str(body.get("prompt") or "").strip():
            return self._answer(400, "prompt is required")
        images = body.get("base64Array") or []
        if any(not str(image).startswith("data:image/") for image in images):
            return self._answer(400, "base64Array items must be data URIs")
        return self._create(body, "IMAGINE", str(body["prompt"]))

    async def blend(self, request: web.Request) -> web.Response:
        body = await self._receive(request, submit=True)
        if isinstance(body, web.Response):
            return body
        images = body.get("base64Array") or []
        if not 2 <= len(images) <= 5 or any(not str(i).startswith("data:image/") for i in images):
            return self._answer(400, "base64Array must hold 2 to 5 data URIs")
        if body.get("dimensions", "SQUARE") not in ("PORTRAIT", "SQUARE", "LANDSCAPE"):
            return self._answer(400, "dimensions must be PORTRAIT, SQUARE or LANDSCAPE")
        return self._create(body, "BLEND", "")

    async def describe(self, request: web.Request) -> web.Response:
        body = await self._receive(request, submit=True)
        if isinstance(body, web.Response):
            return body
        if not str(body.get("base64") or "").startswith("data:image/"):
            return self._answer(400, "base64 must be a data URI")
        return self._create(body, "DESCRIBE", "")

    async def action(self, request: web.Request) -> web.Response:
        body = await self._receive(request, submit=True)
        if isinstance(body, web.Response):
            return body
        parent = self.tasks.get(int(body["taskId"])) if str(body.get("taskId", "")).isdigit() else None
        if parent is None or parent.status != "SUCCESS":
            return self._answer(400, "Task not found or not finished")
        custom_id = str(body.get("customId") or "")
        if custom_id not in {b["customId"] for b in self.task_json(parent)["actions"]}:
            return self._answer(400, "customId is not a button of this task")
        child = next(((a, single) for marker, a, single in CHILDREN if marker in custom_id), None)
        if child is None:
            return self._answer(400, "This action is not supported")
        if child[0] == "INPAINT":
            if not str(body.get("base64Mask") or "").startswith("data:image/"):
                return self._answer(400, "base64Mask must be a data URI")
            self.masks.append(str(body["base64Mask"]))
            return self._create(body, "VARIATION", str(body.get("prompt") or parent.prompt), single=False)
        return self._create(body, child[0], parent.prompt, single=child[1])

    async def query(self, request: web.Request) -> web.Response:
        body = await self._receive(request, submit=False)
        if isinstance(body, web.Response):
            return body
        task = self.tasks.get(int(body["taskId"])) if str(body.get("taskId", "")).isdigit() else None
        if task is None:
            return self._answer(400, "Task not found")
        task.seen.set()
        return self._answer(200, "Success", self.task_json(task))

    async def bulk(self, request: web.Request) -> web.Response:
        body = await self._receive(request, submit=False)
        if isinstance(body, web.Response):
            return body
        try:
            page, size = int(request.query["page"]), int(request.query["pageSize"])
        except (KeyError, ValueError):
            return self._answer(400, "page and pageSize are required")
        if page < 1 or not 5 <= size <= 20:
            return self._answer(400, "page must be >= 1 and pageSize 5-20")
        newest = sorted(self.tasks.values(), key=lambda t: t.task_id, reverse=True)
        chunk = newest[(page - 1) * size : page * size]
        for task in chunk:
            task.seen.set()
        return self._answer(
            200, "Success", {"total": len(newest), "tasks": [self.task_json(t) for t in chunk]}
        )

    async def image(self, request: web.Request) -> web.Response:
        key = f"{request.match_info['task']}/{request.match_info['name']}"
        if key not in self._images:
            self._images[key] = _png(key, grid=request.match_info["name"] == "grid.png")
        return web.Response(body=self._images[key], content_type="image/png")


def _png(key: str, grid: bool) -> bytes:
    digest = hashlib.sha256(key.encode()).digest()
    image = Image.new("RGB", (256, 256), (digest[0], digest[1], digest[2]))
    if grid:  # four visibly different tiles, so a splitter has something to cut
        for n, (x, y) in enumerate(((0, 0), (128, 0), (0, 128), (128, 128))):
            image.paste((digest[3 + n], digest[7 + n], digest[11 + n]), (x, y, x + 128, y + 128))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


if __name__ == "__main__":
    serve_forever(OhmygptFake(step=1.0))
