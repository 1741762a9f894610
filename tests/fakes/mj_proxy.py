"""A fake midjourney-proxy server: the Plus/trueai flavour by default, `opensource=True` for novicezk.

Plus: finished tasks carry Discord-like `buttons` (pressed through /mj/submit/action), trueai's `imageUrls`
(the four split images), /mj/submit/modal (with `remix=True`, or a press that sends `enableRemix: true`,
variation/reroll/pan/vary buttons answer code 21 and wait in MODAL for it), /mj/submit/shorten and task
cancel. Open source: no buttons or imageUrls; U/V/reroll through /mj/submit/change and
/mj/submit/simple-change, and code 21 means "that change already exists". Both: speed path prefixes
(/mj-fast/mj/..., /fast/mj/...), list-by-condition, /mj/task/list (trueai: the newest `list_limit` tasks by
submitTime; novicezk: every task, `list_limit=None`), the submit's `state` echoed in its task, progress "45%"
with a preview imageUrl while IN_PROGRESS, and the full Task POSTed to `notifyHook` on every status or
progress change. A prompt containing FAIL_WORD fails.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes._server import (
    HANG_AFTER_CREATE,
    FakeServer,
    Received,
    grid_buttons,
    png,
    serve_forever,
    upscale_buttons,
)

FAIL_WORD = "fail-this"
BANNED_WORD = "gore"
_PREFIXES = ("", "/mj-fast", "/mj-relax", "/mj-turbo", "/fast", "/relax", "/turbo")
_SUBMITS = ("imagine", "action", "modal", "describe", "blend", "shorten", "change", "simple-change")
_PLUS_ONLY = {"action", "modal", "shorten"}
_DATA_URI = re.compile(r"^data:image/[\w.+-]+;base64,[A-Za-z0-9+/=]+$")
_TERMINAL = {"SUCCESS", "FAILURE", "CANCEL"}
_ZOOM = re.compile(r"--zoom\s+(?:1(?:\.\d+)?|2(?:\.0+)?)(?:\s|$)")
_REMIX_BUTTONS = ("variation", "reroll", "pan_", "low_variation", "high_variation")


@dataclass
class _Task:
    data: dict[str, Any]
    hook: str | None
    index: int = 0
    runner: asyncio.Task[None] | None = field(default=None, repr=False)
    custom_id: str = ""  # the button that made it (its result's buttons depend on it)


def _envelope(code: int, description: str, result: str | None = None, **properties: Any) -> web.Response:
    body: dict[str, Any] = {"code": code, "description": description, "result": result}
    body["properties"] = properties
    return web.json_response(body)


def _with_style(buttons: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Proxies pass Discord's component fields on too."""
    return [button | {"type": 2, "style": 2} for button in buttons]


def _action_of(custom_id: str) -> str:
    table = [
        ("MJ::JOB::upsample_", "UPSCALE"),
        ("MJ::JOB::upsample::", "UPSCALE"),
        ("MJ::JOB::reroll::", "REROLL"),
        ("MJ::Outpaint::", "ZOOM"),
        ("MJ::CustomZoom::", "ZOOM"),
        ("MJ::JOB::pan_", "PAN"),
        ("MJ::JOB::animate_", "VIDEO"),
    ]
    return next((action for prefix, action in table if custom_id.startswith(prefix)), "VARIATION")


