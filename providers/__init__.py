"""Provider adapters, keyed by the config `type` in one explicit registry."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from providers.base import Provider, ProviderConfig
from providers.local import LocalProvider


class ProviderClass(Protocol):
    """What the registry holds: a class with its config model, built with (config, client)."""

    config_class: type[ProviderConfig]

    def __call__(self, config: Any, client: httpx.AsyncClient) -> Provider: ...


PROVIDERS: dict[str, ProviderClass] = {
    "local": LocalProvider,
}
