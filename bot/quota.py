"""Quotas and credits: a ledger (in the store) with one row per created job (keyed on the job id, so a retried
or duplicated press is never charged twice), rolling hour/day windows per user and per chat/server,
a concurrent-jobs cap, and automatic refunds when the provider fails or the job times out.

Limits are counted in credits: a job costs `limits.costs[kind]` (else `limits.default_cost`, 1), so
with the defaults a credit is a job. Admins are charged for the record (spend stats) but exempt.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.config import LimitsConfig
from bot.domain import Job, JobState, Owner
from bot.errors import QuotaExceeded, UserError
from bot.i18n import N_, t
from bot.store.ops import Ledger, OpsSettings
from providers.base import Action

HOUR, DAY = 3600.0, 86400.0

#: The limits an admin may change at run time (stored as admin overrides, over the config's values).
LIMIT_KEYS = ("user_per_hour", "user_per_day", "user_concurrent", "chat_per_hour", "chat_per_day")
_REFUND_STATES = (JobState.FAILED, JobState.TIMED_OUT)


# TRANSLATORS: what usage is counted in, put into the usage lines ("3 of 10 jobs this hour")
_UNITS = {"jobs": N_("jobs"), "credits": N_("credits")}
# TRANSLATORS: the window a usage count covers, put into the usage lines ("3 of 10 jobs this hour")
_WHEN = {"hour": N_("this hour"), "day": N_("today")}


def _unit(unit: str) -> str:
    return t(_UNITS[unit]) if unit in _UNITS else unit


def _when(period: str) -> str:
    return t(_WHEN["hour"] if period == "hour" else _WHEN["day"])


def _amount(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def duration(seconds: float) -> str:
    """12 min, 1 h 5 min, 2 h: how long until something frees up (rounded up to the minute)."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 60:
        return t("{minutes} min", minutes=minutes)
    hours, rest = divmod(minutes, 60)
    return t("{hours} h {minutes} min", hours=hours, minutes=rest) if rest else t("{hours} h", hours=hours)


@dataclass(frozen=True)
class Window:
    """Usage in one rolling window: `frees_in` is seconds until the oldest charge in it drops out."""

    period: str  # "hour" or "day"
    used: float
    limit: float | None
    frees_in: float | None

    @property
    def left(self) -> float | None:
        return None if self.limit is None else max(0.0, self.limit - self.used)

    def text(self, unit: str) -> str:
        when, unit = _when(self.period), _unit(unit)
        if self.limit is None:
            return t("{used} {unit} {when} (no limit)", used=_amount(self.used), unit=unit, when=when)
        return t("{used} of {limit} {unit} {when} ({left} left)", used=_amount(self.used),
                 limit=_amount(self.limit), unit=unit, when=when, left=_amount(self.left or 0))


@dataclass(frozen=True)
class Usage:
    """What `/info` shows about the asking user: `lines()` is ready to print on any platform."""

    unit: str  # "jobs" (every job costs 1) or "credits"
    exempt: bool
    user: tuple[Window, Window]  # this hour, today
    chat: tuple[Window, Window] | None  # the chat/server's, when the command came from one
    live: int
    live_limit: int | None

    def lines(self) -> list[str]:
        hour, day = self.user
        if self.exempt:
            return [t("You are an admin here: no limits apply to you.")]
        if self.live_limit is not None:
            running = t("{live} running (at most {most})", live=self.live, most=self.live_limit)
        else:
            running = t("{live} running", live=self.live)
        lines = [t("Your usage: {hour}; {day}; {running}.", hour=hour.text(self.unit),
                   day=day.text(self.unit), running=running)]
        if self.chat is not None and any(w.limit is not None for w in self.chat):
            lines.append(t("This chat: {hour}; {day}.", hour=self.chat[0].text(self.unit),
                           day=self.chat[1].text(self.unit)))
        return lines


def _window(period: str, seconds: float, charges: list[tuple[float, float]], limit: float | None,
            now: float) -> Window:
    frees_in = charges[0][0] + seconds - now if charges else None
    return Window(period, sum(cost for _, cost in charges), limit, frees_in)


def _frees_in(charges: list[tuple[float, float]], limit: float, cost: float, seconds: float, now: float
              ) -> float:
    """Seconds until enough old charges leave the window for one more of `cost` to fit."""
    need = sum(c for _, c in charges) + cost - limit
    freed = 0.0
    for charged_at, amount in charges:
        freed += amount
        if freed >= need:
            return charged_at + seconds - now
    return seconds  # the cost alone is over the limit: it never fits (shown as the whole window)


