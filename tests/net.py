"""Loopback networking for tests: a free port, and a round-robin reverse proxy standing in for the load
balancer in front of several workers' webhook ports (as docker-compose.scale.yml's nginx does)."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

import aiohttp
from aiohttp import web

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


def free_port() -> int:
    """A port nothing listens on right now (bound and released: a test's server binds it next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Forwarded:
    """One request the balancer passed on, and the backend that answered it."""

    at: float  # time.time() when the answer came back
    method: str
    path: str
    backend: str
    status: int
    body: bytes  # the request's body


class RoundRobin:
    """Each request goes to the next backend that answers (one that refuses the connection, a dead
    worker, is skipped), as a load balancer with passive health checks does; a path starting with a key
    of `pinned` goes to that backend only. `served` counts requests per backend; `forwarded` lists
    them, oldest first."""

    def __init__(self, backends: Sequence[str], port: int | None = None,
                 pinned: Mapping[str, str] | None = None) -> None:
        self.backends = [b.rstrip("/") for b in backends]
        self.pinned = dict(pinned or {})
        self.port = port or free_port()
        self.served: dict[str, int] = dict.fromkeys(self.backends, 0)
        self.forwarded: list[Forwarded] = []
        self._next = itertools.cycle(range(len(self.backends)))
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RoundRobin:
        self._session = aiohttp.ClientSession()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        pinned = [b for prefix, b in self.pinned.items() if request.path.startswith(prefix)]
        for n in range(len(pinned) or len(self.backends)):
            backend = pinned[n] if pinned else self.backends[next(self._next)]
            self.served.setdefault(backend, 0)
            try:
                async with self._session.request(request.method, backend + request.path_qs, data=body,
                                                 headers=headers, allow_redirects=False) as answer:
                    self.served[backend] += 1
                    answered = await answer.read()
                    self.forwarded.append(Forwarded(time.time(), request.method, request.path, backend,
                                                    answer.status, body))  # fmt: skip
                    return web.Response(status=answer.status, body=answered, content_type=answer.content_type)
            except aiohttp.ClientConnectionError:
                continue
        return web.Response(status=502, text="no backend answered")
