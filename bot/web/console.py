"""The operator console: every chat (with its job counts, linked to its page), each provider's health
(state, last success, API error rate from the metrics), pause/resume (the same AdminService calls as
`/admin pause|resume`) and the live queue per provider (queued and running counts, the oldest waiting
jobs; the page polls /web/operator/queue).

Operators only: a session from `imagine-bot web-link --operator` or an operator's /web. Anyone else
gets "not found", as for anything else that is not theirs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.errors import NotAllowed, UserError
from bot.i18n import t
from bot.metrics import Metrics
from bot.presentation import provider_state
from bot.store.web import WebSession
from bot.web.auth import session_caller
from bot.web.site import Site

OLDEST = 5  # waiting jobs shown per provider


def error_rates(metrics: Metrics | None) -> dict[str, tuple[int, int]]:
    """Per provider: (API calls, failed calls) since the start, from the metrics' counters."""
    if metrics is None:
        return {}
    rates: dict[str, tuple[int, int]] = {}
    for family in metrics.requests.collect():
        for sample in family.samples:
            if sample.name.endswith("_count"):
                calls, errors = rates.get(sample.labels["provider"], (0, 0))
                rates[sample.labels["provider"]] = (calls + int(sample.value), errors)
    for family in metrics.errors.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                calls, errors = rates.get(sample.labels["provider"], (0, 0))
                rates[sample.labels["provider"]] = (calls, errors + int(sample.value))
    return rates


def _utc(timestamp: float | None) -> str:
    if not timestamp:
        return t("never")
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class Console:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.parts = site.parts

    async def _operator(self, request: web.Request) -> WebSession:
        session = await self.site.require(request)
        if not session.operator:
            raise self.site.not_found(request)
        return session

    async def providers(self) -> list[dict[str, Any]]:
        now = time.time()
        rates = error_rates(self.parts.metrics)
        waiting: dict[str, list[dict[str, Any]]] = {}
        for job in await self.parts.service.queued_jobs(per_provider=OLDEST):
            owner = job.owner.name or job.owner.user_id
            seconds = max(0, round(self.parts.clock() - job.created_at))
            waiting.setdefault(job.provider, []).append({
                "id": job.id, "kind": job.kind.value, "owner": owner, "waiting": seconds,
                "line": t("{kind} by {owner}, waiting {seconds} s", kind=job.kind.value, owner=owner,
                          seconds=seconds)})  # fmt: skip
        views = []
        for s in await self.parts.service.provider_status():
            calls, errors = rates.get(s.name, (0, 0))
            views.append({
                "name": s.name, "type": s.type, "queued": s.queued, "active": s.active, "held": s.held,
                "state": provider_state(s.held, s.rate_limited_until, now),
                "last_success": _utc(s.last_success), "calls": calls, "errors": errors,
                "error_rate": round(100 * errors / calls, 1) if calls else None,
                "oldest": waiting.get(s.name, []),
            })  # fmt: skip
        return views

    async def page(self, request: web.Request) -> web.Response:
        await self._operator(request)
        return self.site.render(request, "operator.html", {
            "chats": await self.parts.store.chats(), "providers": await self.providers(),
            "message": request.query.get("done", "")})  # fmt: skip

    async def queue(self, request: web.Request) -> web.Response:
        """The providers' live state as JSON, for the console's short polling."""
        await self._operator(request)
        keys = ("queued", "active", "state", "held", "oldest")
        return web.json_response({p["name"]: {k: p[k] for k in keys} for p in await self.providers()})

    async def _hold(self, request: web.Request, pause: bool) -> web.StreamResponse:
        session, _ = await self.site.require_post(request)
        if not session.operator:
            raise self.site.not_found(request)
        name = request.match_info["name"]
        try:
            if pause:
                await self.parts.admin.pause(session_caller(session), name)
            else:
                await self.parts.admin.resume(session_caller(session), name)
        except NotAllowed as exc:
            raise self.site.page_error(request, 403, t("Not allowed"), exc.message) from None
        except UserError:  # an unknown provider
            raise self.site.not_found(request) from None
        done = f"{name} {'paused' if pause else 'resumed'}"
        raise web.HTTPSeeOther(request.app.router["web-operator"].url_for().with_query(done=done))

    async def pause(self, request: web.Request) -> web.StreamResponse:
        return await self._hold(request, True)

    async def resume(self, request: web.Request) -> web.StreamResponse:
        return await self._hold(request, False)


def add_routes(app: web.Application, site: Site) -> None:
    c = Console(site)
    app.router.add_get("/web/operator", c.page, name="web-operator")
    app.router.add_get("/web/operator/queue", c.queue)
    app.router.add_post("/web/operator/providers/{name}/pause", c.pause)
    app.router.add_post("/web/operator/providers/{name}/resume", c.resume)
