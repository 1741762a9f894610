"""One prompt, several jobs (permutations, --repeat) through the service: each job charged, the set
refused whole when it can't all be had, and one set per platform event, even processed twice at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot import presentation
from bot.domain import JobState
from bot.errors import InvalidPrompt, QuotaExceeded, UserError
from tests.ops.conftest import ADA, Ops, build, local

PROMPT = "a {red, green} bird {--ar 1:1, --ar 16:9}"


async def _nothing_made(ops: Ops) -> None:
    assert await ops.service.recent(ADA) == []
    assert await ops.service.quotas.ledger.user_charges(ADA, 0.0) == []
    assert ops.providers["local"].calls["submit"] == 0


async def test_permutations_make_one_charged_job_each(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, database=database) as ops:
        jobs, created = await ops.service.imagine_many(ops.caller(), PROMPT, origin="telegram:7")
        assert created
        assert [job.request.prompt.full() for job in jobs if job.request.prompt] == [
            "a red bird --ar 1:1",
            "a red bird --ar 16:9",
            "a green bird --ar 1:1",
            "a green bird --ar 16:9",
        ]
        assert [job.batch for job in jobs] == [(1, 4), (2, 4), (3, 4), (4, 4)]
        assert {job.event for job in jobs} == {"telegram:7"}
        assert presentation.title(jobs[1]) == "2/4 · a red bird --ar 16:9"
        assert presentation.batch_summary(jobs).startswith(
            "4 jobs from your permutations:\n• a red bird --ar 1:1"
        )
        ended = await ops.settle(*(job.id for job in jobs))
        assert {job.state for job in ended} == {JobState.SUCCEEDED}
        assert len(await ops.service.quotas.ledger.user_charges(ADA, 0.0)) == 4
        assert ops.providers["local"].calls["submit"] == 4


async def test_repeat_multiplies_the_permutations(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, database=database) as ops:
        jobs, _ = await ops.service.imagine_many(ops.caller(), "a {red, green} bird --repeat 3")
        assert [job.request.prompt.text for job in jobs if job.request.prompt] == ["a red bird"] * 3 + [
            "a green bird"
        ] * 3
        assert presentation.batch_summary(jobs).startswith("6 jobs from your permutations, each 3 times:")
        again, _ = await ops.service.imagine_many(ops.caller(), "a fox --r 2 --relax")
        assert [job.request.speed for job in again] == ["relax", "relax"]
        assert presentation.batch_summary(again) == "2 jobs from your prompt (--repeat 2): a fox"
        assert len(await ops.service.recent(ADA)) == 8


@pytest.mark.parametrize(
    ("prompt", "told"),
    [
        (
            "a {1, 2, 3, 4, 5, 6} {a, b, c, d, e, f, g, h} bird",
            "This prompt expands to 48 jobs; the limit is 40.",
        ),
        ("a {red, green} bird --r 30", "This prompt expands to 60 jobs; the limit is 40."),
        ("a {red, green bird", "Unbalanced braces: the { at character 3 is never closed with }."),
        ("a red} bird", "Unbalanced braces: the } at character 6 has no { before it."),
        ("a fox --repeat 0", "--repeat must be between 1 and 40; got 0."),
        ("a fox --repeat 41", "--repeat must be between 1 and 40; got 41."),
    ],
)
async def test_a_bad_set_is_refused_and_nothing_is_made(tmp_path: Path, prompt: str, told: str) -> None:
    async with build(tmp_path) as ops:
        with pytest.raises(InvalidPrompt) as refused:
            await ops.service.imagine_many(ops.caller(), prompt, origin="telegram:1")
        assert refused.value.message.startswith(told)
        await _nothing_made(ops)


async def test_the_caps_come_from_the_config(tmp_path: Path) -> None:
    async with build(tmp_path, limits={"max_permutations": 5, "max_repeat": 3}) as ops:
        with pytest.raises(InvalidPrompt) as refused:
            await ops.service.imagine_many(ops.caller(), "a {red, green, blue} bird --r 2")
        assert refused.value.message == "This prompt expands to 6 jobs; the limit is 5."
        with pytest.raises(InvalidPrompt) as refused:
            await ops.service.imagine_many(ops.caller(), "a fox --r 4")
        assert refused.value.message == "--r must be between 1 and 3 (this bot's limit); got 4."
        with pytest.raises(InvalidPrompt, match="This prompt expands to 6 jobs"):  # admins too
            await ops.service.imagine_many(ops.caller(chat_admin=True), "a {red, green, blue} bird --r 2")
        await _nothing_made(ops)
        jobs, _ = await ops.service.imagine_many(ops.caller(), "a {red, green} bird --r 2")
        assert len(jobs) == 4


async def test_a_quota_that_cant_cover_the_set_refuses_it_whole(tmp_path: Path, database: Path | str) -> None:
    async with build(tmp_path, limits={"user_per_hour": 5}, database=database) as ops:
        await ops.imagine(ADA)
        await ops.imagine(ADA)
        with pytest.raises(QuotaExceeded) as refused:
            await ops.service.imagine_many(ops.caller(), "a {red, green} bird --r 2", origin="telegram:9")
        assert refused.value.message == (
            "This prompt makes 4 jobs, charged only as a whole: You have used 2 of 5 jobs this "
            "hour; enough frees up in 1 h. Nothing was started."
        )
        assert len(await ops.service.recent(ADA)) == 2  # none of the four was stored ...
        assert len(await ops.service.quotas.ledger.user_charges(ADA, 0.0)) == 2  # ... or charged
        assert ops.providers["local"].calls["submit"] == 2
        jobs, _ = await ops.service.imagine_many(
            ops.caller(), "a {red, green, blue} bird", origin="telegram:9"
        )
        assert len(jobs) == 3  # the three that fit
        with pytest.raises(
            QuotaExceeded,
            match=r"^This prompt makes 8 jobs, charged only as a whole: "
            r"more than the 5 allowed this hour\. Nothing was started\.$",
        ):
            await ops.service.imagine_many(ops.caller(), "a fox --r 8")


async def test_a_set_priced_in_credits_names_its_price(tmp_path: Path) -> None:
    async with build(tmp_path, limits={"user_per_day": 10, "costs": {"imagine": 3}}) as ops:
        await ops.imagine(ADA)
        with pytest.raises(QuotaExceeded) as refused:
            await ops.service.imagine_many(ops.caller(), "a fox --r 3")
        assert refused.value.message == (
            "This prompt makes 3 jobs (9 credits), charged only as a whole: You have used 3 of 10 credits "
            "today; enough frees up in 24 h. Nothing was started."
        )
        jobs, _ = await ops.service.imagine_many(ops.caller(), "a fox --r 2")
        assert [(await ops.service.quotas.ledger.get(job.id)) is not None for job in jobs] == [True, True]
        assert (await ops.service.usage(ops.caller())).user[1].used == 9


async def test_the_set_counts_against_jobs_in_progress(tmp_path: Path) -> None:
    async with build(tmp_path, [local(duration=30.0)], limits={"user_concurrent": 3}) as ops:
        await ops.service.imagine(ops.caller(), "slow one")
        with pytest.raises(QuotaExceeded) as refused:
            await ops.service.imagine_many(ops.caller(), "a fox --r 3")
        assert refused.value.message == (
            "This prompt makes 3 jobs and you have 1 in progress; at most 3 may be "
            "in progress at once. Nothing was started."
        )
        assert len(await ops.service.recent(ADA)) == 1


async def test_two_sets_racing_for_the_last_credits_get_them_once(
    tmp_path: Path, database: Path | str
) -> None:
    async with build(tmp_path, limits={"user_per_hour": 5}, database=database) as ops:
        results = await asyncio.gather(
            ops.service.imagine_many(ops.caller(), "a {red, green, blue} fox", origin="telegram:1"),
            ops.service.imagine_many(ops.caller(), "a {red, green, blue} cat", origin="telegram:2"),
            return_exceptions=True,
        )
        made = [result for result in results if isinstance(result, tuple)]
        refused = [result for result in results if isinstance(result, UserError)]
        assert (len(made), len(refused)) == (1, 1)
        assert len(await ops.service.recent(ADA)) == 3
        assert len(await ops.service.quotas.ledger.user_charges(ADA, 0.0)) == 3


async def test_the_same_event_finds_its_set_again(tmp_path: Path, database: Path | str) -> None:
    """A command processed again after a restart (or twice at once) makes its jobs once, charged once."""
    async with build(tmp_path, database=database) as ops:
        first, created = await ops.service.imagine_many(ops.caller(), PROMPT, origin="discord:55")
        again, created_again = await ops.service.imagine_many(ops.caller(), PROMPT, origin="discord:55")
        assert (created, created_again) == (True, False)
        assert [job.id for job in again] == [job.id for job in first]
        both = await asyncio.gather(
            *(ops.service.imagine_many(ops.caller(), "a fox --r 3", origin="discord:56") for _ in range(2))
        )
        assert [job.id for job in both[0][0]] == [job.id for job in both[1][0]]
        assert sorted(created for _, created in both) == [False, True]
        assert len(await ops.service.recent(ADA)) == 7
        assert len(await ops.service.quotas.ledger.user_charges(ADA, 0.0)) == 7


async def test_imagine_alone_makes_one_job(tmp_path: Path) -> None:
    async with build(tmp_path) as ops:
        with pytest.raises(InvalidPrompt, match=r"^This prompt makes 4 jobs \(permutations or --repeat\)"):
            await ops.service.imagine(ops.caller(), PROMPT)
        await _nothing_made(ops)
        job = await ops.service.imagine(ops.caller(), "a {single} bird", origin="telegram:3")
        assert (job.request.prompt and job.request.prompt.text, job.origin, job.batch) == (
            "a single bird",
            "telegram:3",
            None,
        )


async def test_two_workers_processing_the_same_event_make_one_set(
    tmp_path: Path, database: Path | str
) -> None:
    """Two processes on one database (each its own quota lock): the store's unique origins and the one
    transaction per set leave one set, whichever stores it first; the other finds that one."""
    db = database if isinstance(database, str) else tmp_path / "shared.sqlite3"
    async with build(tmp_path / "one", database=db) as one, build(tmp_path / "two", database=db) as two:
        for attempt in range(5):
            results = await asyncio.gather(
                *(
                    ops.service.imagine_many(ops.caller(), PROMPT, origin=f"discord:{attempt}")
                    for ops in (one, two)
                )
            )
            assert [job.id for job in results[0][0]] == [job.id for job in results[1][0]]
            assert sorted(created for _, created in results) == [False, True]
        assert len(await one.service.recent(ADA, limit=50)) == 20
        assert len(await two.service.quotas.ledger.user_charges(ADA, 0.0)) == 20
