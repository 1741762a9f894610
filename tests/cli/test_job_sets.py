"""`imagine-bot imagine` with permutations and --repeat: every job watched, reported and written."""

from __future__ import annotations

from pathlib import Path

from bot.errors import ExitCode
from tests.cli.conftest import Cli, records


def test_imagine_makes_watches_and_writes_every_job_of_the_set(run: Cli, tmp_path: Path) -> None:
    code, out, err = run("imagine", "a {red, green} bird --repeat 2")
    assert code == ExitCode.OK, err
    assert "4 jobs from your permutations, each 2 times:\n• a red bird\n• a green bird" in err
    done = [line for line in out.splitlines() if line.endswith(": succeeded on local")]
    assert len(done) == 4
    ids = [line.split()[1] for line in done]
    assert all((tmp_path / "out" / f"{job_id}-grid.png").is_file() for job_id in ids)

    code, out, err = run("imagine", "a {fox, cat}", "--json")
    assert code == ExitCode.OK, err
    assert [record["prompt"] for record in records(out)] == ["a fox", "a cat"]


def test_detach_prints_every_id(run: Cli) -> None:
    code, out, _ = run("imagine", "a kite --r 3", "--detach")
    assert code == ExitCode.OK
    detached = out.split()
    code, out, _ = run("jobs", "--json")
    stored = records(out)
    assert sorted(record["id"] for record in stored) == sorted(detached) and len(detached) == 3
    assert {record["state"] for record in stored} == {"queued"}


def test_a_bad_set_exits_4_and_makes_nothing(run: Cli) -> None:
    code, _, err = run("imagine", "a {red, green bird")
    assert (code, err.strip()) == (
        ExitCode.REFUSED,
        "error: Unbalanced braces: the { at character 3 is never closed with }. "
        "Write \\{ for a literal brace.",
    )
    code, _, err = run("imagine", "a fox --repeat 0")
    assert (code, err.strip()) == (ExitCode.REFUSED, "error: --repeat must be between 1 and 40; got 0.")
    code, out, _ = run("jobs", "--json")
    assert out == ""
