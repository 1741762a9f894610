"""The contract every adapter is held to: one table of faults, one expected error class each.

Each adapter's test module exposes an `AdapterCase` as `CASE` (see `CASES` in test_contract.py); its
fake implements `inject(fault, times=1)` so the next `times` submit requests fail with that fault,
the way that provider's API documents it. The `fake` and `provider` fixtures of conftest.py run the
module's `CASE`; the helpers below are what every adapter test module builds its requests with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import SecretStr

from providers import PROVIDERS
from providers.base import (
    Action,
    GenerationRequest,
    ParentTask,
    PromptParams,
    Provider,
    ProviderConfig,
    TaskSnapshot,
    TaskStatus,
)
from providers.errors import (
    ProviderAuthError,
    ProviderBusy,
    ProviderError,
    ProviderProtocolError,
    ProviderQuotaExceeded,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from tests.fakes._server import FakeServer

#: fault name -> the error class every adapter must raise for it
FAULTS: dict[str, type[ProviderError]] = {
    "auth": ProviderAuthError,  # 401 / 403
    "quota": ProviderQuotaExceeded,  # 402, 1001, "insufficient credits"
    "busy": ProviderBusy,  # 1002, queue full (23), concurrency limit
    "rate_limited": ProviderRateLimited,  # 429 with retry-after
    "unavailable": ProviderUnavailable,  # 5xx / maintenance (455)
    "timeout": ProviderUnavailable,  # the fake answers later than request_timeout
    "malformed": ProviderProtocolError,  # 200 with a body that is not the documented shape
    "rejected": ProviderRejected,  # the provider refuses the prompt (banned word, validation)
}


class InjectableFake(Protocol):
    base_url: str

    def inject(self, fault: str, times: int = 1) -> None: ...


KEY = "test-key"
#: the offers of a finished grid from an adapter that can do every U, V and reroll
GRID_OFFERS = {f"upscale:{i}" for i in range(1, 5)} | {f"variation:{i}" for i in range(1, 5)} | {"reroll:0"}
_Config = TypeVar("_Config", bound=ProviderConfig)


def _no_check(fake: Any) -> None:
    return None


@dataclass(frozen=True)
class AdapterCase:
    """How to run one adapter against its fake."""

    type: str  # the registry key
    make_fake: Callable[[], FakeServer]
    make_config: Callable[..., ProviderConfig]  # (base_url, **overrides) -> config
    check: Callable[[Any], None] = _no_check  # run on the fake after each test that used the fixture


def adapter_config(
    kind: type[_Config], name: str, base_url: str, key: str = KEY, **overrides: Any
) -> _Config:
    """A test entry for `kind`: named `name`, at `base_url`, with `key`.

    The request timeout is generous so a loaded machine never turns a slow answer into a fault; the
    tests of the timeout fault pass `**PROBE_TIMEOUT`, shorter than the fakes' delayed answer."""
    values: dict[str, Any] = {"name": name, "base_url": base_url, "api_key": SecretStr(key)}
    return kind(**(values | {"request_timeout": 5.0} | overrides))


#: the request timeout of a test that makes a fake answer too late (the fakes wait 0.45-0.7 s)
PROBE_TIMEOUT: dict[str, Any] = {"request_timeout": 0.3}


def adapter(case: AdapterCase, base_url: str, client: httpx.AsyncClient, **overrides: Any) -> Provider:
    """The adapter of `case`, built from the registry, against the fake at `base_url`."""
    return PROVIDERS[case.type](case.make_config(base_url, **overrides), client)


def imagine(text: str = "a lighthouse at dusk", **flags: Any) -> GenerationRequest:
    return GenerationRequest(prompt=PromptParams(text=text, **flags))


async def finish(
    provider: Provider,
    task_id: str,
    seen: list[TaskSnapshot] | None = None,
    *,
    tries: int = 200,
    pause: float = 0.02,
) -> TaskSnapshot:
    """Poll `task_id` until it is no longer submitted or running (each snapshot goes to `seen`)."""
    for _ in range(tries):
        [snapshot] = await provider.fetch([task_id])
        if seen is not None:
            seen.append(snapshot)
        if snapshot.status not in (TaskStatus.SUBMITTED, TaskStatus.RUNNING):
            return snapshot
        await asyncio.sleep(pause)
    raise AssertionError(f"task {task_id} did not finish")


def parent_of(
    snapshot: TaskSnapshot, request: GenerationRequest | None = None, kind: Action = Action.IMAGINE
) -> ParentTask:
    """The job `snapshot` reported, as the parent of a button press."""
    return ParentTask(
        task_id=snapshot.task_id,
        kind=kind,
        request=request or GenerationRequest(),
        result=snapshot.result,
        actions=snapshot.actions,
        extra=snapshot.extra,
    )
