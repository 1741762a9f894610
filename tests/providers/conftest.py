"""Fixtures of the adapter tests: the shared httpx client, and the fake and adapter of a module's `CASE`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from providers.base import Provider
from tests.providers.contract import AdapterCase, adapter


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
async def fake(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """The test module's `CASE` fake, running on loopback; `CASE.check` looks at it afterwards."""
    case: AdapterCase = request.module.CASE
    async with case.make_fake() as server:
        yield server
        case.check(server)


@pytest.fixture
def provider(request: pytest.FixtureRequest, fake: Any, client: httpx.AsyncClient) -> Provider:
    """The test module's `CASE` adapter, against `fake`."""
    return adapter(request.module.CASE, fake.base_url, client)
