"""Service + poller + store end to end on the local provider, with an injected clock."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from bot.access import Caller
from bot.app import build_app, running
from bot.config import AppConfig, MediaConfig, PollingConfig, parse_config
from bot.domain import PICK_PROMPT, Job, JobState
from bot.errors import BadImage, InvalidPrompt, JobNotFinished, UnknownJob, UnknownProvider, UnsupportedAction
from providers.base import GRID_ACTIONS, UPSCALE_FOLLOWUPS, Action, offer_key
from providers.errors import ErrorKind
from tests.core.conftest import OWNER, Harness, build, image_input, local, png, size_of


async def test_imagine_goes_through_every_state_and_gives_a_grid(tmp_path: Path,
                                                                 database: Path | str) -> None:
    async with build(tmp_path, [local(duration=10.0)], database=database) as h:
        job = await h.service.imagine(Caller(OWNER), "a lighthouse at dusk --ar 16:9")
        assert job.state is JobState.QUEUED
        done = await h.done(job, step=2.0)
        states = [j.state for j in h.listener.of(job.id)]
        assert states[0] is JobState.QUEUED and JobState.RUNNING in states
        assert states[-1] is JobState.SUCCEEDED and states.count(JobState.SUCCEEDED) == 1
        progress = [j.progress for j in h.listener.of(job.id)]
        assert progress == sorted(progress) and progress[-1] == 100 and len(set(progress)) > 3
        assert any(j.preview_url for j in h.listener.of(job.id))
        files = await h.service.media.files(done)
        assert files.grid is not None
        width, height = size_of(files.grid)
        assert abs(width / height - 16 / 9) < 0.02
        assert len(files.images) == 4 and len(set(files.images)) == 4
        assert [offer_key(a, i) for a, i in done.offers()] == [offer_key(a, i) for a, i in GRID_ACTIONS]


async def test_upscales_variations_and_reroll(h: Harness) -> None:
    grid = await h.imagine("a red fox --seed 7")
    children: list[Job] = []
    for action, index in GRID_ACTIONS:
        child, created = await h.service.act(Caller(OWNER), grid.id, action.value, index)
        assert created and child.parent_id == grid.id and child.provider == grid.provider
        children.append(child)
    done = await h.settle(*(c.id for c in children))
    assert all(job.state is JobState.SUCCEEDED for job in done)
    upscales, variations = done[:4], done[4:]
    images = [(await h.service.media.files(job)).images for job in upscales]
    assert all(len(one) == 1 for one in images) and len({one[0] for one in images}) == 4
    assert all(job.result and job.result.grid_url for job in variations)
    conditional = {Action.REDO_UPSCALE, Action.MAKE_SQUARE}  # an upscaler's image; a non-square one
    offered = {offer_key(a) for a in UPSCALE_FOLLOWUPS if h.service.can("local", a) and a not in conditional}
    assert set(upscales[0].actions) == offered | {"vary_region:0"}  # the web editor's (WEB_FOLLOWUPS)
    assert h.providers["local"].calls["act"] == 9


@pytest.mark.parametrize(
    "action",
    [Action.VARY_SUBTLE, Action.VARY_STRONG, Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE,
     Action.ZOOM_OUT_2X, Action.ZOOM_OUT_1_5X, Action.PAN_LEFT, Action.PAN_UP],
)  # fmt: skip
async def test_follow_ups_of_an_upscale(h: Harness, action: Action) -> None:
    upscale = await h.act(await h.imagine("a red fox --ar 1:1"), Action.UPSCALE.value, 2)
    child = await h.act(upscale, action.value)
    assert child.state is JobState.SUCCEEDED and child.kind is action
    files = await h.service.media.files(child)
    assert files.images and files.images[0] not in (await h.service.media.files(upscale)).images
    width, height = size_of(files.grid or files.images[0])
    if action is Action.PAN_LEFT:
        assert width > height
    elif action is Action.PAN_UP:
        assert height > width
    else:
        assert width == height


async def test_describe_then_pick_a_prompt(h: Harness) -> None:
    described = await h.done(await h.service.describe(Caller(OWNER), image_input(png(90, 30, (20, 40, 220)))))
    assert described.result is not None
    prompts = described.result.prompts
    assert len(prompts) == 4 and len(set(prompts)) == 4 and "blue" in prompts[0]
    picked, created = await h.service.act(Caller(OWNER), described.id, PICK_PROMPT, 3)
    assert created and picked.kind is Action.IMAGINE and picked.parent_id == described.id
    assert picked.request.prompt is not None and picked.request.prompt.full() == prompts[2]
    assert (await h.done(picked)).state is JobState.SUCCEEDED
    with pytest.raises(UnsupportedAction, match="no prompt 5"):
        await h.service.act(Caller(OWNER), described.id, PICK_PROMPT, 5)


@pytest.mark.parametrize("count", [2, 5])
async def test_blend(h: Harness, count: int) -> None:
    images = [image_input(png(40, 40, (50 * i, 20, 200 - 30 * i))) for i in range(count)]
    blended = await h.done(await h.service.blend(Caller(OWNER), images, dimensions="landscape"))
    assert blended.state is JobState.SUCCEEDED
    files = await h.service.media.files(blended)
    assert files.grid is not None and len(set(files.images)) == 4
    width, height = size_of(files.grid)
    assert width > height


async def test_blend_counts_outside_the_range(h: Harness) -> None:
    for count in (1, 6):
        with pytest.raises(BadImage, match=f"got {count}"):
            await h.service.blend(Caller(OWNER), [image_input() for _ in range(count)])


async def test_the_same_button_twice_makes_one_job_and_one_call(h: Harness) -> None:
    grid = await h.imagine()
    first, created = await h.service.act(Caller(OWNER), grid.id, "upscale", 1)
    again, created_again = await h.service.act(Caller(OWNER), grid.id, "upscale", 1)
    assert created and not created_again and again.id == first.id
    await h.done(first)
    after, created_after = await h.service.act(Caller(OWNER), grid.id, "upscale", 1)
    assert not created_after and after.id == first.id and after.state is JobState.SUCCEEDED
    assert h.providers["local"].calls["act"] == 1
    children = [j for j in await h.store.recent(50) if j.parent_id == grid.id]
    assert [c.id for c in children] == [first.id]


async def test_concurrent_presses_make_one_job(h: Harness) -> None:
    grid = await h.imagine()
    presses = await asyncio.gather(*(h.service.act(Caller(OWNER), grid.id, "variation", 2) for _ in range(8)))
    assert len({job.id for job, _ in presses}) == 1 and sum(created for _, created in presses) == 1


async def test_bad_requests_are_refused_with_a_reason(h: Harness) -> None:
    pending = await h.service.imagine(Caller(OWNER), "a fox")
    with pytest.raises(JobNotFinished, match="still queued"):
        await h.service.act(Caller(OWNER), pending.id, "upscale", 1)
    with pytest.raises(UnknownJob, match="nope"):
        await h.service.act(Caller(OWNER), "nope", "upscale", 1)
    with pytest.raises(UnknownJob):
        await h.service.get("zzzzzzzzzz")
    with pytest.raises(UnknownProvider, match=r"'mj'.*local"):
        await h.service.imagine(Caller(OWNER), "a fox", provider="mj")
    with pytest.raises(InvalidPrompt, match="--ar"):
        await h.service.imagine(Caller(OWNER), "a fox --ar wide")
    grid = await h.done(pending)
    with pytest.raises(UnsupportedAction, match="does not offer"):
        await h.service.act(Caller(OWNER), grid.id, Action.ZOOM_OUT_2X.value)  # a grid has no zoom
    with pytest.raises(UnsupportedAction, match="does not offer"):
        await h.service.act(Caller(OWNER), grid.id, Action.VIDEO.value)  # the local provider cannot animate
    upscale = await h.act(grid, "upscale", 1)
    with pytest.raises(UnsupportedAction, match="does not offer"):
        await h.service.act(Caller(OWNER), upscale.id, "upscale", 2)


async def test_actions_on_an_ended_job(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local(fail_word="storm")], database=database) as h:
        failed = await h.imagine("a storm at sea")
        assert failed.state is JobState.FAILED and failed.error and "simulated" in failed.error
        with pytest.raises(UnsupportedAction, match="failed; it has no buttons"):
            await h.service.act(Caller(OWNER), failed.id, "upscale", 1)


async def test_a_provider_that_cannot_do_it(tmp_path: Path) -> None:
    gpt = {"name": "gpt", "type": "gpt_image", "api_key": "k", "base_url": "http://127.0.0.1:9"}
    providers = [gpt, {"name": "local", "type": "local"}]
    config = parse_config(
        {"database": str(tmp_path / "db.sqlite3"), "default_provider": "gpt", "providers": providers}, {}
    )
    async with build_app(config) as app:
        with pytest.raises(UnsupportedAction, match=r"cannot describe images\. Try: local"):
            await app.service.describe(Caller(OWNER), image_input())
        with pytest.raises(UnsupportedAction, match="cannot blend"):
            await app.service.blend(Caller(OWNER), [image_input(), image_input()])
        assert await app.service.recent() == []


async def test_bad_files_for_describe_and_blend(tmp_path: Path, database: Path | str) -> None:
    big = png(120, 120, noise=True)
    async with build(tmp_path, media=MediaConfig(max_download_bytes=len(big) - 1), database=database) as h:
        with pytest.raises(BadImage, match="not an image"):
            await h.service.describe(Caller(OWNER), image_input(b"GIF-ish? no, plain text"))
        with pytest.raises(BadImage, match="Image 2 is not an image"):
            await h.service.blend(Caller(OWNER), [image_input(), image_input(b"%PDF-1.4")])
        with pytest.raises(BadImage, match="limit"):
            await h.service.describe(Caller(OWNER), image_input(big))
        assert await h.service.recent() == []


async def test_an_undecodable_image_is_refused_before_it_becomes_a_job(h: Harness) -> None:
    """The upload check decodes the pixels: a PNG signature over garbage is refused up front, so no job
    is created, charged or sent; other work goes on."""
    with pytest.raises(BadImage, match="could not be decoded"):
        await h.service.describe(Caller(OWNER), image_input(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64))
    fine = await h.service.imagine(Caller(OWNER), "a fox")
    (fine,) = await h.settle(fine.id)
    assert fine.state is JobState.SUCCEEDED
    assert [job.kind.value for job in await h.service.recent()] == ["imagine"]


async def test_concurrency_limit_and_fifo_queue(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local(duration=5.0, max_concurrency=2)], database=database) as h:
        jobs = []
        for i in range(5):
            jobs.append(await h.service.imagine(Caller(OWNER), f"fox number {i}"))
            h.clock.advance(0.01)
        assert [await h.service.queue_position(j) for j in jobs] == [1, 2, 3, 4, 5]
        await h.poller.tick()
        current = [await h.service.get(j.id) for j in jobs]
        assert [j.state for j in current] == [JobState.SUBMITTED] * 2 + [JobState.QUEUED] * 3
        assert [await h.service.queue_position(j) for j in current] == [0, 0, 1, 2, 3]
        started = [j.id for j in current[:2]]
        for _ in range(40):
            h.clock.advance(1.0)
            await h.poller.tick()
            current = [await h.service.get(j.id) for j in jobs]
            assert sum(j.state in (JobState.SUBMITTED, JobState.RUNNING) for j in current) <= 2
            started += [j.id for j in current if j.provider_task_id and j.id not in started]
        assert all(j.state is JobState.SUCCEEDED for j in current)
        assert started == [j.id for j in jobs]  # submitted in the order they were asked


@pytest.mark.parametrize("kind", [ErrorKind.BUSY, ErrorKind.RATE_LIMITED])
async def test_busy_provider_keeps_the_job_queued_until_retry_after(tmp_path: Path, database: Path | str,
                                                                    kind: ErrorKind) -> None:
    config = local(submit_error=kind, submit_error_count=1, error_retry_after=30.0)
    async with build(tmp_path, [config], database=database) as h:
        job = await h.service.imagine(Caller(OWNER), "a fox")
        await h.poller.tick()
        assert (await h.service.get(job.id)).state is JobState.QUEUED
        for _ in range(5):
            h.clock.advance(5.0)
            await h.poller.tick()
        assert (await h.service.get(job.id)).state is JobState.QUEUED
        assert h.providers["local"].calls["submit"] == 1  # retry_after is honoured: no hammering
        assert await h.service.queue_position(job) == 1
        h.clock.advance(6.0)
        assert (await h.done(job)).state is JobState.SUCCEEDED
        assert h.providers["local"].calls["submit"] == 2


AUTH_TEXT = "credentials"


@pytest.mark.parametrize(
    ("kind", "text"),
    [(ErrorKind.AUTH, AUTH_TEXT), (ErrorKind.REJECTED, "simulated rejected"),
     (ErrorKind.QUOTA, "simulated quota"), (ErrorKind.PROTOCOL, "simulated protocol"),
     (ErrorKind.UNAVAILABLE, "simulated unavailable")],
)  # fmt: skip
async def test_errors_at_submit_end_the_job_with_a_safe_message(
    tmp_path: Path, database: Path | str, kind: ErrorKind, text: str
) -> None:
    async with build(tmp_path, [local(submit_error=kind, api_key="sk-secret-777")], database=database) as h:
        job = await h.service.imagine(Caller(OWNER), "a fox")
        done = await h.done(job, step=10.0)
        assert done.state is JobState.FAILED and done.error and text in done.error
        assert "sk-secret-777" not in done.error
        assert h.listener.of(job.id)[-1].state is JobState.FAILED
        calls = h.providers["local"].calls["submit"]
        assert calls == (h.config.polling.max_submit_attempts if kind is ErrorKind.UNAVAILABLE else 1)


async def test_unavailable_is_retried_with_backoff(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local(submit_error=ErrorKind.UNAVAILABLE, submit_error_count=2)],
                     database=database) as h:
        job = await h.service.imagine(Caller(OWNER), "a fox")
        await h.poller.tick()
        waiting = await h.service.get(job.id)
        assert waiting.state is JobState.QUEUED and waiting.submit_attempts == 1
        assert waiting.next_poll_at is not None and waiting.next_poll_at > h.clock.now
        assert (await h.done(job)).state is JobState.SUCCEEDED
        assert h.providers["local"].calls["submit"] == 3


async def test_deadline_times_out_with_a_message(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local(duration=1000.0, job_timeout=120.0)], database=database) as h:
        job = await h.service.imagine(Caller(OWNER), "a slow fox")
        await h.poller.tick()
        h.clock.advance(60.0)
        await h.poller.tick()
        assert (await h.service.get(job.id)).state is JobState.RUNNING
        h.clock.advance(61.0)
        await h.poller.tick()
        ended = await h.service.get(job.id)
        assert (
            ended.state is JobState.TIMED_OUT
            and ended.error == "The job took longer than 2 min and was stopped."
        )
        assert h.listener.of(job.id)[-1].state is JobState.TIMED_OUT
        h.clock.advance(2000.0)
        await h.poller.tick()  # the provider finishing later changes nothing
        assert (await h.service.get(job.id)).state is JobState.TIMED_OUT


async def test_a_job_stuck_in_the_queue_times_out(tmp_path: Path, database: Path | str) -> None:
    stuck = local(submit_error=ErrorKind.BUSY, error_retry_after=10.0, job_timeout=60.0, busy_wait=1000.0)
    async with build(tmp_path, [stuck], database=database) as h:
        job = await h.service.imagine(Caller(OWNER), "a fox")
        ended = await h.done(job, step=10.0)
        assert ended.state is JobState.TIMED_OUT and ended.error and "1 min" in ended.error


@pytest.mark.parametrize("kind", [ErrorKind.QUOTA, ErrorKind.UNAVAILABLE, ErrorKind.BUSY])
async def test_failover_to_a_fallback(tmp_path: Path, database: Path | str, kind: ErrorKind) -> None:
    primary = local("primary", submit_error=kind, fallbacks=["backup"], busy_wait=0.0)
    async with build(tmp_path, [primary, local("backup")], database=database) as h:
        job = await h.service.imagine(Caller(OWNER), "a fox")
        done = await h.done(job)
        assert done.state is JobState.SUCCEEDED
        assert (done.provider, done.tried_providers) == ("backup", ["primary"])
        assert h.providers["backup"].calls["submit"] == 1
        child = await h.act(done, "upscale", 3)
        assert child.state is JobState.SUCCEEDED and child.provider == "backup"
        assert h.providers["primary"].calls["act"] == 0


async def test_actions_stay_on_the_parents_provider(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local("primary", fallbacks=["backup"]), local("backup")],
                     database=database) as h:
        grid = await h.imagine()
        assert grid.provider == "primary"
        h.providers["primary"].settings = h.providers["primary"].settings.model_copy(
            update={"submit_error": ErrorKind.QUOTA}
        )
        child = await h.act(grid, "upscale", 1)
        assert child.state is JobState.FAILED and child.provider == "primary"
        assert child.error and "quota" in child.error
        assert h.providers["backup"].calls["act"] == 0 and h.providers["backup"].calls["submit"] == 0


async def test_no_fallback_left(tmp_path: Path, database: Path | str) -> None:
    both = [
        local("a", submit_error=ErrorKind.QUOTA, fallbacks=["b"]),
        local("b", submit_error=ErrorKind.QUOTA),
    ]
    async with build(tmp_path, both, database=database) as h:
        done = await h.done(await h.service.imagine(Caller(OWNER), "a fox"))
        assert done.state is JobState.FAILED and done.provider == "b" and done.tried_providers == ["a"]


async def test_cancel(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local(duration=100.0)], database=database) as h:
        queued = await h.service.imagine(Caller(OWNER), "a fox")
        cancelled = await h.service.cancel(Caller(OWNER), queued.id)
        assert cancelled.state is JobState.CANCELLED and "Ada" in (cancelled.error or "")
        running = await h.service.imagine(Caller(OWNER), "another fox")
        await h.poller.tick()
        with pytest.raises(UnsupportedAction, match="cannot cancel"):
            await h.service.cancel(Caller(OWNER), running.id)
        with pytest.raises(UnsupportedAction, match="already cancelled"):
            await h.service.cancel(Caller(OWNER), queued.id)
        await h.poller.tick()
        assert h.providers["local"].calls["submit"] == 1


async def test_a_new_poller_resumes_jobs_after_a_restart(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, [local(duration=20.0)], database=database) as h:
        job = await h.service.imagine(Caller(OWNER), "a fox")
        await h.poller.tick()
        h.clock.advance(5.0)
        await h.poller.tick()
        task_id = (await h.service.get(job.id)).provider_task_id
        clock = h.clock
    async with build(tmp_path, [local(duration=20.0)], clock=clock, database=database) as h:
        done = await h.done(job)
        assert done.state is JobState.SUCCEEDED and done.provider_task_id == task_id
        assert h.providers["local"].calls["submit"] == 0
        assert len(await h.store.recent()) == 1


async def test_the_supervised_loop_runs_jobs_on_wall_clock(tmp_path: Path) -> None:
    config = AppConfig(
        database=tmp_path / "db.sqlite3",
        providers=[local(duration=0.05, poll_interval=0.02)],
        polling=PollingConfig(idle_interval=0.05),
    )
    async with build_app(config) as app, running(app):
        job = await app.service.imagine(Caller(OWNER), "a fox")
        for _ in range(200):
            await asyncio.sleep(0.02)
            if (await app.service.get(job.id)).terminal:
                break
        done = await app.service.get(job.id)
        assert done.state is JobState.SUCCEEDED
        child, _ = await app.service.act(Caller(OWNER), job.id, "upscale", 4)
        for _ in range(200):
            await asyncio.sleep(0.02)
            if (await app.service.get(child.id)).terminal:
                break
        assert (await app.service.get(child.id)).state is JobState.SUCCEEDED


def _mean_difference(a: bytes, b: bytes, size: tuple[int, int]) -> float:
    with Image.open(io.BytesIO(a)) as first, Image.open(io.BytesIO(b)) as second:
        diff = ImageChops.difference(first.convert("RGB").resize(size), second.convert("RGB").resize(size))
    return sum(ImageStat.Stat(diff).mean) / 3


async def test_zoom_out_shows_the_parent_image_inside(h: Harness) -> None:
    grid = await h.imagine("a red fox --ar 1:1")
    parent, other = await h.act(grid, "upscale", 1), await h.act(grid, "upscale", 2)
    zoom = await h.act(parent, Action.ZOOM_OUT_2X.value)
    tile = (await h.service.media.files(zoom)).images[0]
    with Image.open(io.BytesIO(tile)) as image:
        w, h_ = image.size
        out = io.BytesIO()
        image.crop((w // 4, h_ // 4, w * 3 // 4, h_ * 3 // 4)).save(out, "PNG")
    centre = out.getvalue()
    (mine,) = (await h.service.media.files(parent)).images
    (theirs,) = (await h.service.media.files(other)).images
    assert _mean_difference(centre, mine, (64, 64)) < _mean_difference(centre, theirs, (64, 64)) / 2


async def test_a_finished_local_job_s_files_survive_a_restart_on_another_port(tmp_path: Path,
                                                                              database: Path | str) -> None:
    async with build(tmp_path, database=database) as h:
        done = await h.imagine("a lighthouse at dusk --ar 16:9")
        before = await h.service.media.files(done)
        old_origin = h.providers["local"].config.base_url
    fresh_cache = MediaConfig(cache_dir=tmp_path / "another-cache")  # nothing on disk: it must download
    async with build(tmp_path, media=fresh_cache, database=database) as h:
        assert h.providers["local"].config.base_url != old_origin
        after = await h.service.media.files(await h.service.get(done.id))
        assert after.grid == before.grid and after.images == before.images
