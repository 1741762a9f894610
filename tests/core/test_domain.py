"""Job states, the snapshot merge, and the button payload."""

from __future__ import annotations

import itertools

import pytest

from bot.domain import (
    PICK_PROMPT,
    TERMINAL,
    TRANSITIONS,
    ActionRef,
    Job,
    JobState,
    Owner,
    action_name,
    can_transition,
    merge_snapshot,
    new_job_id,
    parse_action_name,
)
from providers.base import Action, GenerationRequest, PromptParams, TaskResult, TaskSnapshot, TaskStatus

ORDER = list(JobState)


def job(state: JobState = JobState.SUBMITTED, progress: int = 0) -> Job:
    return Job(
        id="abcdefgh23",
        kind=Action.IMAGINE,
        provider="local",
        provider_task_id="t1",
        request=GenerationRequest(prompt=PromptParams(text="x")),
        state=state,
        progress=progress,
        owner=Owner(platform="cli", user_id="u"),
        created_at=1.0,
        updated_at=1.0,
        deadline=100.0,
        next_poll_at=5.0,
    )


def snap(status: TaskStatus, progress: int | None = None, **kw: object) -> TaskSnapshot:
    return TaskSnapshot(task_id="t1", status=status, progress=progress, **kw)  # type: ignore[arg-type]


def test_every_state_has_a_row_and_terminal_states_have_no_moves() -> None:
    assert set(TRANSITIONS) == set(JobState)
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
        assert state.terminal
    assert {s for s in JobState if not s.terminal} == {
        JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED, JobState.RUNNING}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(JobState, JobState)))
def test_no_transition_moves_backwards_or_leaves_an_end(old: JobState, new: JobState) -> None:
    """The one move back: a claimed submit known not to have reached the provider is released."""
    if can_transition(old, new) and (old, new) != (JobState.SUBMITTING, JobState.QUEUED):
        assert ORDER.index(new) > ORDER.index(old)
        assert not old.terminal
    if old.terminal or new == old:
        assert not can_transition(old, new)


def test_the_forward_path_is_allowed() -> None:
    path = [JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING, JobState.SUCCEEDED]
    assert all(can_transition(a, b) for a, b in itertools.pairwise(path))
    assert all(can_transition(JobState.RUNNING, end) for end in TERMINAL)
    assert can_transition(JobState.QUEUED, JobState.TIMED_OUT)


def test_task_statuses_map_to_job_states() -> None:
    assert [JobState.from_task(s) for s in TaskStatus] == [
        JobState.SUBMITTED, JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED,
    ]  # fmt: skip


def test_merge_moves_forward_and_is_idempotent() -> None:
    running = merge_snapshot(job(), snap(TaskStatus.RUNNING, 30), now=9.0)
    assert running is not None
    assert (running.state, running.progress, running.updated_at) == (JobState.RUNNING, 30, 9.0)
    assert merge_snapshot(running, snap(TaskStatus.RUNNING, 30), now=10.0) is None


def test_merge_ignores_regressing_and_out_of_order_reports() -> None:
    running = job(JobState.RUNNING, 60)
    assert merge_snapshot(running, snap(TaskStatus.SUBMITTED, 0), now=9.0) is None
    assert merge_snapshot(running, snap(TaskStatus.RUNNING, 40), now=9.0) is None
    late_submitted = merge_snapshot(running, snap(TaskStatus.SUBMITTED, 70), now=9.0)
    assert late_submitted is not None  # progress is news even in a stale state
    assert (late_submitted.state, late_submitted.progress) == (JobState.RUNNING, 70)


def test_progress_never_decreases_across_a_shuffled_stream() -> None:
    current = job()
    seen = [current.progress]
    for progress in (10, 50, 20, 80, 79, 5, 90):
        current = merge_snapshot(current, snap(TaskStatus.RUNNING, progress), now=9.0) or current
        seen.append(current.progress)
    assert seen == sorted(seen)
    assert current.progress == 90


