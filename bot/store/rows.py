"""Jobs as table rows and back: the one mapping between `Job` and the `jobs` columns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.domain import Job, JobState, Owner, Placement
from bot.store import sql
from providers.base import Action, GenerationRequest, TaskResult


def row_values(job: Job) -> dict[str, Any]:
    placement = job.placement
    return {
        "id": job.id,
        "kind": job.kind.value,
        "parent_id": job.parent_id,
        "action_index": job.index,
        "provider": job.provider,
        "provider_task_id": job.provider_task_id,
        "request": job.request.model_dump_json(),
        "state": job.state.value,
        "progress": job.progress,
        "preview_url": job.preview_url,
        "result": job.result.model_dump_json() if job.result else None,
        "actions": json.dumps(job.actions),
        "provider_data": json.dumps(job.provider_data),
        "error": job.error,
        "owner_platform": job.owner.platform,
        "owner_id": job.owner.user_id,
        "owner_name": job.owner.name,
        "chat_platform": placement.platform if placement else None,
        "chat_id": placement.chat_id if placement else None,
        "message_id": placement.message_id if placement else None,
        "thread_id": placement.thread_id if placement else None,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "deadline": job.deadline,
        "next_poll_at": job.next_poll_at,
        "poll_failures": job.poll_failures,
        "submit_attempts": job.submit_attempts,
        "tried_providers": json.dumps(job.tried_providers),
        "submit_key": job.submit_key,
        "submit_started": job.submit_started,
        "claimed_until": job.claimed_until,
        "origin": job.origin,
        "reply_to": placement.reply_to if placement else None,
    }


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
    )
