"""The workers tables: who shares the database (a heartbeat each) and the leases they hold.

The rules (how long a lease lasts, what a chat's lease means) live in bot/workers.py; this class only
keeps and reads the rows. Every lease statement is one conditional write, so of several workers asking
at once exactly one holds a lease.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bot.store import sql
from bot.store.engine import Engine


@dataclass(frozen=True)
class WorkerRow:
    id: str
    instance: str  # a fresh token per process: two processes under one id tell each other apart
    started_at: float
    seen_at: float
    info: dict[str, Any] = field(default_factory=dict)
    leases: int = 0


class Workers:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def join(self, worker_id: str, instance: str, now: float, info: dict[str, Any]) -> None:
        """Register this process under `worker_id` (taking the id over from an earlier life)."""
        await self._engine.execute(sql.WORKER_JOIN, (worker_id, instance, now, now, json.dumps(info)))

    async def beat(self, worker_id: str, instance: str, now: float, info: dict[str, Any]) -> bool:
        """A heartbeat; False when another process has joined under the same id since."""
        return bool(await self._engine.rows(sql.WORKER_BEAT, (now, json.dumps(info), worker_id, instance)))

    async def leave(self, worker_id: str, instance: str) -> None:
        """Deregister and hand back every lease at once (a clean stop: others take over now)."""
        await self._engine.execute(sql.LEASE_RELEASE_ALL, (worker_id,))
        await self._engine.execute(sql.WORKER_LEAVE, (worker_id, instance))

    async def all(self, now: float) -> list[WorkerRow]:
        counts = {str(holder): int(n) for holder, n in await self._engine.rows(sql.LEASE_COUNTS, (now,))}
        rows = await self._engine.rows(sql.WORKERS)
        return [
            WorkerRow(str(i), str(inst), float(start), float(seen), json.loads(info), counts.get(str(i), 0))
            for i, inst, start, seen, info in rows
        ]

    async def take(self, name: str, holder: str, now: float, until: float) -> bool:
        """Hold lease `name` until `until` if it is free, lapsed or already `holder`'s."""
        return bool(await self._engine.rows(sql.LEASE_TAKE, (name, holder, until, now)))

    async def renew(self, holder: str, now: float, until: float) -> set[str]:
        """Extend every live lease of `holder`; the names it still holds."""
        return {str(row[0]) for row in await self._engine.rows(sql.LEASE_RENEW, (until, holder, now))}

    async def holder(self, name: str, now: float) -> str | None:
        rows = await self._engine.rows(sql.LEASE_HOLDER, (name, now))
        return str(rows[0][0]) if rows else None

    async def unheld_chats(self, holder: str, now: float) -> list[tuple[str, str]]:
        """(platform, chat id) of chats with something to show that no other live worker holds."""
        rows = await self._engine.rows(sql.UNHELD_CHATS, (now, holder, now, holder))
        return [(str(platform), str(chat)) for platform, chat in rows]