class MjProxyFake(FakeServer):
    def __init__(
        self,
        *,
        secret: str = "test-secret",
        opensource: bool = False,
        remix: bool = False,
        step: float = 0.02,
    ) -> None:
        super().__init__()
        self.secret = secret
        self.opensource = opensource
        self.remix = remix
        self.step = step  # seconds between status/progress changes
        self.queue_next = 0  # answer the next N submits with code 22 (queued)
        self.timeout_delay = 0.7  # longer than the tests' request_timeout
        self.list_limit: int | None = None if opensource else 100  # what GET /mj/task/list holds at most
        self.tasks: dict[str, _Task] = {}
        self.finished_at: dict[str, float] = {}  # task id -> time.monotonic() it finished (benchmarks)
        self.received: list[Received] = []
        self.invalid: list[str] = []  # requests outside the documented fields
        self.hooks_sent: list[dict[str, Any]] = []
        self._ids = itertools.count(int(time.time() * 1000) * 1000)

    def routes(self) -> list[web.RouteDef]:
        routes = [web.post(f"{p}/mj/submit/{name}", self._submit) for p in _PREFIXES for name in _SUBMITS]
        return [
            *routes,
            web.get("/mj/task/{id}/fetch", self._fetch),
            web.post("/mj/task/list-by-condition", self._list),
            web.get("/mj/task/list", self._newest),
            web.post("/mj/task/{id}/cancel", self._cancel),
            web.get("/cdn/{id}/{name}", self._cdn),
        ]

    def submitted(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path.endswith(f"/mj/submit/{name}")]

    def created_ids(self) -> list[str]:
        return list(self.tasks)

    # -- auth, faults, dispatch -------------------------------------------------------------

    async def _record(self, request: web.Request) -> tuple[Any, web.Response | None]:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw
        self.received.append(Received(request.method, request.path, dict(request.headers), body))
        auth = request.headers.get("mj-api-secret") or request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") != self.secret:
            return body, web.json_response({"code": 401, "description": "Unauthorized"}, status=401)
        return body, None

    async def _submit(self, request: web.Request) -> web.Response:
        body, denied = await self._record(request)
        if denied is not None:
            return denied
        name = request.path.rsplit("/", 1)[1]
        if self.opensource and name in _PLUS_ONLY:
            return web.json_response({"status": 404, "error": "Not Found", "path": request.path}, status=404)
        if self._faults:
            fault = self._faults.pop(0)
            if fault == HANG_AFTER_CREATE:
                self.hang_after(request)
            elif fault != "timeout":
                return self._fault(fault)
            else:
                await asyncio.sleep(self.timeout_delay)
        if not isinstance(body, dict):
            return self._invalid(request.path, "body is not a JSON object")
        handler = getattr(self, f"_{name.replace('-', '_')}")
        response: web.Response = await handler(body)
        return response

    def _fault(self, fault: str) -> web.Response:
        if fault == "auth":
            return web.json_response({"code": 401, "description": "Unauthorized"}, status=401)
        if fault == "rate_limited":
            return web.json_response({"error": "Too Many Requests"}, status=429, headers={"Retry-After": "2"})
        if fault == "unavailable":
            return web.Response(status=503, text="<html>503 Service Unavailable</html>")
        if fault == "malformed":
            return web.json_response({"status": "ok", "taskId": "1"})
        table = {
            "quota": (4, "quota_not_enough", {}),
            "busy": (23, "Queue is full, please try again later", {"numberOfQueues": 10}),
            "rejected": (24, "May contain sensitive words", {"promptEn": "x", "bannedWord": BANNED_WORD}),
        }
        code, description, properties = table[fault]
        return _envelope(code, description, None, **properties)

    def _invalid(self, path: str, why: str) -> web.Response:
        self.invalid.append(f"{path}: {why}")
        return _envelope(4, f"Validation error: {why}")

    # -- submit handlers --------------------------------------------------------------------

    def _start(self, action: str, body: dict[str, Any], prompt: str, **data: Any) -> _Task:
        task_id = str(next(self._ids))
        fields = {
            "id": task_id,
            "action": action,
            "status": "NOT_START",
            "prompt": prompt,
            "promptEn": prompt,
        }
        fields |= {"description": f"/{action.lower()} {prompt}".strip(), "state": body.get("state", "")}
        fields |= {"submitTime": int(time.time() * 1000), "progress": "0%", "imageUrl": None}
        fields |= {"failReason": None, "properties": {"finalPrompt": prompt}} | data
        if not self.opensource:
            fields |= {"buttons": [], "botType": body.get("botType", "MID_JOURNEY")}
        task = _Task(fields, body.get("notifyHook") or None)
        self.tasks[task_id] = task
        if fields["status"] != "MODAL":
            task.runner = self.spawn(self._run(task))
        return task

    def _accepted(self, task: _Task) -> web.Response:
        if self.queue_next:
            self.queue_next -= 1
            return _envelope(22, "In queue, there are 1 tasks ahead", task.data["id"], numberOfQueues=1)
        return _envelope(1, "Submit success", task.data["id"], discordInstanceId="1118138338562560102")

    async def _imagine(self, body: dict[str, Any]) -> web.Response:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return self._invalid("imagine", "prompt is required")
        if not all(isinstance(i, str) and _DATA_URI.match(i) for i in body.get("base64Array", [])):
            return self._invalid("imagine", "base64Array items must be data URIs")
        if body.get("botType", "MID_JOURNEY") not in ("MID_JOURNEY", "NIJI_JOURNEY"):
            return self._invalid("imagine", "botType")
        return self._accepted(self._start("IMAGINE", body, prompt))

    async def _action(self, body: dict[str, Any]) -> web.Response:
        parent = self.tasks.get(str(body.get("taskId")))
        custom_id = body.get("customId")
        if parent is None:
            return _envelope(3, "Related task does not exist or has expired")
        if custom_id not in {b["customId"] for b in parent.data.get("buttons", [])}:
            return self._invalid("action", "customId is not a button of the task")
        action = _action_of(custom_id)
        if custom_id.startswith(("MJ::CustomZoom::", "MJ::Inpaint::")):  # always a form (zoom; mask)
            task = self._start(action, body, parent.data["prompt"], status="MODAL")
            task.custom_id = custom_id
            return _envelope(21, "Waiting for window confirm", task.data["id"])
        if "enableRemix" in body and not isinstance(body["enableRemix"], bool):
            return self._invalid("action", "enableRemix must be a boolean")
        # Remix on the account, or asked for by this press (Plus/trueai `enableRemix`): wait in MODAL
        remix = self.remix or body.get("enableRemix") is True
        if remix and any(f"::{k}" in custom_id for k in _REMIX_BUTTONS):
            task = self._start(action, body, parent.data["prompt"], status="MODAL")
            task.data["properties"]["remix"] = True
            return _envelope(21, "Waiting for window confirm", task.data["id"], remix=True)
        task = self._start(action, body, parent.data["prompt"])
        task.custom_id = custom_id
        return self._accepted(task)

    async def _modal(self, body: dict[str, Any]) -> web.Response:
        task = self.tasks.get(str(body.get("taskId")))
        if task is None or task.data["status"] != "MODAL":
            return _envelope(3, "The task is not waiting for a confirmation")
        prompt = body.get("prompt") or task.data["prompt"]
        if task.custom_id.startswith("MJ::CustomZoom::") and not _ZOOM.search(prompt):
            return self._invalid("modal", "Custom Zoom needs --zoom between 1 and 2")
        if task.custom_id.startswith("MJ::Inpaint::"):  # Vary (Region): the mask, as a data URI
            if not _DATA_URI.match(str(body.get("maskBase64") or "")):
                return self._invalid("modal", "Vary (Region) needs maskBase64 (a data URI)")
            task.data["properties"]["maskBase64"] = body["maskBase64"]
        task.data.update(status="NOT_START", prompt=prompt, promptEn=prompt)
        task.data["properties"]["finalPrompt"] = prompt
        task.runner = self.spawn(self._run(task))
        return _envelope(1, "Submit success", task.data["id"])

    async def _describe(self, body: dict[str, Any]) -> web.Response:
        if not isinstance(body.get("base64"), str) or not _DATA_URI.match(body["base64"]):
            return self._invalid("describe", "base64 must be a data URI")
        return self._accepted(self._start("DESCRIBE", body, ""))

    async def _blend(self, body: dict[str, Any]) -> web.Response:
        images = body.get("base64Array")
        if not isinstance(images, list) or not 2 <= len(images) <= 5:
            return self._invalid("blend", "base64Array needs 2-5 images")
        if not all(isinstance(i, str) and _DATA_URI.match(i) for i in images):
            return self._invalid("blend", "base64Array items must be data URIs")
        if body.get("dimensions", "SQUARE") not in ("PORTRAIT", "SQUARE", "LANDSCAPE"):
            return self._invalid("blend", "dimensions")
        return self._accepted(self._start("BLEND", body, ""))

    async def _shorten(self, body: dict[str, Any]) -> web.Response:
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return self._invalid("shorten", "prompt is required")
        return self._accepted(self._start("SHORTEN", body, body["prompt"]))

    async def _change(self, body: dict[str, Any]) -> web.Response:
        action, index = body.get("action"), body.get("index")
        if action not in ("UPSCALE", "VARIATION", "REROLL"):
            return self._invalid("change", "action")
        if action != "REROLL" and index not in (1, 2, 3, 4):
            return self._invalid("change", "index must be 1-4")
        return self._change_task(str(body.get("taskId")), action, index or 0, body)

    async def _simple_change(self, body: dict[str, Any]) -> web.Response:
        match = re.fullmatch(r"(\d+) (?:([UV])([1-4])|R)", str(body.get("content", "")))
        if match is None:
            return self._invalid("simple-change", "content must be '<taskId> U1..U4|V1..V4|R'")
        task_id, letter, index = match.groups()
        action = {"U": "UPSCALE", "V": "VARIATION"}.get(letter or "", "REROLL")
        return self._change_task(task_id, action, int(index or 0), body)

    def _change_task(self, task_id: str, action: str, index: int, body: dict[str, Any]) -> web.Response:
        parent = self.tasks.get(task_id)
        if parent is None or parent.data["status"] != "SUCCESS":
            return _envelope(3, "Related task does not exist or has not finished")
        for task in self.tasks.values():  # the open-source server refuses a duplicate change with 21
            same = task.data.get("parentId") == task_id and task.data["action"] == action
            if same and task.index == index and action != "REROLL":
                status, url = task.data["status"], task.data["imageUrl"]
                return _envelope(21, "Task already exists", task.data["id"], status=status, imageUrl=url)
        task = self._start(action, body, parent.data["prompt"], parentId=task_id)
        task.index = index
        return self._accepted(task)

    # -- task endpoints ---------------------------------------------------------------------

    async def _fetch(self, request: web.Request) -> web.Response:
        _, denied = await self._record(request)
        if denied is not None:
            return denied
        task = self.tasks.get(request.match_info["id"])
        if task is None:
            return web.Response(status=200)  # Spring answers a null task with an empty 200
        return web.json_response(task.data)

    async def _list(self, request: web.Request) -> web.Response:
        body, denied = await self._record(request)
        if denied is not None:
            return denied
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            return self._invalid("list-by-condition", "ids must be a list")
        return web.json_response([self.tasks[str(i)].data for i in ids if str(i) in self.tasks])

    async def _newest(self, request: web.Request) -> web.Response:
        _, denied = await self._record(request)
        if denied is not None:
            return denied
        tasks = [task.data for task in self.tasks.values()]
        if self.list_limit is not None:  # trueai: OrderByDescending(SubmitTime).Take(100)
            tasks = sorted(tasks, key=lambda t: t["submitTime"], reverse=True)[: self.list_limit]
        return web.json_response(tasks)

    async def _cancel(self, request: web.Request) -> web.Response:
        _, denied = await self._record(request)
        if denied is not None:
            return denied
        task = self.tasks.get(request.match_info["id"])
        if self.opensource or task is None:
            return web.json_response({"status": 404, "error": "Not Found"}, status=404)
        if task.data["status"] not in _TERMINAL:
            task.data.update(status="CANCEL", failReason="Cancelled by user")
            await self._notify(task)
        return web.json_response(task.data)

    async def _cdn(self, request: web.Request) -> web.Response:
        task_id, name = request.match_info["id"], request.match_info["name"]
        if name.endswith(".mp4"):
            return web.Response(body=b"\x00\x00\x00\x18ftypmp42" + task_id.encode(), content_type="video/mp4")
        size = (128, 128) if name.startswith(("grid", "preview")) else (64, 64)
        return web.Response(body=png(f"{task_id}/{name}", size), content_type="image/png")

    # -- progression and notifyHook ---------------------------------------------------------

    async def _run(self, task: _Task) -> None:
        data, cdn = task.data, f"{self.base_url}/cdn/{task.data['id']}"
        await asyncio.sleep(self.step)
        changes: list[dict[str, Any]] = [{"status": "SUBMITTED"}]
        changes.append({"status": "IN_PROGRESS", "progress": "0%", "startTime": int(time.time() * 1000)})
        changes += [{"progress": f"{p}%", "imageUrl": f"{cdn}/preview.png"} for p in (25, 45, 75)]
        for change in changes:
            if data["status"] in _TERMINAL:
                return
            data.update(change)
            await self._notify(task)
            await asyncio.sleep(self.step)
        if data["status"] in _TERMINAL:
            return
        if FAIL_WORD in (data.get("prompt") or ""):
            data.update(status="FAILURE", failReason="Job failed: the image could not be generated")
        else:
            data.update(self._outcome(data, cdn), status="SUCCESS", progress="100%")
        data["finishTime"] = int(time.time() * 1000)
        self.finished_at[data["id"]] = time.monotonic()
        await self._notify(task)

    def _outcome(self, data: dict[str, Any], cdn: str) -> dict[str, Any]:
        action, h = data["action"], hashlib.md5(data["id"].encode()).hexdigest()
        plus = not self.opensource
        if action == "DESCRIBE":
            prompts = "\n\n".join(
                f"{n}\ufe0f\u20e3 a described scene, take {n} --ar 1:1" for n in range(1, 5)
            )
            picks = [
                {"customId": f"MJ::Job::PicReader::{n}", "label": str(n), "emoji": ""} for n in range(1, 5)
            ]
            return {"imageUrl": f"{cdn}/described.png", "properties": {"finalPrompt": prompts}} | (
                {"buttons": picks} if plus else {}
            )
        if action == "SHORTEN":
            short = "\n\n".join(f"{n}\ufe0f\u20e3 {data['prompt'][: 10 + n]}" for n in range(1, 6))
            text = f"**Important tokens**\nlighthouse, dusk\n\n**Shortened prompts**\n{short}"
            return {"properties": {"finalPrompt": text}, "buttons": []}
        if action == "VIDEO":
            videos = [{"url": f"{cdn}/video{n}.mp4"} for n in range(1, 3)]
            extend = [f"MJ::JOB::animate_{m}_extend::1::{h}" for m in ("high", "low")]
            buttons = [{"customId": c, "emoji": "", "label": "Extend"} for c in extend]
            return {"imageUrl": f"{cdn}/first.png", "videoUrl": videos[0]["url"], "videoUrls": videos} | {
                "buttons": buttons
            }
        if action == "UPSCALE":
            buttons = self._upscale_buttons(self.tasks[data["id"]], h)
            return {"imageUrl": f"{cdn}/upscale.png", "width": 64, "height": 64} | (
                {"buttons": _with_style(buttons)} if plus else {}
            )
        grid = {"imageUrl": f"{cdn}/grid.png", "width": 128, "height": 128}
        if plus:
            grid |= {
                "imageUrls": [{"url": f"{cdn}/{n}.png"} for n in range(1, 5)],
                "buttons": _with_style(grid_buttons(h)),
            }
        return grid

    @staticmethod
    def _upscale_buttons(task: _Task, h: str) -> list[dict[str, Any]]:
        """Midjourney's buttons under an upscale: v7's by default; a `--v 5` prompt gets v5's Upscale
        (2x)/(4x) instead of Subtle/Creative, and an image made by one of those its Redo button. Make
        Square is offered on a non-square image (an `--ar` other than 1:1)."""
        prompt = task.data.get("prompt") or ""
        buttons = upscale_buttons(h)
        if re.search(r"--v\s+5", prompt):
            buttons = [b for b in buttons if "upsample_v7" not in b["customId"]]
            made_by = re.search(r"upsample_v5_(\dx)", task.custom_id)
            for factor in ("2x", "4x"):
                redo = made_by is not None and made_by[1] == factor
                label = f"Redo Upscale ({factor})" if redo else f"Upscale ({factor})"
                custom_id = f"MJ::JOB::upsample_v5_{factor}::1::{h}::SOLO"
                buttons.append({"customId": custom_id, "emoji": "", "label": label})
        ratio = re.search(r"--ar\s+(\d+):(\d+)", prompt)
        if ratio and ratio[1] != ratio[2]:
            square = {"customId": f"MJ::Outpaint::100::1::{h}::SOLO", "emoji": "", "label": "Make Square"}
            buttons.append(square)
        return buttons

    async def _notify(self, task: _Task) -> None:
        if not task.hook:
            return
        snapshot = json.loads(json.dumps(task.data))
        self.hooks_sent.append(snapshot)
        try:
            timeout = aiohttp.ClientTimeout(total=2)
            async with self.session().post(task.hook, json=snapshot, timeout=timeout) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError):
            pass  # the open-source notifier logs a failed hook and moves on


if __name__ == "__main__":
    serve_forever(MjProxyFake())
