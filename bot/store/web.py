"""The web surface's rows: each sign-in link's one use, the sessions links opened, the signing secret,
and the reads its pages need beyond the job repository's (a chat's jobs, a job's chat, follow-ups,
usage by member). The rules (who may see what, how long a session lives) are bot/web/'s."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain import Job
from bot.store import sql
from bot.store.engine import Engine
from bot.store.rows import from_row

_SECRETS_SCOPE = "web"  # ops_settings scope of the signing secret: never read by limits or pauses


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: who (an owner), where they asked for the link (a chat scope, with the
    frontend's admin verdict there), whether an operator's, and until when. `id` is the sha256 of the
    cookie value: the cookie itself is never stored."""

    id: str
    platform: str
    user_id: str
    name: str
    scope_platform: str | None
    scope: str | None
    chat_admin: bool
    operator: bool
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class MemberUsage:
    platform: str
    user_id: str
    name: str
    jobs: int
    spend: float


@dataclass(frozen=True)
class ChatUsage:
    scope: str  # "telegram:-100…", "discord:<guild>"
    jobs: int
    last_at: float


def _session(row: tuple[object, ...]) -> WebSession:
    sid, platform, user, name, scope_platform, scope, admin, operator, created, expires = row
    return WebSession(str(sid), str(platform), str(user), str(name or ""),
                      None if scope_platform is None else str(scope_platform),
                      None if scope is None else str(scope), bool(admin), bool(operator),
                      float(str(created)), float(str(expires)))  # fmt: skip


class WebStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- sign-in -------------------------------------------------------------------------------------

    async def use_link(self, nonce: str, now: float, expires_at: float) -> bool:
        """Record the one use of a sign-in link; False when it was used before (by any worker)."""
        await self._engine.execute(sql.WEB_LINKS_PRUNE, (now,))
        return await self._engine.execute(sql.WEB_LINK_USE, (nonce, now, expires_at)) == 1

    async def secret(self, candidate: str) -> str:
        """The stored signing secret; `candidate` becomes it when none is stored yet (the first
        worker to start wins, the others read its secret)."""
        await self._engine.execute(sql.OPS_PUT_IF_ABSENT, (_SECRETS_SCOPE, "secret", candidate))
        rows = await self._engine.rows(sql.OPS_GET, (_SECRETS_SCOPE, "secret"))
        return str(rows[0][0])

    # -- sessions ------------------------------------------------------------------------------------

    async def add_session(self, session: WebSession) -> None:
        s = session
        await self._engine.execute(sql.WEB_SESSION_ADD, (
            s.id, s.platform, s.user_id, s.name, s.scope_platform, s.scope, int(s.chat_admin),
            int(s.operator), s.created_at, s.expires_at))  # fmt: skip

    async def session(self, session_id: str, now: float) -> WebSession | None:
        rows = await self._engine.rows(sql.WEB_SESSION_GET, (session_id, now))
        return _session(tuple(rows[0])) if rows else None

    async def sessions(self, now: float) -> list[WebSession]:
        """The sessions alive now, oldest first."""
        return [_session(tuple(row)) for row in await self._engine.rows(sql.WEB_SESSIONS_LIVE, (now,))]

    async def revoke(self, session_id: str, now: float) -> bool:
        return await self._engine.execute(sql.WEB_SESSION_REVOKE, (now, session_id)) > 0

    async def revoke_prefix(self, prefix: str, now: float) -> int:
        """Revoke the live sessions whose id starts with `prefix` (what `web-sessions` lists)."""
        return await self._engine.execute(sql.WEB_SESSION_REVOKE_PREFIX, (now, len(prefix), prefix))

    async def revoke_user(self, platform: str, user_id: str, now: float) -> int:
        return await self._engine.execute(sql.WEB_SESSION_REVOKE_USER, (now, platform, user_id))

    async def prune(self, now: float) -> None:
        await self._engine.execute(sql.WEB_SESSIONS_PRUNE, (now,))

    # -- what the pages read -------------------------------------------------------------------------

    async def scope_jobs(self, scope: str, limit: int = 100) -> list[Job]:
        """The newest jobs counted under a chat's scope key ("telegram:-100…", "discord:<guild>")."""
        return [from_row(row) for row in await self._engine.rows(sql.SCOPE_JOBS, (scope, limit))]

    async def job_scope(self, job_id: str) -> str | None:
        rows = await self._engine.rows(sql.JOB_SCOPE, (job_id,))
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    async def children(self, job_id: str) -> list[Job]:
        return [from_row(row) for row in await self._engine.rows(sql.JOB_CHILDREN, (job_id,))]

    async def chats(self, limit: int = 500) -> list[ChatUsage]:
        """Every chat jobs were asked in, the most recently busy first (the operator console)."""
        rows = await self._engine.rows(sql.SCOPE_CHATS, (limit,))
        return [ChatUsage(str(scope), int(jobs), float(last)) for scope, jobs, last in rows]

    async def members(self, scope: str, since: float) -> list[MemberUsage]:
        rows = await self._engine.rows(sql.SCOPE_MEMBERS, (scope, since))
        return [MemberUsage(str(p), str(u), str(n or ""), int(c), float(s)) for p, u, n, c, s in rows]
