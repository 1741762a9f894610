"""Operations tests on real parts: the app of tests/harness.py (built by bot.app.build_app), with its
quotas, access, admin, metrics and health at hand."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.access import Caller
from bot.admin import AdminService
from bot.config import AppConfig, PollingConfig
from bot.domain import Job, Owner
from bot.metrics import Health, Metrics
from providers.local import LocalConfig
from tests.harness import FakeClock, Wired, wire

ADA = Owner(platform="telegram", user_id="101", name="Ada")
BOB = Owner(platform="telegram", user_id="202", name="Bob")
GROUP = "-1001"  # a Telegram group id


@dataclass
class Ops(Wired):
    admin: AdminService
    metrics: Metrics
    health: Health

    async def imagine(self, owner: Owner = ADA, prompt: str = "a lighthouse at dusk", *, scope: str = GROUP,
                      admin: bool = False, **kw: Any) -> Job:
        """`owner` imagines in the group `scope` (`admin`: as one of its admins) and waits for the end."""
        job = await self.service.imagine(self.caller(owner, scope=scope, chat_admin=admin), prompt, **kw)
        (done,) = await self.settle(job.id)
        return done

    def caller(self, owner: Owner = ADA, *, chat_admin: bool = False, scope: str | None = GROUP) -> Caller:
        return Caller(owner, scope=scope, chat_admin=chat_admin)


def local(name: str = "local", **settings: Any) -> LocalConfig:
    """Instant by default, small grids, 1 s polls."""
    return LocalConfig(name=name, **{"duration": 0.0, "grid_size": 128, "poll_interval": 1.0, **settings})


@contextlib.asynccontextmanager
async def build(tmp_path: Path, providers: Iterable[LocalConfig] = (), database: Path | str | None = None,
                **sections: Any) -> AsyncIterator[Ops]:
    configs = list(providers) or [local()]
    clock = FakeClock()
    config = AppConfig.model_validate({
        "database": database or tmp_path / "ops.sqlite3", "default_provider": configs[0].name,
        "providers": configs,
        "polling": PollingConfig(backoff_base=1.0, backoff_max=4.0, max_submit_attempts=2), **sections,
    })  # fmt: skip
    async with wire(config, clock) as wired:
        yield Ops(**wired.parts(), admin=wired.app.admin, metrics=wired.app.metrics, health=wired.app.health)


@pytest.fixture
async def ops(tmp_path: Path) -> AsyncIterator[Ops]:
    async with build(tmp_path) as built:
        yield built
