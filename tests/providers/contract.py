"""The contract every adapter is held to: one table of faults, one expected error class each.

Each adapter's test package exposes an `AdapterCase` (see `CASES` in test_contract.py); its fake
implements `inject(fault, times=1)` so the next `times` submit requests fail with that fault, the
way that provider's API documents it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from providers.base import ProviderConfig
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


@dataclass(frozen=True)
class AdapterCase:
    """How to run one adapter against its fake."""

    type: str  # the registry key
    make_fake: Callable[[], FakeServer]
    make_config: Callable[[str], ProviderConfig]  # base_url -> config with request_timeout <= 0.5 s
