"""Shared plumbing for loopback fake servers: start/stop on 127.0.0.1 and a command-line entry point.

A fake subclasses `FakeServer`, registers its routes in `routes()`, and keeps its state on itself.
Tests use `async with Fake() as fake:` and read `fake.base_url`; `python -m tests.fakes.<name> --port P`
serves the same fake until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any, Self

from aiohttp import web


class FakeServer:
    """A stateful aiohttp app bound to 127.0.0.1 on an ephemeral (or given) port."""

    def __init__(self) -> None:
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.add_routes(self.routes())
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request received

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.requests.append((request.method, request.path))
            response: web.StreamResponse = await handler(request)
            return response

        self.app.middlewares.append(record)

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError("each fake lists its routes")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


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
