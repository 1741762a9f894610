"""QueueBoard: queue positions from the change stream, and which queue moved."""

from __future__ import annotations

from bot.domain import Job, JobState, Owner
from bot.queue_board import QueueBoard
from providers.base import Action, GenerationRequest, PromptParams


def job(job_id: str, created: float, provider: str = "mj", state: JobState = JobState.QUEUED) -> Job:
    return Job(id=job_id, kind=Action.IMAGINE, provider=provider, state=state,
               request=GenerationRequest(prompt=PromptParams(text="a fox")),
               owner=Owner(platform="telegram", user_id="1"), created_at=created, updated_at=created,
               deadline=created + 100)


async def test_positions_follow_the_queue_and_say_which_queue_moved() -> None:
    board = QueueBoard()
    moved: list[str] = []
    board.on_moved(moved.append)
    board.load([job("b", 2.0), job("a", 1.0), job("x", 1.5, provider="other")])
    await board.job_changed(job("c", 3.0))
    assert [board.position(job(i, t)) for i, t in (("a", 1.0), ("b", 2.0), ("c", 3.0))] == [1, 2, 3]
    assert board.position(job("x", 1.5, provider="other")) == 1

    await board.job_changed(job("a", 1.0, state=JobState.SUBMITTING))  # the head leaves: all move up
    assert moved == ["mj"]
    assert board.position(job("b", 2.0)) == 1 and board.position(job("c", 3.0)) == 2
    assert board.position(job("a", 1.0, state=JobState.SUBMITTING)) == 0
    assert board.waiting("mj") == 2

    await board.job_changed(job("c", 3.0))  # the same state again: nothing moved
    await board.job_changed(job("z", 9.0, state=JobState.RUNNING))  # never queued here: nothing moved
    assert moved == ["mj"]

    await board.job_changed(job("c", 3.0, provider="other"))  # failed over to another provider's queue
    assert moved == ["mj", "mj"]
    assert board.position(job("c", 3.0, provider="other")) == 2 and board.waiting("mj") == 1


def test_a_job_not_heard_of_yet_is_at_least_in_line() -> None:
    assert QueueBoard().position(job("new", 1.0)) == 1
