"""A fake of the `mj_rest` API (tests/fakes/specs/mj-rest.openapi.yml), checked against that spec.

Every request to /v1/* is validated with openapi-core before it is served: a violation is recorded
in `violations` and answered 400 (401 when the bearer scheme is missing), the way a validating
server would. Every response the fake sends is validated too (`response_violations`). Jobs advance
pending -> in_progress (25/50/75 %) -> completed over `job_duration` seconds and POST the AsyncAPI
`JobWebhookPayload` to the job's `webhook_url` (every change for webhook_type=progress, else only the
end), signed with `X-Midjourney-Signature` when `webhook_secret` is set. A prompt containing
`FAIL_WORD` makes the job fail. A job keeps what listJobs documents: its prompt, the imagine
`parameters` it was sent (seed included) and `created_at`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from openapi_core import OpenAPI
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse

from tests.fakes._server import HANG_AFTER_CREATE, FakeServer, Received, png, serve_forever

SPEC_PATH = Path(__file__).parent / "specs" / "mj-rest.openapi.yml"
SPEC_HOST = "https://api.midjourney.com"  # the spec's server; requests are matched as if sent there
FAIL_WORD = "fail-this"
_SUBMIT_PATHS = {"/v1/imagine", "/v1/upscale", "/v1/variations", "/v1/describe", "/v1/blend"}
_GRID_TYPES = {"imagine", "variation", "blend"}
_TERMINAL = {"completed", "failed", "cancelled"}


@cache
def spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


@dataclass
class _Job:
    data: dict[str, Any]
    webhook_url: str | None = None
    webhook_type: str = "result"
    runner: asyncio.Task[None] | None = field(default=None, repr=False)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"status": "ERROR", "code": code, "message": message}
    return web.json_response(body, status=status, headers=headers)


class MjRestFake(FakeServer):
    def __init__(
        self,
        *,
        api_key: str = "test-key",
        job_duration: float = 0.2,
        webhook_secret: str | None = None,
        signature_prefix: bool = False,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.job_duration = job_duration
        self.webhook_secret = webhook_secret
        self.signature_prefix = signature_prefix
        self.timeout_delay = 0.7  # longer than the tests' request_timeout
        self.jobs: dict[str, _Job] = {}
        self.received: list[Received] = []
        self.violations: list[str] = []
        self.response_violations: list[str] = []
        self.webhooks_sent: list[dict[str, Any]] = []
        self.app.middlewares.append(self._validate)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/imagine", self._imagine),
            web.post("/v1/upscale", self._upscale),
            web.post("/v1/variations", self._variations),
            web.post("/v1/describe", self._describe),
            web.post("/v1/blend", self._blend),
            web.get("/v1/jobs", self._list),
            web.get("/v1/jobs/{job_id}", self._get),
            web.post("/v1/jobs/{job_id}/cancel", self._cancel),
            web.get("/cdn/{job_id}/{name}", self._cdn),
        ]

    def submitted(self, path: str) -> list[Received]:
        return [r for r in self.received if r.method == "POST" and r.path == path]

    def created_ids(self) -> list[str]:
        return list(self.jobs)

    # -- validation -------------------------------------------------------------------------

    @web.middleware
    async def _validate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            result: web.StreamResponse = await handler(request)
            return result
        raw = await request.read()
        body = json.loads(raw) if raw else None
        headers = dict(request.headers)
        self.received.append(Received(request.method, request.path, headers, body, dict(request.query)))
        mock = MockRequest(
            SPEC_HOST,
            request.method,
            request.path,
            args=dict(request.query),
            headers=headers,
            data=raw or None,
            content_type=request.content_type if raw else "application/json",
        )
        try:
            spec().validate_request(mock)
        except Exception as exc:  # openapi-core raises one class per kind of violation
            self.violations.append(f"{request.method} {request.path}: {type(exc).__name__}: {exc}")
            if "Security" in type(exc).__name__:
                response = _error(401, "unauthorized", "Missing bearer credentials.")
            else:
                response = _error(400, "invalid_request", f"Request validation failed: {exc}"[:300])
        else:
            response = await self._serve(request, handler, headers.get("Authorization", ""))
        self._check_response(mock, response)
        return response

    async def _serve(self, request: web.Request, handler: Any, auth: str) -> web.Response:
        if auth != f"Bearer {self.api_key}":
            return _error(401, "unauthorized", "The API key is invalid.")
        if request.method == "POST" and request.path in _SUBMIT_PATHS and self._faults:
            fault = self._faults.pop(0)
            if fault == HANG_AFTER_CREATE:
                self.hang_after(request)
            elif fault != "timeout":
                return self._fault(fault)
            else:
                await asyncio.sleep(self.timeout_delay)
        response: web.Response = await handler(request)
        return response

    def _fault(self, fault: str) -> web.Response:
        if fault == "malformed":
            return web.json_response({"status": "SUCCESS", "message": "Job created."})  # no data.job_id
        table = {
            "auth": (401, "unauthorized", "The API key is invalid.", None),
            "quota": (402, "insufficient_credits", "Your account has no generation credits left.", None),
            "busy": (429, "concurrency_limit", "Too many jobs are running.", {"Retry-After": "3"}),
            "rate_limited": (429, "rate_limited", "Rate limit exceeded.", {"Retry-After": "2"}),
            "quota_429": (429, "quota_exceeded", "Monthly quota exceeded.", {"Retry-After": "3600"}),
            "unavailable": (503, "unavailable", "Service under maintenance.", None),
            "rejected": (400, "content_blocked", "The prompt contains blocked content: gore", None),
        }
        status, code, message, headers = table[fault]
        return _error(status, code, message, headers)

    def _check_response(self, mock: MockRequest, response: web.Response) -> None:
        assert isinstance(response.body, bytes)
        result = MockResponse(response.body, response.status, dict(response.headers))
        try:
            spec().validate_response(mock, result)
        except ResponseNotFound:
            # undocumented status (402, 503): hold its body to the operation's ErrorResponse schema
            fallback = MockResponse(response.body, 400 if mock.path in _SUBMIT_PATHS else 401)
            self._check_fallback(mock, fallback)
        except Exception as exc:
            self.response_violations.append(f"{mock.method} {mock.path} -> {response.status}: {exc}")

    def _check_fallback(self, mock: MockRequest, response: MockResponse) -> None:
        try:
            spec().validate_response(mock, response)
        except Exception as exc:
            self.response_violations.append(f"{mock.method} {mock.path} (error body): {exc}")

    # -- submit -----------------------------------------------------------------------------

    def _create(
        self, kind: str, body: dict[str, Any], prompt: str, parameters: dict[str, Any]
    ) -> web.Response:
        job_id = str(uuid.uuid4())
        now = _now()
        data = {"id": job_id, "type": kind, "status": "pending", "progress": 0, "prompt": prompt}
        data |= {"parameters": parameters, "created_at": now, "updated_at": now}
        job = _Job(data, body.get("webhook_url"), body.get("webhook_type", "result"))
        self.jobs[job_id] = job
        job.runner = self.spawn(self._run(job))
        return web.json_response({"status": "SUCCESS", "message": "Job created.", "data": {"job_id": job_id}})

    async def _imagine(self, request: web.Request) -> web.Response:
        body = await request.json()
        keys = ("aspect_ratio", "model_version", "process_mode", "quality", "stylize", "seed")
        return self._create("imagine", body, body["prompt"], {k: body[k] for k in keys if k in body})

    async def _upscale(self, request: web.Request) -> web.Response:
        return await self._from_parent(request, "upscale")

    async def _variations(self, request: web.Request) -> web.Response:
        return await self._from_parent(request, "variation")

    async def _from_parent(self, request: web.Request, kind: str) -> web.Response:
        body = await request.json()
        parent = self.jobs.get(body["job_id"])
        if parent is None:
            return _error(404, "not_found", "The parent job was not found.")
        if parent.data["status"] != "completed" or parent.data["type"] not in _GRID_TYPES:
            return _error(400, "invalid_parent", "The parent job has no finished grid.")
        return self._create(kind, body, parent.data["prompt"], {})

    async def _describe(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("image_url") and not body.get("image_base64"):
            return _error(400, "invalid_request", "Either image_url or image_base64 must be provided.")
        return self._create("describe", body, "", {})

    async def _blend(self, request: web.Request) -> web.Response:
        body = await request.json()
        for image in body["images"]:
            if not image.get("url") and not image.get("base64"):
                return _error(400, "invalid_request", "Each image needs a url or base64 data.")
            if image.get("base64"):
                base64.b64decode(image["base64"], validate=True)
        parameters = {"aspect_ratio": body["aspect_ratio"]} if "aspect_ratio" in body else {}
        return self._create("blend", body, body.get("prompt", ""), parameters)

    # -- jobs -------------------------------------------------------------------------------

    async def _get(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return _error(404, "not_found", "Job not found.")
        return web.json_response(job.data)

    async def _list(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", 25))
        offset = int(request.query.get("offset", 0))
        status = request.query.get("status")
        jobs = [j.data for j in self.jobs.values() if status is None or j.data["status"] == status]
        newest_first = request.query.get("sort", "created_at_desc") == "created_at_desc"
        ordered = list(reversed(jobs)) if newest_first else jobs
        page = ordered[offset : offset + limit]
        return web.json_response({"data": page, "total": len(jobs), "limit": limit, "offset": offset})

    async def _cancel(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return _error(404, "not_found", "Job not found.")
        if job.data["status"] in _TERMINAL:
            return _error(400, "not_cancellable", "The job has already finished.")
        self._set(job, status="cancelled")
        await self._notify(job, "job.cancelled")
        return web.json_response(job.data)

    async def _cdn(self, request: web.Request) -> web.Response:
        job_id, name = request.match_info["job_id"], request.match_info["name"]
        size = (128, 128) if name.startswith("grid") else (64, 64)
        return web.Response(body=png(f"{job_id}/{name}", size), content_type="image/png")

    # -- progression and webhooks -----------------------------------------------------------

    def _set(self, job: _Job, **changes: Any) -> None:
        job.data.update(changes, updated_at=_now())

    async def _run(self, job: _Job) -> None:
        step = self.job_duration / 5
        await asyncio.sleep(step)
        for progress in (0, 25, 50, 75):
            if job.data["status"] in _TERMINAL:
                return
            self._set(job, status="in_progress", progress=progress)
            await self._notify(job, "job.progress")
            await asyncio.sleep(step)
        if job.data["status"] in _TERMINAL:
            return
        if FAIL_WORD in (job.data.get("prompt") or ""):
            self._set(job, status="failed", error={"code": "generation_failed", "message": "The job failed."})
            await self._notify(job, "job.failed")
            return
        self._set(job, status="completed", progress=100, result=self._result(job), completed_at=_now())
        await self._notify(job, "job.completed")

    def _result(self, job: _Job) -> dict[str, Any]:
        job_id, kind = job.data["id"], job.data["type"]
        cdn = f"{self.base_url}/cdn/{job_id}"
        if kind == "describe":
            return {"images": [], "prompts": [f"a described scene, take {n} --ar 1:1" for n in range(1, 5)]}
        if kind == "upscale":
            return {"images": [{"url": f"{cdn}/upscale.png", "width": 64, "height": 64}]}
        grid = {"url": f"{cdn}/grid.png", "width": 128, "height": 128, "content_type": "image/png"}
        tiles = [{"url": f"{cdn}/{n}.png", "index": n, "width": 64, "height": 64} for n in range(1, 5)]
        return {"images": [grid, *tiles]}

    async def _notify(self, job: _Job, event: str) -> None:
        if not job.webhook_url or (event == "job.progress" and job.webhook_type != "progress"):
            return
        keys = ("status", "progress", "type", "prompt", "result", "error")
        payload = {"event": event, "job_id": job.data["id"], "timestamp": _now()}
        payload |= {k: job.data[k] for k in keys if k in job.data}
        raw = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            digest = hmac.new(self.webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
            headers["X-Midjourney-Signature"] = f"sha256={digest}" if self.signature_prefix else digest
        self.webhooks_sent.append(payload)
        try:
            timeout = aiohttp.ClientTimeout(total=2)
            async with self.session().post(job.webhook_url, data=raw, headers=headers, timeout=timeout) as r:
                await r.read()
        except (aiohttp.ClientError, TimeoutError):
            pass  # the real service gives up too; polling is the fallback


if __name__ == "__main__":
    serve_forever(MjRestFake())
