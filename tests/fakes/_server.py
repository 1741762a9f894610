"""Shared plumbing for loopback fake servers: start/stop on 127.0.0.1 and a command-line entry point.

A fake subclasses `FakeServer`, registers its routes in `routes()`, and keeps its state on itself.
Tests use `async with Fake() as fake:` and read `fake.base_url`; `python -m tests.fakes.<name> --port P`
serves the same fake until interrupted. Also here: what the provider fakes share (the recorded
request, injected faults, one client session for callbacks, images, Midjourney's Discord buttons).

The provider fakes take the contract's faults (tests/providers/contract.py) and one more,
`HANG_AFTER_CREATE`: the request is served (the task is created) but its answer never comes, so the
client times out not knowing the task exists, the "unknown outcome" that reconcile resolves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web
from PIL import Image

#: fault: serve the submit (create the task), then hold the answer back until the fake stops
HANG_AFTER_CREATE = "hang_after_create"
_HANG = web.RequestKey(HANG_AFTER_CREATE, bool)


@dataclass
class Received:
    """One request as a fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    query: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """A stateful aiohttp app bound to 127.0.0.1 on an ephemeral (or given) port."""

    def __init__(self) -> None:
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.add_routes(self.routes())
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request received
        self._faults: list[str] = []  # what the next submit-type requests fail with, in order
        self._session: aiohttp.ClientSession | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.requests.append((request.method, request.path))
            response: web.StreamResponse = await handler(request)
            if request.get(_HANG):
                await self._stopping.wait()  # the client gives up first; the task exists regardless
            return response

        self.app.middlewares.append(record)

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError("each fake lists its routes")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inject(self, fault: str, times: int = 1) -> None:
        """The next `times` submit-type requests fail with `fault` (see tests/providers/contract.py)."""
        self._faults.extend([fault] * times)

    @staticmethod
    def hang_after(request: web.Request) -> None:
        """Serve `request` as usual, then never send its answer (the HANG_AFTER_CREATE fault)."""
        request[_HANG] = True

    def created_ids(self) -> list[str]:
        """The ids of the tasks this fake created, oldest first."""
        raise NotImplementedError("each provider fake lists its tasks")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `coro` in the background (a job's progress, a callback); `stop` cancels what still runs."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def session(self) -> aiohttp.ClientSession:
        """The client session of the fake's own calls (callbacks, webhooks); `stop` closes it."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def start(self, port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._stopping.set()  # answer what hangs, so the server can shut down
        running = list(self._background)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


Call = tuple[bytes, dict[str, str]]  # (body, headers) of one POST a HookReceiver got


class HookReceiver(FakeServer):
    """A webhook endpoint for adapter tests: keeps (body, headers) of every POST to /hook, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/hook", self._hook)]

    def url(self, query: str = "") -> str:
        return f"{self.base_url}/hook" + (f"?{query}" if query else "")

    @property
    def bodies(self) -> list[bytes]:
        return [body for body, _ in self.calls]

    async def wait_for(self, done: Callable[[list[Call]], bool]) -> list[Call]:
        """`calls` once `done(calls)` holds (within 3 s)."""
        for _ in range(150):
            if done(self.calls):
                return self.calls
            await asyncio.sleep(0.02)
        raise AssertionError(f"callbacks never matched; got {len(self.calls)}")

    async def _hook(self, request: web.Request) -> web.Response:
        self.calls.append((await request.read(), dict(request.headers)))
        return web.Response(text="ok")


def png(seed: str, size: tuple[int, int]) -> bytes:
    """A PNG of one colour derived from `seed`: the same seed, the same image."""
    digest = hashlib.sha256(seed.encode()).digest()
    buffer = io.BytesIO()
    Image.new("RGB", size, (digest[0], digest[1], digest[2])).save(buffer, format="PNG")
    return buffer.getvalue()


def grid_buttons(h: str) -> list[dict[str, Any]]:
    """The buttons Midjourney puts under a grid with message hash `h`: U1-U4, reroll, V1-V4."""
    buttons = [
        {"customId": f"MJ::JOB::upsample::{n}::{h}", "emoji": "", "label": f"U{n}"} for n in range(1, 5)
    ]
    buttons.append({"customId": f"MJ::JOB::reroll::0::{h}::SOLO", "emoji": "🔄", "label": ""})
    buttons += [
        {"customId": f"MJ::JOB::variation::{n}::{h}", "emoji": "", "label": f"V{n}"} for n in range(1, 5)
    ]
    return buttons


_UPSCALE_BUTTONS = (
    ("MJ::JOB::upsample_v7_2x_subtle::1::{h}::SOLO", "", "Upscale (Subtle)"),
    ("MJ::JOB::upsample_v7_2x_creative::1::{h}::SOLO", "", "Upscale (Creative)"),
    ("MJ::JOB::low_variation::1::{h}::SOLO", "🪄", "Vary (Subtle)"),
    ("MJ::JOB::high_variation::1::{h}::SOLO", "🪄", "Vary (Strong)"),
    ("MJ::Inpaint::1::{h}::SOLO", "🖌️", "Vary (Region)"),
    ("MJ::Outpaint::50::1::{h}::SOLO", "🔍", "Zoom Out 2x"),
    ("MJ::Outpaint::75::1::{h}::SOLO", "🔍", "Zoom Out 1.5x"),
    ("MJ::CustomZoom::{h}", "🔍", "Custom Zoom"),
    ("MJ::JOB::pan_left::1::{h}::SOLO", "⬅️", ""),
    ("MJ::JOB::pan_right::1::{h}::SOLO", "➡️", ""),
    ("MJ::JOB::pan_up::1::{h}::SOLO", "⬆️", ""),
    ("MJ::JOB::pan_down::1::{h}::SOLO", "⬇️", ""),
    ("MJ::JOB::animate_high::1::{h}::SOLO", "🎞️", "Animate (High motion)"),
    ("MJ::JOB::animate_low::1::{h}::SOLO", "🎞️", "Animate (Low motion)"),
    ("MJ::BOOKMARK::{h}", "❤️", ""),
)


def upscale_buttons(h: str, *, low_motion: bool = True) -> list[dict[str, Any]]:
    """The buttons under an upscaled image with hash `h` (`low_motion`: with Animate (Low motion))."""
    return [
        {"customId": custom_id.format(h=h), "emoji": emoji, "label": label}
        for custom_id, emoji, label in _UPSCALE_BUTTONS
        if low_motion or "animate_low" not in custom_id
    ]


def serve_forever(fake: FakeServer, argv: list[str] | None = None) -> None:
    """`python -m tests.fakes.<name> --port P`: run `fake` until Ctrl-C."""
    parser = argparse.ArgumentParser(description=f"Serve {type(fake).__name__} on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    async def main() -> None:
        await fake.start(args.port)
        print(f"{type(fake).__name__} listening on {fake.base_url}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it is meant to stop
        asyncio.run(main())
