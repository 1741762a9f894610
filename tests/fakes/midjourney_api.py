"""A fake midjourney-api.com: Midjourney submit-jobs + batched job-status and GPT-Image generations.

Implements what the docs show: `API-KEY` auth, the `{status, message, data}` envelope (1001 quota,
1002 concurrency), job-status for many `taskIds` at once (unknown ids left out), results with a grid
`image` and four `images` (GPT: `image` + `images`) served as real PNGs from `/cdn/<task>/<name>.png`,
and a callback POSTed to `hookUrl` when a job finishes. Jobs finish on their `polls_to_finish`-th
status request, or `hook_delay` seconds after submission when they have a hookUrl; with `duration`
set, every job finishes that long after submission instead (benchmarks). A prompt
containing "FAIL" finishes as failed. `/gpt/v1/task-status` is a test-only alias of job-status used
to exercise the adapter's `status_path` knob; it is not a documented endpoint.

`python -m tests.fakes.midjourney_api --port 8701` serves it (API key "test-key").
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

from tests.fakes._server import HANG_AFTER_CREATE, FakeServer, Received, serve_forever

SUBMIT = "/midjourney/v1/submit-jobs"
STATUS = "/midjourney/v1/job-status"
GPT = "/gpt/v1/generations"
GPT_STATUS_ALIAS = "/gpt/v1/task-status"
ASPECT_RATIOS = {"1:1", "3:4", "4:3", "16:9", "9:16"}


@dataclass
class FakeJob:
    task_id: str
    kind: str  # "mj" or "gpt"
    body: dict[str, Any]
    created: float = field(default_factory=time.time)
    polls: int = 0
    status: int = 0
    notified: bool = False

    @property
    def hook(self) -> str | None:
        hook = self.body.get("hookUrl")
        return hook if isinstance(hook, str) and hook else None


class MidjourneyApiFake(FakeServer):
    def __init__(
        self,
        *,
        api_key: str = "test-key",
        polls_to_finish: int = 2,
        hook_delay: float = 0.05,
        status_as_string: bool = False,
        callback_shape: str = "envelope",  # "envelope" {status, data:{...}} or "bare" {...}
        callback_repeats: int = 1,
        gpt_images: int = 1,
        duration: float | None = None,  # set: every job finishes this long after submit (not by polls)
    ) -> None:
        self.api_key = api_key
        self.status_faults: list[str] = []
        self.polls_to_finish = polls_to_finish
        self.hook_delay = hook_delay
        self.status_as_string = status_as_string
        self.callback_shape = callback_shape
        self.callback_repeats = callback_repeats
        self.gpt_images = gpt_images
        self.duration = duration
        self.finished_at: dict[str, float] = {}  # task id -> time.monotonic() it finished (benchmarks)
        self.jobs: dict[str, FakeJob] = {}
        self.received: list[Received] = []
        self.callbacks_sent: list[tuple[str, dict[str, Any]]] = []
        self.callback_errors: list[str] = []
        self._closing = asyncio.Event()
        super().__init__()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(SUBMIT, self._submit_mj),
            web.post(GPT, self._submit_gpt),
            web.post(STATUS, self._status),
            web.post(GPT_STATUS_ALIAS, self._status),
            web.get("/cdn/{task}/{name}", self._image),
        ]

    def submits(self) -> list[Received]:
        return [r for r in self.received if r.path in (SUBMIT, GPT)]

    def created_ids(self) -> list[str]:
        return list(self.jobs)

    async def stop(self) -> None:
        self._closing.set()
        await super().stop()

    # -- handlers

    async def _submit_mj(self, request: web.Request) -> web.StreamResponse:
        return await self._submit(request, "mj", _mj_problem)

    async def _submit_gpt(self, request: web.Request) -> web.StreamResponse:
        return await self._submit(request, "gpt", _gpt_problem)

    async def _submit(self, request: web.Request, kind: str, check: Any) -> web.StreamResponse:
        body = await self._record(request)
        if request.headers.get("API-KEY") != self.api_key:
            return web.json_response({"message": "Invalid API-KEY"}, status=401)
        fault = self._faults.pop(0) if self._faults else None
        if fault == HANG_AFTER_CREATE:
            self.hang_after(request)
        elif fault is not None:
            answer = await self._fault(fault)
            if answer is not None:
                return answer
        problem = check(body)
        if problem:
            return web.json_response({"status": 400, "message": problem}, status=400)
        job = FakeJob(task_id=secrets.token_urlsafe(16)[:21], kind=kind, body=body)
        self.jobs[job.task_id] = job
        if job.hook or self.duration is not None:
            self.spawn(self._finish_later(job))
        return self._envelope(0, {"taskId": job.task_id})

    async def _status(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if request.headers.get("API-KEY") != self.api_key:
            return web.json_response({"message": "Invalid API-KEY"}, status=401)
        if self.status_faults:  # what the next status calls fail with (e.g. "rate_limited")
            answer = await self._fault(self.status_faults.pop(0))
            if answer is not None:
                return answer
        ids = body.get("taskIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return web.json_response({"status": 400, "message": "taskIds must be a list"}, status=400)
        items = []
        for task_id in ids:
            job = self.jobs.get(task_id)
            if job is None:
                continue
            job.polls += 1
            if job.status == 0 and self.duration is None and job.polls >= self.polls_to_finish:
                self._finish(job)
            items.append(self.item(job))
        return self._envelope(0, items)

    async def _image(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["task"])
        name = request.match_info["name"]
        if job is None or job.status != 1 or not name.endswith(".png"):
            raise web.HTTPNotFound()
        size = (128, 128) if name == "grid.png" else (64, 64)
        color = hashlib.sha256(f"{job.task_id}/{name}".encode()).digest()[:3]
        out = io.BytesIO()
        Image.new("RGB", size, tuple(color)).save(out, format="PNG")
        return web.Response(body=out.getvalue(), content_type="image/png")

    # -- state

    def item(self, job: FakeJob) -> dict[str, Any]:
        """The job as a job-status entry (and callback `data`)."""
        item: dict[str, Any] = {
            "taskId": job.task_id,
            "status": str(job.status) if self.status_as_string else job.status,
            "prompt": job.body.get("prompt"),
            "createdAt": int(job.created * 1000),
        }
        cdn = f"{self.base_url}/cdn/{job.task_id}"
        if job.status == 2:
            item["failReason"] = "Invalid parameter: the prompt was blocked (FAIL)"
        elif job.status == 1 and job.kind == "mj":
            item |= {
                "jobId": str(uuid.uuid4()),
                "image": f"{cdn}/grid.png",
                "images": [f"{cdn}/{n}.png" for n in range(4)],
                "mjPrompt": job.body.get("prompt"),
                "meta": {"width": 1024, "height": 1024},
            }
        elif job.status == 1:
            width, _, height = str(job.body.get("size") or "1024x1024").partition("x")
            images = [f"{cdn}/{n}.png" for n in range(self.gpt_images)]
            item |= {
                "image": images[0],
                "images": images,
                "meta": {"width": int(width), "height": int(height)},
            }
        return item

    def _finish(self, job: FakeJob) -> None:
        job.status = 2 if "FAIL" in str(job.body.get("prompt")) else 1
        self.finished_at[job.task_id] = time.monotonic()
        if job.hook and not job.notified:
            job.notified = True
            self.spawn(self._deliver(job.hook, job))

    async def _finish_later(self, job: FakeJob) -> None:
        await asyncio.sleep(self.hook_delay if self.duration is None else self.duration)
        if job.status == 0:
            self._finish(job)

    async def _deliver(self, url: str, job: FakeJob) -> None:
        item = self.item(job)
        payload = (
            {"status": 0, "message": "success", "data": item} if self.callback_shape == "envelope" else item
        )
        for _ in range(self.callback_repeats):
            try:
                async with self.session().post(url, json=payload) as response:
                    await response.read()
                self.callbacks_sent.append((url, payload))
            except aiohttp.ClientError as exc:
                self.callback_errors.append(f"{url}: {exc!r}")

    async def _fault(self, fault: str) -> web.StreamResponse | None:
        if fault == "timeout":  # answer after ~1 s, or at once when the fake is stopping
            try:
                await asyncio.wait_for(self._closing.wait(), 1.0)
            except TimeoutError:
                return None
            return web.json_response({"message": "shutting down"}, status=503)
        answers: dict[str, web.StreamResponse] = {
            "auth": web.json_response({"message": "Invalid API-KEY"}, status=401),
            "auth_echo": web.json_response({"message": f"Invalid API-KEY {self.api_key}"}, status=401),
            "quota": self._envelope(1001, None, "quota not enough"),
            "busy": self._envelope(1002, None, "concurrency limit, max 10"),
            "rate_limited": web.json_response(
                {"message": "Too Many Requests"}, status=429, headers={"Retry-After": "2"}
            ),
            "unavailable": web.json_response({"message": "Service Unavailable"}, status=503),
            "malformed": web.json_response({"result": "ok", "id": 7}),
            "rejected": web.json_response({"status": 400, "message": "Banned prompt detected"}, status=400),
        }
        return answers[fault]

    def _envelope(self, status: int, data: Any, message: str = "success") -> web.Response:
        code: int | str = str(status) if self.status_as_string else status
        return web.json_response({"status": code, "message": message, "data": data})

    async def _record(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.received.append(Received(request.method, request.path, dict(request.headers), body))
        return body


def _mj_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or not body["prompt"]:
        return "prompt is required"
    if body.get("mode", "fast") not in ("relaxed", "fast"):
        return "mode must be relaxed or fast"
    timeout = body.get("timeout", 600)
    if not isinstance(timeout, int) or not 300 <= timeout <= 1200:
        return "timeout must be an integer between 300 and 1200"
    return None


def _gpt_problem(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or not body["prompt"]:
        return "prompt is required"
    if body.get("model", "gpt-image-2") != "gpt-image-2":
        return "model must be gpt-image-2"
    if body.get("aspect_ratio", "1:1") not in ASPECT_RATIOS:
        return "aspect_ratio must be one of 1:1, 3:4, 4:3, 16:9, 9:16"
    refer = body.get("referImages", [])
    if not isinstance(refer, list) or not all(isinstance(url, str) for url in refer):
        return "referImages must be a list of strings"
    size = body.get("size", "1024x1024")
    if (
        not isinstance(size, str)
        or len(size.split("x")) != 2
        or not all(p.isdigit() for p in size.split("x"))
    ):
        return "size must be WIDTHxHEIGHT"
    return None


class CallbackReceiver(FakeServer):
    """A webhook endpoint for tests: records every POST to /hook/... and hands bodies out in order."""

    def __init__(self) -> None:
        self.bodies: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
        super().__init__()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/hook/{tail:.*}", self._hook)]

    def url(self, tail: str = "job") -> str:
        return f"{self.base_url}/hook/{tail}"

    async def next(self, wait: float = 2.0) -> tuple[bytes, dict[str, str]]:
        return await asyncio.wait_for(self.bodies.get(), wait)

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        await self.bodies.put((await request.read(), dict(request.headers)))
        return web.json_response({"ok": True})


if __name__ == "__main__":
    serve_forever(MidjourneyApiFake())
