"""Permutations and --repeat through /imagine on Discord: the command's response says what was made,
and each job is a channel message of its own marked "n/size"; a bad set is told privately, nothing made."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.discord_frontend.conftest import Discord, is_final, make_config, run_bot
from tests.fakes.discord_api import DiscordFake


async def test_the_response_says_what_was_made_and_each_job_has_its_message(discord_env: Discord) -> None:
    d = discord_env
    interaction = await d.command("imagine", {"prompt": "a {red, green} bird --repeat 2"})
    cards = await d.fake.wait_for(lambda: len(found := [m for m in d.public() if m.embeds]) == 4 and found)
    for card in cards:
        await d.finished(card)
    assert interaction.response_message_id is not None
    answer = d.fake.message(d.channel, interaction.response_message_id)
    assert answer.content == "4 jobs from your permutations, each 2 times:\n• a red bird\n• a green bird"
    assert answer.embeds == [] and all(card.id > answer.id for card in cards)  # the answer comes first
    titles = sorted(card.embeds[0]["title"] for card in cards)
    assert titles == ["1/4 · a red bird", "2/4 · a red bird", "3/4 · a green bird", "4/4 · a green bird"]
    jobs = [await d.job_of(card) for card in cards]
    assert {job.event for job in jobs} == {f"discord:{interaction.id}"}
    assert len(d.public()) == 5 and all(is_final(card) for card in cards)


async def test_one_job_is_still_the_response_itself(discord_env: Discord) -> None:
    d = discord_env
    message = await d.response(await d.command("imagine", {"prompt": "a {single} bird --r 1"}))
    await d.finished(message)
    assert message.embeds[0]["title"] == "a single bird"
    assert len(d.public()) == 1


@pytest.mark.parametrize(
    ("prompt", "told"),
    [
        ("a red} bird", "Unbalanced braces: the } at character 6 has no { before it."),
        ("a {1, 2, 3} {a, b} bird", "This prompt expands to 6 jobs; the limit is 5."),
        ("a fox --repeat 0", "--repeat must be between 1 and 40; got 0."),
        ("a fox --repeat 41", "--repeat must be between 1 and 40; got 41."),
        ("a {red, green} fox --r 2", "This prompt makes 4 jobs, charged only as a whole: more than "
                                     "the 3 allowed this hour. Nothing was started."),
    ],
)  # fmt: skip
async def test_a_bad_set_is_told_privately_and_nothing_is_made(
    fake: DiscordFake, tmp_path: Path, prompt: str, told: str
) -> None:
    limits = {"max_permutations": 5, "user_per_hour": 3}
    config = make_config(fake, tmp_path / "bot.sqlite3", ops={"limits": limits})
    async with run_bot(config) as bot:
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id))
        d = Discord(fake, config, bot)
        await d.command("imagine", {"prompt": prompt})
        (answer,) = await d.told(lambda text: bool(text))
        assert answer.startswith(told)
        assert d.public() == [] and await bot.app.service.recent(None, 10) == []
    assert fake.violations == [], fake.violations