def test_success_sets_result_offers_and_stops_polling() -> None:
    result = TaskResult(grid_url="http://x/grid.png")
    done = merge_snapshot(
        job(JobState.RUNNING, 40),
        snap(TaskStatus.SUCCEEDED, None, result=result, actions={"upscale:1": ""}),
        9.0,
    )
    assert done is not None
    assert (done.state, done.progress, done.next_poll_at) == (JobState.SUCCEEDED, 100, None)
    assert done.result == result and done.actions == {"upscale:1": ""}


def test_a_terminal_job_never_changes() -> None:
    for end in TERMINAL:
        ended = job(end, 100)
        for status in TaskStatus:
            assert merge_snapshot(ended, snap(status, 100, error="late"), now=9.0) is None


def test_failure_without_a_reason_gets_a_safe_message() -> None:
    failed = merge_snapshot(job(JobState.RUNNING), snap(TaskStatus.FAILED), now=9.0)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.error and "could not generate" in failed.error


def test_preview_kept_while_running_only() -> None:
    running = merge_snapshot(job(), snap(TaskStatus.RUNNING, 30, preview_url="http://x/p.jpg"), 9.0)
    assert running is not None and running.preview_url == "http://x/p.jpg"
    done = merge_snapshot(running, snap(TaskStatus.SUCCEEDED, 100, preview_url="http://x/q.jpg"), 9.0)
    assert done is not None and done.preview_url == "http://x/p.jpg"


# -- ActionRef ------------------------------------------------------------------------------------

LONGEST_ID = "z" * 16  # the longest job id the payload grammar accepts
ALL_ACTIONS = [a.value for a in Action] + [PICK_PROMPT]


@pytest.mark.parametrize("action", ALL_ACTIONS)
@pytest.mark.parametrize("index", [0, 4, 9])
def test_pack_unpack_round_trip_within_platform_limits(action: str, index: int) -> None:
    ref = ActionRef(action, index, LONGEST_ID)
    packed = ref.pack()
    assert len(packed.encode("utf-8")) <= 64  # Telegram callback_data
    assert len(packed) <= 100  # Discord custom_id
    assert ActionRef.unpack(packed) == ref


def test_every_action_has_a_distinct_code() -> None:
    packed = {ActionRef(a, 1, "abc").pack().split(":")[1] for a in ALL_ACTIONS}
    assert len(packed) == len(ALL_ACTIONS)


def test_generated_ids_fit_the_payload_grammar() -> None:
    ids = {new_job_id() for _ in range(200)}
    assert len(ids) == 200
    for job_id in ids:
        assert ActionRef.unpack(ActionRef("upscale", 1, job_id).pack()) == ActionRef("upscale", 1, job_id)


@pytest.mark.parametrize(
    "garbage",
    [
        "", "ib:", "ib:u:1:", "ib:zz:1:abc", "ib:u:12:abc", "ib:u:x:abc", "ib:u:1:ABC", "ib:u:1:abc-d",
        "ib:u:1:" + "a" * 17, "xx:u:1:abc", "ib:u:1:abc\n", " ib:u:1:abc", "ib:u:1:abc:extra",
        "ib:u:١:abc", "persistent_view:abc", "ib:u:1:ab\u00e9",
    ],
)  # fmt: skip
def test_unpack_of_anything_else_is_none(garbage: str) -> None:
    assert ActionRef.unpack(garbage) is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("U2", ("upscale", 2)), ("v3", ("variation", 3)), ("P1", ("pick", 1)), ("reroll", ("reroll", 0)),
     ("vary-strong", ("vary_strong", 0)), ("zoom-2x", ("zoom_out_2x", 0)), ("pan-left", ("pan_left", 0))],
)  # fmt: skip
def test_cli_action_names_round_trip(text: str, parsed: tuple[str, int]) -> None:
    assert parse_action_name(text) == parsed
    assert parse_action_name(action_name(*parsed)) == parsed


@pytest.mark.parametrize("text", ["U5", "U0", "X1", "zoom", ""])
def test_unknown_cli_action_names(text: str) -> None:
    assert parse_action_name(text) is None
