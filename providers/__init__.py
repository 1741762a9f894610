"""Provider adapters, keyed by the config `type` in one explicit registry."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from providers.base import Provider, ProviderConfig
from providers.gpt_image import GptImageProvider
from providers.local import LocalProvider
from providers.midapi import MidapiProvider
from providers.midjourney_api import MidjourneyApiProvider
from providers.mj_proxy import MjProxyProvider
from providers.mj_rest import MjRestProvider
from providers.ohmygpt import OhmygptProvider


class ProviderClass(Protocol):
    """What the registry holds: a class with its config model, built with (config, client)."""

    config_class: type[ProviderConfig]

    def __call__(self, config: Any, client: httpx.AsyncClient) -> Provider: ...


PROVIDERS: dict[str, ProviderClass] = {
    "local": LocalProvider,
    "midapi": MidapiProvider,
    "ohmygpt": OhmygptProvider,
    "midjourney_api": MidjourneyApiProvider,
    "gpt_image": GptImageProvider,
    "mj_rest": MjRestProvider,
    "mj_proxy": MjProxyProvider,
}
