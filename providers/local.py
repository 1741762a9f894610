"""The built-in `local` provider: a simulator that renders real images with Pillow, no account needed.

It is stateless like a remote API seen from the bot: everything a task needs (kind, prompt, seed,
aspect ratio, start time, duration) is packed into its task id, so a bot restart loses nothing.
Its images are served over HTTP from 127.0.0.1 and downloaded through the bot's normal media path.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal

import httpx
from aiohttp import web
from pydantic import Field

from providers import local_render as render
from providers.base import (
    ALL_FLAGS,
    GRID_PRODUCING,
    REMIXABLE,
    UPSCALERS,
    ZOOM_RANGE,
    Action,
    ActRequest,
    BaseProvider,
    Capabilities,
    Flag,
    FlagPolicy,
    GenerationRequest,
    ParentTask,
    ProviderConfig,
    SubmitAttempt,
    TaskResult,
    TaskSnapshot,
    TaskStatus,
    grid_offers,
    offer_key,
    upscale_offers,
)
from providers.errors import ErrorKind, ProviderBusy, ProviderProtocolError, ProviderRejected, make_error

_IMAGE_URL = re.compile(r"^http://127\.0\.0\.1:[0-9]+(?P<path>/img/.+)$")


class LocalConfig(ProviderConfig):
    type: Literal["local"] = "local"
    duration: float = Field(default=4.0, ge=0)  # simulated generation time, seconds
    poll_interval: float = Field(default=0.5, gt=0)
    grid_size: int = Field(default=1024, ge=128, le=4096)  # longer side of a grid
    failure_rate: float = Field(default=0.0, ge=0, le=1)  # share of tasks that fail
    busy_rate: float = Field(default=0.0, ge=0, le=1)  # share of submits refused as busy
    fail_word: str | None = None  # a prompt containing this word fails
    port: int = Field(default=0, ge=0, le=65535)  # image server port on 127.0.0.1 (0 = any free)
    # Fault injection, so every provider error class can be exercised without a real API:
    # submit and act raise `submit_error` (the first `submit_error_count` times; 0 = always).
    submit_error: ErrorKind | None = None
    submit_error_count: int = Field(default=0, ge=0)
    error_retry_after: float | None = Field(default=1.0, ge=0)  # retry_after of injected busy errors


_FOLLOWUPS = frozenset(
    {
        Action.UPSCALE,
        Action.VARIATION,
        Action.REROLL,
        Action.VARY_SUBTLE,
        Action.VARY_STRONG,
        Action.UPSCALE_SUBTLE,
        Action.UPSCALE_CREATIVE,
        Action.ZOOM_OUT_2X,
        Action.ZOOM_OUT_1_5X,
        Action.PAN_LEFT,
        Action.PAN_RIGHT,
        Action.PAN_UP,
        Action.PAN_DOWN,
        Action.UPSCALE_2X,
        Action.UPSCALE_4X,
        Action.REDO_UPSCALE,
        Action.MAKE_SQUARE,
        Action.CUSTOM_ZOOM,
        Action.VARY_REGION,
    }
)
_SINGLE_IMAGE = frozenset(Action(kind) for kind in render.SINGLE)
_ASPECT = re.compile(r"--ar\s+([1-9][0-9]*:[1-9][0-9]*)\b")
#: The simulator stands in for Midjourney: --ar sets the picture's shape and --seed its look; every
#: other flag is kept in the prompt it writes on the tiles (it renders no styles, references or
#: profiles). It makes no videos, so --video / --motion are refused.
_MAPPED = frozenset({Flag.ASPECT, Flag.SEED})
FLAGS = FlagPolicy(mapped=_MAPPED, passed=ALL_FLAGS - _MAPPED - {Flag.VIDEO, Flag.MOTION})


def _pack(spec: Mapping[str, Any]) -> str:
    raw = zlib.compress(json.dumps(spec, separators=(",", ":")).encode(), 9)
    return "L" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unpack(task_id: str) -> dict[str, Any]:
    if not task_id.startswith("L"):
        raise ValueError("not a local task id")
    body = task_id[1:]
    spec = json.loads(zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))
    if not isinstance(spec, dict):
        raise ValueError("not a local task spec")
    return spec


def _mix(*parts: object) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


class LocalProvider(BaseProvider):
    config_class: ClassVar[type[ProviderConfig]] = LocalConfig
    capabilities = Capabilities(
        actions=frozenset({Action.IMAGINE, Action.DESCRIBE, Action.BLEND, *_FOLLOWUPS}),
        batch_fetch=1000,
        progress=True,
        preview=True,
        max_images=1,
        reconcile=True,
        flags=FLAGS,
    )

    def __init__(
        self, config: LocalConfig, client: httpx.AsyncClient, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(config)
        self.settings = config  # typed view of self.config (the Provider protocol keeps that one wide)
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._rng = random.Random()
        self._injected = 0
        self.calls: Counter[str] = Counter()  # submit / act / fetch calls made, for tests and benchmarks

    # -- lifecycle: the image server ------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/img/{task}/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.settings.port)
        await site.start()
        port = self._runner.addresses[0][1]  # the port the OS picked when config.port is 0
        self.settings = self.settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
        self.config = self.settings

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, request: web.Request) -> web.Response:
        try:
            spec = _unpack(request.match_info["task"])
        except ValueError:
            raise web.HTTPNotFound() from None
        name = request.match_info["name"]
        data = await asyncio.to_thread(render.render_file, spec, name, self.settings.grid_size)
        if data is None:
            raise web.HTTPNotFound()
        mime = "image/jpeg" if name.endswith(".jpg") else "image/png"
        return web.Response(body=data, content_type=mime)

    # -- the provider protocol -----------------------------------------------------------------

    def _spec(self, kind: Action, prompt: str, ar: str | None, seed: int, **extra: Any) -> dict[str, Any]:
        return {
            "k": kind.value,
            "p": prompt[:240],
            "ar": ar or "1:1",
            "s": seed,
            "t": round(self._clock(), 3),
            "d": self.settings.duration,
            **extra,
        }

    def _check_busy(self) -> None:
        self._inject_error()
        if self.settings.busy_rate and self._rng.random() < self.settings.busy_rate:
            raise ProviderBusy("The local provider is busy (simulated).", retry_after=1.0)

    def _inject_error(self) -> None:
        kind, count = self.settings.submit_error, self.settings.submit_error_count
        if kind is None or (count and self._injected >= count):
            return
        self._injected += 1
        message = f"The local provider refused the request (simulated {kind.value} error)."
        raise make_error(kind, message, self.settings.error_retry_after)

    async def submit(self, request: GenerationRequest) -> TaskSnapshot:
        self.calls["submit"] += 1
        self._check_busy()
        try:
            spec = await self._command_spec(request)
        except (OSError, ValueError) as exc:  # Pillow could not decode an image that passed the magic check
            raise ProviderRejected("The image could not be read; try a PNG or JPEG file.") from exc
        return TaskSnapshot(task_id=_pack(spec), status=TaskStatus.SUBMITTED, progress=0)

    async def _command_spec(self, request: GenerationRequest) -> dict[str, Any]:
        prompt = request.prompt
        FLAGS.check(self.config.name, prompt)
        ar = prompt.aspect_ratio if prompt else None
        text = prompt.full() if prompt else ""
        seed = prompt.seed if prompt and prompt.seed is not None else self._rng.randrange(2**32)
        if request.kind is Action.IMAGINE:
            spec = self._spec(Action.IMAGINE, text, ar, seed)
        elif request.kind is Action.DESCRIBE:
            if len(request.images) != 1:
                raise ProviderRejected("Describe takes exactly one image.")
            prompts = await asyncio.to_thread(render.describe, request.images[0].data)
            spec = self._spec(Action.DESCRIBE, "", None, seed, x=prompts)
        elif request.kind is Action.BLEND:
            low, high = self.capabilities.blend_range
            if not low <= len(request.images) <= high:
                raise ProviderRejected("Blend takes {low} to {high} images.", low=low, high=high)
            colors = await asyncio.to_thread(render.palette, [i.data for i in request.images])
            ratio = {"portrait": "2:3", "landscape": "3:2"}.get(request.dimensions or "", "1:1")
            spec = self._spec(Action.BLEND, f"blend of {len(colors)} images", ratio, seed, pal=colors)
        else:
            raise ProviderRejected("The local provider cannot {command}.", command=request.kind.value)
        return spec

    async def act(self, parent: ParentTask, request: ActRequest) -> TaskSnapshot:
        self.calls["act"] += 1
        self._check_busy()
        if request.action not in _FOLLOWUPS or parent.task_id is None:
            raise ProviderRejected(
                "The local provider cannot {action} this job.", action=request.action.value
            )
        base = _unpack(parent.task_id)
        action, index = request.action, request.index
        if request.remix is not None and action in REMIXABLE:  # Remix: the edited prompt is drawn
            FLAGS.check(self.config.name, request.remix)
            base = base | {"p": request.remix.full()[:240], "s": _mix(base["s"], request.remix.full()),
                           "ar": request.remix.aspect_ratio or base["ar"]}  # fmt: skip
        pal = base.get("pal")
        if action is Action.UPSCALE:
            seed = render.tile_seed(base["s"], index)
        elif action is Action.UPSCALE_SUBTLE:
            seed = base["s"]
        elif action is Action.REROLL:
            seed = self._rng.randrange(2**32)
        else:
            seed = _mix(base["s"], action.value, index)
        if action is Action.VARIATION:
            pal = pal or render.tile_palette(render.tile_seed(base["s"], index))
        elif action not in (Action.UPSCALE, Action.REROLL):
            pal = pal or render.tile_palette(base["s"])
        ar = render.panned_ratio(base["ar"], action)
        spec = self._spec(action, base["p"], ar, seed, pal=pal, inner=base["s"])
        spec |= self._reframed(base, request)
        return TaskSnapshot(task_id=_pack(spec), status=TaskStatus.SUBMITTED, progress=0)

    def _reframed(self, base: Mapping[str, Any], request: ActRequest) -> dict[str, Any]:
        """What Upscale (2x)/(4x), Redo Upscale, Make Square and Custom Zoom change in a child's spec:
        an upscaler keeps the picture (its seed and palette) and scales it by `x`; the zooms draw the
        parent inside a new frame (`iar`: the parent's shape; `z`: the zoom factor)."""
        action = request.action
        if action in (Action.UPSCALE_2X, Action.UPSCALE_4X):
            factor = 2.0 if action is Action.UPSCALE_2X else 4.0
            return {"s": base["s"], "pal": base.get("pal"), "x": min(4.0, float(base.get("x", 1)) * factor)}
        if action is Action.REDO_UPSCALE:  # the same upscaler once more: the same shapes, fresh colours
            colours = render.tile_palette(self._rng.randrange(2**32))
            return {"s": base["s"], "x": base.get("x", 1), "pal": colours}
        if action is Action.MAKE_SQUARE:
            if len(set(str(base["ar"]).split(":"))) == 1:
                raise ProviderRejected("This image is square already.")
            return {"ar": "1:1", "iar": base["ar"]}
        if action is Action.CUSTOM_ZOOM:
            low, high = ZOOM_RANGE
            if request.zoom is None or not low <= request.zoom <= high:
                raise ProviderRejected(
                    "Custom Zoom takes --zoom {low} to {high}.", low=format(low, "g"), high=format(high, "g")
                )
            prompt = request.prompt or str(base["p"])
            ratio = _ASPECT.search(prompt)
            return {"z": request.zoom, "p": prompt[:240], "ar": ratio[1] if ratio else base["ar"]}
        if action is Action.VARY_REGION:  # the parent image, its masked region repainted
            if request.mask is None:
                raise ProviderRejected("Vary (Region) needs a region drawn on the image (the web editor).")
            region = render.mask_bits(request.mask.data)
            if region is None:
                raise ProviderRejected("The region to vary is empty.")
            prompt = request.prompt or str(base["p"])
            return {"m": region, "inner": base["s"], "ipal": base.get("pal"), "p": prompt[:240],
                    "ar": base["ar"]}  # fmt: skip
        return {}

    async def fetch(self, task_ids: Sequence[str]) -> list[TaskSnapshot]:
        self.calls["fetch"] += 1
        snapshots = []
        for task_id in task_ids:
            try:
                spec = _unpack(task_id)
            except ValueError:
                continue
            snapshots.append(self._snapshot(task_id, spec))
        return snapshots

    def parse_callback(self, body: bytes, headers: Mapping[str, str]) -> TaskSnapshot:
        raise ProviderProtocolError("The local provider sends no callbacks.")

    async def reconcile(self, attempt: SubmitAttempt) -> TaskSnapshot | None:
        """Always None, truthfully: a task exists only as the id a submit returned, nothing is charged,
        so a submit that never returned left nothing behind and sending it again is safe. (Rebuilding
        the id from the attempt would not work for describe and blend, whose ids hold image data.)"""
        return None

    def trusts_url(self, url: str) -> bool:
        return bool(self.config.base_url) and url.startswith(self.config.base_url + "/")

    def locate(self, url: str) -> str:
        """An image URL of an earlier run, at this run's server: the port changes across restarts but
        the path (the task id) is all an image is rendered from."""
        match = _IMAGE_URL.match(url)
        return f"{self.config.base_url}{match['path']}" if match and self.config.base_url else url

    def _snapshot(self, task_id: str, spec: Mapping[str, Any]) -> TaskSnapshot:
        elapsed = self._clock() - float(spec["t"])
        duration = float(spec["d"])
        url = f"{self.config.base_url}/img/{task_id}"
        if duration > 0 and elapsed < duration:
            progress = max(1, min(99, int(elapsed / duration * 100)))
            preview = f"{url}/preview-{progress // 25}.jpg" if progress >= 25 else None
            return TaskSnapshot(
                task_id=task_id, status=TaskStatus.RUNNING, progress=progress, preview_url=preview
            )
        if self._fails(spec):
            error = "The image could not be generated (simulated failure)."
            return TaskSnapshot(task_id=task_id, status=TaskStatus.FAILED, error=error)
        result = self._result(url, spec)
        return TaskSnapshot(task_id=task_id, status=TaskStatus.SUCCEEDED, progress=100, **result)

    def _upscale_offers(self, kind: Action, ratio: str) -> dict[str, str]:
        """Midjourney's follow-ups of a single image: Redo Upscale only where an upscaler made it,
        Make Square only on a non-square one."""
        offers = upscale_offers(self.capabilities)
        if kind not in UPSCALERS:
            offers.pop(offer_key(Action.REDO_UPSCALE), None)
        if len(set(ratio.split(":"))) == 1:
            offers.pop(offer_key(Action.MAKE_SQUARE), None)
        return offers

    def _fails(self, spec: Mapping[str, Any]) -> bool:
        word = self.settings.fail_word
        if word and word.lower() in str(spec["p"]).lower().split():
            return True
        return random.Random(spec["s"]).random() < self.settings.failure_rate

    def _result(self, url: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        kind = Action(spec["k"])
        width, height = render.grid_dimensions(spec["ar"], self.settings.grid_size)
        if kind is Action.DESCRIBE:
            return {"result": TaskResult(prompts=list(spec["x"]))}
        if kind in _SINGLE_IMAGE:
            width, height = render.upscaled_size((width, height), float(spec.get("x", 1)))
            result = TaskResult(image_urls=[f"{url}/0.png"], width=width, height=height)
            return {"result": result, "actions": self._upscale_offers(kind, str(spec["ar"]))}
        assert kind in GRID_PRODUCING
        result = TaskResult(
            grid_url=f"{url}/grid.png",
            image_urls=[f"{url}/{i}.png" for i in range(1, 5)],
            width=width,
            height=height,
        )
        return {"result": result, "actions": grid_offers(self.capabilities)}
