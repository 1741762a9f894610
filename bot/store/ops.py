"""The operations tables: the credit ledger, bans and admin overrides, and the usage stats over them.

The rules (what a job costs, when it is refunded, who may ban) live in bot/quota.py, bot/access.py and
bot/admin.py; these classes only keep and read the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain import Job, Owner
from bot.store import sql
from bot.store.engine import Engine


@dataclass(frozen=True)
class Charge:
    cost: float
    refunded_at: float | None
    refund_reason: str | None


@dataclass(frozen=True)
class ProviderStats:
    provider: str
    jobs: int
    succeeded: int
    failed: int  # failed or timed out
    active: int
    refunded: int
    spend: float  # credits charged and not refunded


@dataclass(frozen=True)
class Ban:
    platform: str
    user_id: str
    scope: str
    reason: str
    banned_by: str
    banned_at: float


class Ledger:
    """One row per created job (keyed on its id, so a retried or duplicated press is charged once)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def charge(self, job: Job, scope: str | None, cost: float, exempt: bool, now: float) -> bool:
        """Record the job's charge; False (and nothing changes) when it was charged before."""
        values = (job.id, job.owner.platform, job.owner.user_id, scope, job.provider, job.kind.value,
                  float(cost), int(exempt), now)  # fmt: skip
        return await self._engine.execute(sql.CHARGE, values) == 1

    async def refund(self, job_id: str, reason: str, now: float) -> bool:
        return await self._engine.execute(sql.REFUND, (now, reason, job_id)) == 1

    async def reconcile(self, now: float) -> int:
        """Refund every job that ended refundably while nobody listened (a crash between the two)."""
        return await self._engine.execute(sql.RECONCILE_REFUNDS, (now,))

    async def get(self, job_id: str) -> Charge | None:
        rows = await self._engine.rows(sql.GET_CHARGE, (job_id,))
        return Charge(float(rows[0][0]), rows[0][1], rows[0][2]) if rows else None

    async def user_charges(self, owner: Owner, since: float) -> list[tuple[float, float]]:
        return await self._charges(sql.USER_CHARGES, (owner.platform, owner.user_id, since))

    async def scope_charges(self, scope: str, since: float) -> list[tuple[float, float]]:
        return await self._charges(sql.SCOPE_CHARGES, (scope, since))

    async def live_jobs(self, owner: Owner) -> int:
        rows = await self._engine.rows(sql.LIVE_JOBS, (owner.platform, owner.user_id))
        return int(rows[0][0]) if rows else 0

    async def stats(self, since: float, scope: str | None) -> list[ProviderStats]:
        """Per provider: jobs created since `since` (in `scope`, or everywhere) and what they cost."""
        rows = await self._engine.rows(sql.STATS, (since, scope, scope))
        return [ProviderStats(str(p), int(n), int(ok or 0), int(bad or 0), int(live or 0), int(back or 0),
                              float(spend or 0)) for p, n, ok, bad, live, back, spend in rows]  # fmt: skip

    async def _charges(self, statement: str, params: tuple[object, ...]) -> list[tuple[float, float]]:
        return [(float(t), float(c)) for t, c in await self._engine.rows(statement, params)]


class OpsSettings:
    """Admin-set values (limits, provider holds), by scope ("*" for everywhere, else a chat scope key)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def all(self, scope: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in await self._engine.rows(sql.GET_OPS, (scope,))}

    async def put(self, scope: str, key: str, value: str) -> None:
        await self._engine.execute(sql.PUT_OPS, (scope, key, value))

    async def delete(self, scope: str, key: str) -> None:
        await self._engine.execute(sql.DELETE_OPS, (scope, key))


class BanList:
    """A ban is global (scope "*") or for one chat/server (a scope key)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def ban(self, platform: str, user_id: str, scope: str, reason: str, by: str, now: float) -> None:
        await self._engine.execute(sql.BAN, (platform, user_id, scope, reason, by, now))

    async def unban(self, platform: str, user_id: str, scope: str) -> bool:
        return await self._engine.execute(sql.UNBAN, (platform, user_id, scope)) > 0

    async def banned(self, platform: str, user_id: str, scope: str) -> tuple[str, str] | None:
        """(scope, reason) of a ban that applies to the user in `scope` ("*": none), or None."""
        rows = await self._engine.rows(sql.IS_BANNED, (platform, user_id, scope))
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    async def list(self, scope: str | None = None) -> list[Ban]:
        rows = await self._engine.rows(sql.LIST_BANS, (scope, scope))
        return [Ban(str(p), str(u), str(s), str(r), str(b), float(t)) for p, u, s, r, b, t in rows]
