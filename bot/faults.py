"""Fault injection for crash tests: named points inside the windows where a crash could lose or repeat
work, where a test can make the process die (SIGKILL) or stall.

Armed once by the composition root from `$IMAGINE_BOT_FAULTS` (tests only; unset in production, where
`point()` is a dict lookup that finds nothing). The spec is comma-separated `NAME=ACTION[@N]`:

    IMAGINE_BOT_FAULTS="after_reply_sent=kill@3,before_submit=hang"

`kill` sends SIGKILL to this process on the Nth time the point is reached (default the first), `hang`
stalls that caller for good (a request that never ends), `sleep:S` stalls it S seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Every point the code passes, so a misspelt spec is refused instead of silently never firing.
POINTS = frozenset({
    "inbox_committed",  # a platform update is in the inbox, not yet processed
    "job_created",  # the job and its reply intent are stored, no reply sent yet
    "reply_sent",  # the chat has the job's first message, its id is not stored yet
    "submit_claimed",  # a queued job is `submitting`, the request not yet sent
    "submit_sent",  # the provider answered a submit, the task id is not stored yet
    "poll_claimed",  # due polls are claimed (pushed a lease ahead), the status request not sent yet
    "final_stored",  # a job's final state is stored, this process's listeners not told yet
    "final_edited",  # a job's final state is in the chat, not yet recorded as delivered
})  # fmt: skip


@dataclass
class _Fault:
    action: str
    nth: int
    seen: int = 0


_armed: dict[str, _Fault] = {}


def arm(spec: str) -> None:
    """Arm the points of `spec` (see the module docstring); an empty spec disarms everything."""
    _armed.clear()
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, rest = item.partition("=")
        action, _, nth = rest.partition("@")
        if name not in POINTS or not (action in ("kill", "hang") or action.startswith("sleep:")):
            raise ValueError(f"bad fault '{item}': points are {', '.join(sorted(POINTS))}; "
                             "actions kill, hang, sleep:S")
        _armed[name] = _Fault(action, int(nth or 1))


async def point(name: str) -> None:
    """Reached `name`: do what a test armed there, if anything."""
    fault = _armed.get(name)
    if fault is None:
        return
    fault.seen += 1
    if fault.seen != fault.nth and fault.action == "kill":
        return
    if fault.action == "kill":
        log.warning("fault injection: SIGKILL at %s", name)
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault.action == "hang":
        await asyncio.Event().wait()
    else:
        await asyncio.sleep(float(fault.action.removeprefix("sleep:")))