class Quotas:
    """Checks and charges at submit, refunds on failure. `lock` spans check → insert → charge, so two
    presses at once cannot both pass the last free slot."""

    def __init__(self, config: LimitsConfig, ledger: Ledger, settings: OpsSettings,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self.ledger = ledger
        self._settings = settings
        self._clock = clock
        self.lock = asyncio.Lock()

    @property
    def unit(self) -> str:
        uniform = self._config.default_cost == 1 and all(c == 1 for c in self._config.costs.values())
        return "jobs" if uniform else "credits"

    def cost(self, kind: Action) -> float:
        return self._config.costs.get(kind.value, self._config.default_cost)

    async def limits(self, scope: str | None) -> LimitsConfig:
        """The config's limits with the admins' overrides: everywhere ("*"), then this chat's."""
        update: dict[str, Any] = {}
        for where in ("*", scope) if scope else ("*",):
            for key, value in (await self._settings.all(where)).items():
                if key.startswith("limit:"):
                    update[key.removeprefix("limit:")] = None if value == "none" else float(value)
        if update.get("user_concurrent") is not None:
            update["user_concurrent"] = int(update["user_concurrent"])
        return self._config.model_copy(update=update)

    async def set_limit(self, scope: str, key: str, value: str) -> None:
        """Store an admin's limit: a number, or "none" for unlimited, or "default" to drop the override."""
        if key not in LIMIT_KEYS:
            raise UserError(t("There is no limit '{key}'. Limits: {limits}.", key=key,
                              limits=", ".join(LIMIT_KEYS)))
        text = value.strip().lower()
        if text == "default":
            await self._settings.delete(scope, f"limit:{key}")
            return
        if text not in ("none", "off", "unlimited"):
            try:
                number = float(text)
            except ValueError:
                raise UserError(t("A limit is a number, 'none' or 'default'; not '{value}'.",
                                  value=value)) from None
            if number < 0 or not math.isfinite(number):
                raise UserError(t("A limit must be zero or more."))
        await self._settings.put(scope, f"limit:{key}", "none" if text in ("off", "unlimited") else text)

    async def check(self, owner: Owner, scope: str | None, kind: Action, count: int = 1) -> None:
        """Raise QuotaExceeded, saying when it frees up, if `count` more `kind` jobs are over a limit
        (several: one prompt's permutations or --repeat, refused whole when they don't all fit)."""
        limits, now, cost = await self.limits(scope), self._clock(), self.cost(kind) * count
        if limits.user_concurrent is not None:
            live = await self.ledger.live_jobs(owner)
            if live + count > limits.user_concurrent:
                raise QuotaExceeded(self._too_many_live(live, count, limits.user_concurrent))
        if cost <= 0:
            return
        user = (("hour", HOUR, limits.user_per_hour), ("day", DAY, limits.user_per_day))
        for period, seconds, limit in user:
            if limit is not None:
                charges = await self.ledger.user_charges(owner, now - seconds)
                self._fits(True, charges, limit, (cost, count), period, seconds, now)
        chat = (("hour", HOUR, limits.chat_per_hour), ("day", DAY, limits.chat_per_day))
        for period, seconds, limit in chat if scope is not None else ():
            if limit is not None and scope is not None:
                charges = await self.ledger.scope_charges(scope, now - seconds)
                self._fits(False, charges, limit, (cost, count), period, seconds, now)

    @staticmethod
    def _too_many_live(live: int, count: int, most: int) -> str:
        if count == 1:
            return t("You already have {live} job(s) in progress (at most {most}); wait for one to finish.",
                     live=live, most=most)
        return t("This prompt makes {count} jobs and you have {live} in progress; at most {most} may be "
                 "in progress at once. Nothing was started.", count=count, live=live, most=most)

    def _fits(self, yours: bool, charges: list[tuple[float, float]], limit: float, asked: tuple[float, int],
              period: str, seconds: float, now: float) -> None:
        """`asked`: the cost of what is asked for, and how many jobs that is; `yours`: the person's
        limit (else their chat's)."""
        (cost, count), used = asked, sum(c for _, c in charges)
        if used + cost <= limit + 1e-9:
            return
        when, unit = _when(period), _unit(self.unit)
        wait = duration(_frees_in(charges, limit, cost, seconds, now))
        amounts = {"used": _amount(used), "limit": _amount(limit), "unit": unit, "when": when}
        if yours:
            spent = t("You have used {used} of {limit} {unit} {when}", **amounts)
        else:
            spent = t("This chat has used {used} of {limit} {unit} {when}", **amounts)
        if count == 1:
            raise QuotaExceeded(t("{spent}; the next one frees up in {wait}.", spent=spent, wait=wait))
        if self.unit == "jobs":
            need = t("This prompt makes {count} jobs, charged only as a whole", count=count)
        else:
            need = t("This prompt makes {count} jobs ({cost} {unit}), charged only as a whole", count=count,
                     cost=_amount(cost), unit=unit)
        if cost > limit + 1e-9:
            raise QuotaExceeded(t("{need}: more than the {limit} allowed {when}. Nothing was started.",
                                  need=need, limit=_amount(limit), when=when))
        raise QuotaExceeded(t("{need}: {spent}; enough frees up in {wait}. Nothing was started.", need=need,
                              spent=spent, wait=wait))

    async def charge(self, job: Job, scope: str | None, exempt: bool) -> bool:
        return await self.ledger.charge(job, scope, self.cost(job.kind), exempt, self._clock())

    async def usage(self, owner: Owner, scope: str | None, exempt: bool) -> Usage:
        limits, now = await self.limits(scope), self._clock()
        hour = await self.ledger.user_charges(owner, now - HOUR)
        day = await self.ledger.user_charges(owner, now - DAY)
        user = (_window("hour", HOUR, hour, limits.user_per_hour, now),
                _window("day", DAY, day, limits.user_per_day, now))
        chat = None
        if scope is not None:
            hour = await self.ledger.scope_charges(scope, now - HOUR)
            day = await self.ledger.scope_charges(scope, now - DAY)
            chat = (_window("hour", HOUR, hour, limits.chat_per_hour, now),
                    _window("day", DAY, day, limits.chat_per_day, now))
        live = await self.ledger.live_jobs(owner)
        return Usage(self.unit, exempt, user, chat, live, limits.user_concurrent)

    # -- refunds: a job listener, so every way a job ends (poller, webhook, cancel) is covered ------

    async def job_changed(self, job: Job) -> None:
        if job.state in _REFUND_STATES or (job.state is JobState.CANCELLED and job.provider_task_id is None):
            await self.ledger.refund(job.id, job.state.value, self._clock())
