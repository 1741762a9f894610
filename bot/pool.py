"""The configured providers, built once, with the bot's runtime view of each (paused when busy)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from bot.config import AppConfig
from bot.errors import UnknownProvider
from bot.i18n import t
from providers import PROVIDERS
from providers.base import Provider, ProviderConfig

#: Builds the adapter for one provider entry, given the shared HTTP client. The composition root takes
#: one, so tests and benchmarks can inject their own (e.g. the local simulator on a fake clock).
ProviderFactory = Callable[[ProviderConfig, httpx.AsyncClient], Provider]


def build_provider(entry: ProviderConfig, client: httpx.AsyncClient) -> Provider:
    """The registry's adapter for `entry.type` (the default `ProviderFactory`)."""
    return PROVIDERS[entry.type](entry, client)


class ProviderPool:
    def __init__(self, providers: dict[str, Provider]) -> None:
        self._providers = providers
        self._paused_until: dict[str, float] = {}
        self._held: set[str] = set()  # paused by an admin until they resume it
        self.last_success: dict[str, float] = {}

    @classmethod
    def from_config(
        cls, config: AppConfig, client: httpx.AsyncClient, make: ProviderFactory = build_provider
    ) -> ProviderPool:
        return cls({entry.name: make(entry, client) for entry in config.providers})

    async def start(self) -> None:
        for provider in self._providers.values():
            await provider.start()

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()

    @property
    def names(self) -> list[str]:
        return list(self._providers)

    def get(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            raise UnknownProvider(t(
                "There is no provider called '{name}'. Available: {providers}.", name=name,
                providers=", ".join(self._providers),
            )) from None

    def config(self, name: str) -> ProviderConfig:
        return self.get(name).config

    def pause(self, name: str, until: float) -> None:
        self._paused_until[name] = max(until, self._paused_until.get(name, 0.0))

    def paused(self, name: str, now: float) -> bool:
        return name in self._held or self._paused_until.get(name, 0.0) > now

    def rate_limited(self, name: str, now: float) -> bool:
        """The provider asked to wait (a Retry-After from any of its endpoints) and the time is not up."""
        return self._paused_until.get(name, 0.0) > now

    def hold(self, name: str) -> None:
        """An admin's pause: the poller hands the runner no new job for `name` until `release`."""
        self.get(name)
        self._held.add(name)

    def release(self, name: str) -> None:
        self.get(name)
        self._held.discard(name)

    def held(self, name: str) -> bool:
        return name in self._held

    def pauses(self) -> dict[str, float]:
        """Each provider's Retry-After pause: until when (past ones included, for the metrics)."""
        return dict(self._paused_until)

    def resume_at(self, name: str) -> float | None:
        return self._paused_until.get(name)

    def fallback_chain(self, origin: str) -> list[str]:
        """The provider a command was sent to, then its configured fallbacks, in order."""
        return [origin, *self.config(origin).fallbacks]
