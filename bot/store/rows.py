"""Jobs as table rows and back: the one mapping between `Job` and the `jobs` columns."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bot.domain import Job, JobState, Owner, Placement
from bot.store import sql
from providers.base import Action, GenerationRequest, TaskResult

#: The `Job` field each column is written from, where the names differ.
_FIELD = {"action_index": "index", "owner_platform": "owner", "owner_id": "owner", "owner_name": "owner",
          **{c: "placement" for c in sql.PLACEMENT}}  # fmt: skip


def changed(before: Job, after: Job) -> tuple[str, ...]:
    """The mutable columns whose values differ between two versions of a job."""
    fields = {name for name in Job.model_fields if getattr(before, name) != getattr(after, name)}
    return tuple(c for c in sql.MUTABLE if _FIELD.get(c, c) in fields)


def _placed(column: str) -> Callable[[Job], Any]:
    attribute = {"chat_platform": "platform"}.get(column, column)
    return lambda job: getattr(job.placement, attribute) if job.placement else None


#: How each column is written from a job.
_ENCODE: dict[str, Callable[[Job], Any]] = {
    **{c: (lambda job, c=c: getattr(job, c)) for c in sql.COLUMNS},  # type: ignore[misc]
    **{c: _placed(c) for c in sql.PLACEMENT},
    "kind": lambda job: job.kind.value,
    "action_index": lambda job: job.index,
    "request": lambda job: job.request.model_dump_json(),
    "state": lambda job: job.state.value,
    "result": lambda job: job.result.model_dump_json() if job.result else None,
    "actions": lambda job: json.dumps(job.actions),
    "provider_data": lambda job: json.dumps(job.provider_data),
    "owner_platform": lambda job: job.owner.platform,
    "owner_id": lambda job: job.owner.user_id,
    "owner_name": lambda job: job.owner.name,
    "tried_providers": lambda job: json.dumps(job.tried_providers),
}


def row_values(job: Job, columns: Sequence[str] = sql.COLUMNS) -> list[Any]:
    """The job's values for `columns` (all of them by default), as stored."""
    return [_ENCODE[column](job) for column in columns]


def placement_of(platform: str | None, chat_id: str, message_id: str | None, thread_id: str | None,
               reply_to: str | None) -> Placement | None:
    if not platform:
        return None
    return Placement(platform=platform, chat_id=chat_id, message_id=message_id, thread_id=thread_id,
                     reply_to=reply_to)


def from_row(row: Sequence[Any]) -> Job:
    r = dict(zip(sql.COLUMNS, row, strict=True))
    placement = placement_of(*(r[c] for c in sql.PLACEMENT))
    return Job(
        id=r["id"],
        kind=Action(r["kind"]),
        parent_id=r["parent_id"],
        index=r["action_index"],
        provider=r["provider"],
        provider_task_id=r["provider_task_id"],
        request=GenerationRequest.model_validate_json(r["request"]),
        state=JobState(r["state"]),
        progress=r["progress"],
        preview_url=r["preview_url"],
        result=TaskResult.model_validate_json(r["result"]) if r["result"] else None,
        actions=json.loads(r["actions"]),
        provider_data=json.loads(r["provider_data"]),
        error=r["error"],
        owner=Owner(platform=r["owner_platform"], user_id=r["owner_id"], name=r["owner_name"]),
        placement=placement,
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        deadline=r["deadline"],
        next_poll_at=r["next_poll_at"],
        poll_failures=r["poll_failures"],
        submit_attempts=r["submit_attempts"],
        tried_providers=json.loads(r["tried_providers"]),
        submit_key=r["submit_key"],
        submit_started=r["submit_started"],
        claimed_until=r["claimed_until"],
        origin=r["origin"],
        locale=r["locale"],
    )
