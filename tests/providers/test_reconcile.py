"""Submits whose answer never came: what `providers/_http.py` calls them, and what `reconcile` finds.

The fakes' HANG_AFTER_CREATE fault creates the task and then holds the answer back, so the adapter
times out not knowing the task exists; `reconcile` must then return that very task (adapters that
can look it up) or say it cannot (the others). An attempt that never reached the provider has no task.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from typing import Any

import httpx
import pytest
from aiohttp import web

from providers._http import ProviderHTTP
from providers.base import Action, Provider, ProviderConfig, SubmitAttempt, TaskStatus
from providers.errors import ProviderOutcomeUnknown, ProviderRejected, ProviderUnavailable
from providers.local import LocalConfig, LocalProvider
from tests.fakes._server import HANG_AFTER_CREATE, FakeServer
from tests.fakes.mj_proxy import MjProxyFake
from tests.providers import test_mj_proxy, test_mj_rest
from tests.providers.contract import PROBE_TIMEOUT, AdapterCase, adapter, finish, imagine
from tests.providers.test_contract import CASES

OPENSOURCE_PROXY = AdapterCase(
    type="mj_proxy",
    make_fake=lambda: MjProxyFake(opensource=True),
    make_config=lambda base_url, **kw: test_mj_proxy.make_config(base_url, api_flavor="opensource", **kw),
    check=test_mj_proxy.CASE.check,
)
#: the adapters whose API can be asked whether a submit created a task
RECONCILING = [test_mj_proxy.CASE, OPENSOURCE_PROXY, test_mj_rest.CASE]
PROMPT = "a lighthouse at dusk"


def _ids(case: AdapterCase) -> str:
    flavour = getattr(case.make_config("http://x"), "api_flavor", "")
    return f"{case.type}-{flavour}" if flavour == "opensource" else case.type


def _impatient(case: AdapterCase, base_url: str, client: httpx.AsyncClient) -> Provider:
    """The adapter with a request timeout shorter than a hung answer takes (the fake's faults). Only
    the request meant to time out goes through it: on a loaded machine, so might any other."""
    return adapter(case, base_url, client, **PROBE_TIMEOUT)


def attempt(client_ref: str, started_at: float, prompt: str | None = PROMPT, **fields: Any) -> SubmitAttempt:
    """The attempt the bot records before sending an imagine (or, with `fields`, something else)."""
    values = {"client_ref": client_ref, "kind": Action.IMAGINE, "prompt": prompt, "started_at": started_at}
    return SubmitAttempt(**(values | fields))


# -- transport: what may have arrived is an unknown outcome, what cannot have is not ---------------------


class _Silent(FakeServer):
    """Reads a request, then either never answers or drops the connection without an answer."""

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/hang", self._hang), web.post("/drop", self._drop)]

    async def _hang(self, request: web.Request) -> web.Response:
        await request.read()
        self.hang_after(request)
        return web.json_response({"ok": True})

    async def _drop(self, request: web.Request) -> web.Response:
        await request.read()
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.2)
        return web.json_response({"ok": True})


def _http(client: httpx.AsyncClient, base_url: str) -> ProviderHTTP:
    config = ProviderConfig(name="probe", type="probe", base_url=base_url, **PROBE_TIMEOUT)
    return ProviderHTTP(client, config, {})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there any more: a connect is refused


async def test_connection_refused_is_unavailable_not_unknown(client: httpx.AsyncClient) -> None:
    http = _http(client, f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(ProviderUnavailable) as caught:
        await http.request("POST", "/submit", json_body={"prompt": "x"})
    assert not isinstance(caught.value, ProviderOutcomeUnknown)


async def test_read_timeout_and_a_dropped_answer_are_unknown_outcomes(client: httpx.AsyncClient) -> None:
    async with _Silent() as server:
        http = _http(client, server.base_url)
        with pytest.raises(ProviderOutcomeUnknown, match="did not answer in time"):
            await http.request("POST", "/hang", json_body={"prompt": "x"})
        with pytest.raises(ProviderOutcomeUnknown, match="stopped answering"):
            await http.request("POST", "/drop", json_body={"prompt": "x"})
    assert server.requests == [("POST", "/hang"), ("POST", "/drop")]  # both arrived


# -- every adapter: the unknown outcome, and what reconcile makes of it ---------------------------------


@pytest.mark.parametrize("case", CASES, ids=_ids)
async def test_a_lost_answer_is_an_unknown_outcome_reconcile_finds_where_it_can(case: AdapterCase) -> None:
    async with case.make_fake() as fake, httpx.AsyncClient() as client:
        provider, impatient = adapter(case, fake.base_url, client), _impatient(case, fake.base_url, client)
        await provider.start()
        ref, started = uuid.uuid4().hex, time.time()
        fake.inject(HANG_AFTER_CREATE)
        with pytest.raises(ProviderOutcomeUnknown):
            await impatient.submit(imagine(PROMPT).model_copy(update={"client_ref": ref}))
        [created] = fake.created_ids()  # the provider did create it
        if provider.capabilities.reconcile:
            found = await provider.reconcile(attempt(ref, started))
            assert found is not None and found.task_id == created
        else:  # nothing to ask: the bot fails and refunds the job (or resubmits, if configured)
            with pytest.raises(ProviderRejected):
                await provider.reconcile(attempt(ref, started))
        await provider.aclose()


@pytest.mark.parametrize("case", RECONCILING, ids=_ids)
async def test_reconcile_finds_the_task_among_others_and_follows_it(case: AdapterCase) -> None:
    async with case.make_fake() as fake, httpx.AsyncClient() as client:
        provider = adapter(case, fake.base_url, client)
        started = time.time()
        for n in range(2):  # the same prompt, answered: other jobs of this bot
            await provider.submit(imagine(PROMPT).model_copy(update={"client_ref": f"other-{n}"}))
        fake.inject(HANG_AFTER_CREATE)
        with pytest.raises(ProviderOutcomeUnknown):
            await _impatient(case, fake.base_url, client).submit(
                imagine(PROMPT).model_copy(update={"client_ref": "lost"})
            )
        await provider.submit(imagine(PROMPT).model_copy(update={"client_ref": "after"}))
        lost = fake.created_ids()[2]

        found = await provider.reconcile(attempt("lost", started))
        assert found is not None and found.task_id == lost
        assert found.status in (TaskStatus.SUBMITTED, TaskStatus.RUNNING, TaskStatus.SUCCEEDED)
        done = await finish(provider, found.task_id)  # adopted, it is polled like any other
        assert done.status is TaskStatus.SUCCEEDED and done.result is not None
        case.check(fake)


@pytest.mark.parametrize("case", RECONCILING, ids=_ids)
async def test_an_attempt_that_never_arrived_has_no_task(case: AdapterCase) -> None:
    async with case.make_fake() as fake, httpx.AsyncClient() as client:
        provider = adapter(case, fake.base_url, client)
        started = time.time()
        await provider.submit(imagine(PROMPT).model_copy(update={"client_ref": "sent"}))
        # the process died before this one went out: nothing was created, sending it is safe
        assert await provider.reconcile(attempt("never-sent", started)) is None
        assert len(fake.created_ids()) == 1
        case.check(fake)


async def test_the_local_simulator_says_resubmitting_is_safe() -> None:
    async with httpx.AsyncClient() as client:
        provider = LocalProvider(LocalConfig(name="local", duration=0), client)
        await provider.start()
        try:
            assert provider.capabilities.reconcile
            assert await provider.reconcile(attempt("killed-mid-submit", time.time())) is None
        finally:
            await provider.aclose()
