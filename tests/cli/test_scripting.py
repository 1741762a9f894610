"""What a script relies on: --json (one object per job on stdout, progress as JSON lines on stderr),
--quiet, --detach, --version, the help, one spelling per action, and result files never overwritten."""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import sys
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

from bot.cli_parser import EXIT_CODES
from bot.cli_parser import parser as _parser
from bot.config import WorkersConfig
from bot.domain import ACTION_NAMES, action_name, parse_action_name
from bot.errors import ExitCode
from bot.store import JobStore
from bot.workers import Worker
from tests.bot_process import ROOT, running_bot, stop, telegram_section
from tests.bot_process import write_config as bot_config
from tests.cli.conftest import Cli, cli, records, write_config
from tests.core.conftest import png
from tests.fakes.telegram_api import TelegramFake
from tests.telegram_frontend.conftest import BOT

GRID_ACTIONS = ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4", "reroll"]


def test_json_is_one_object_per_job_on_stdout_and_the_progress_json_lines_on_stderr(
    run: Cli, tmp_path: Path
) -> None:
    code, out, err = run("imagine", "a lighthouse at dusk --ar 16:9", "--json")
    assert code == ExitCode.OK, err
    [grid] = records(out)
    made = grid["id"]
    assert (grid["kind"], grid["state"], grid["progress"]) == ("imagine", "succeeded", 100)
    assert grid["provider"] == "local"
    assert (grid["parent"], grid["error"], grid["tried_providers"]) == (None, None, [])
    assert grid["prompt"] == "a lighthouse at dusk --ar 16:9" and grid["owner"].startswith("cli:")
    assert grid["files"] == [f"out/{made}-grid.png", *(f"out/{made}-{n}.png" for n in range(1, 5))]
    assert all((tmp_path / name).stat().st_size > 0 for name in grid["files"])
    assert grid["actions"] == GRID_ACTIONS and grid["prompts"] == []
    assert datetime.fromisoformat(grid["created_at"]).tzinfo is not None
    progress = records(err)  # every stderr line is the job as JSON, at each change
    assert {line["id"] for line in progress} == {made} and progress[-1]["state"] == "succeeded"
    assert all("files" not in line for line in progress)

    code, out, err = run("--json", "act", made, "U2")  # --json before the command works too
    assert code == ExitCode.OK, err
    [upscale] = records(out)
    assert (upscale["kind"], upscale["parent"]) == ("U2", made)
    assert upscale["files"] == [f"out/{upscale['id']}-U2.png"]

    code, out, err = run("jobs", "--json")
    listed = records(out)
    assert code == ExitCode.OK and err == ""
    assert [(j["id"], j["kind"], j["state"]) for j in listed] == [
        (upscale["id"], "U2", "succeeded"), (made, "imagine", "succeeded")]  # fmt: skip
    assert all("files" not in j and j["created_at"] and j["tried_providers"] == [] for j in listed)


def test_quiet_leaves_stderr_empty_and_the_results_on_stdout(run: Cli) -> None:
    code, out, err = run("imagine", "a fox in the snow", "--quiet")
    assert code == ExitCode.OK and err == ""
    assert re.search(r"^job \w+ \(imagine\): succeeded on local$", out, re.MULTILINE), out
    assert len(re.findall(r"^wrote out/\w+-(grid|[1-4])\.png$", out, re.MULTILINE)) == 5
    code, out, err = run("-q", "imagine", "a fox --ar wide")
    assert code == ExitCode.REFUSED and out == ""
    assert err == "error: --ar takes a ratio like 16:9 (whole numbers), not 'wide'.\n"  # errors still


def test_human_output_progress_on_stderr_results_and_actions_on_stdout(run: Cli) -> None:
    code, out, err = run("imagine", "a lighthouse")
    made = out.split()[1]
    assert code == ExitCode.OK
    assert err.splitlines()[0] == f"job {made} (imagine) on local"
    assert err.splitlines()[-1] == f"job {made}: 100% succeeded"
    assert out.splitlines()[0] == f"job {made} (imagine): succeeded on local"
    # space-separated: a shell does not brace-expand it into something else
    assert out.splitlines()[-1] == f"actions: {' '.join(GRID_ACTIONS)} (imagine-bot act {made} U1)"


def test_every_action_has_one_spelling_and_takes_the_others_as_aliases(run: Cli, tmp_path: Path) -> None:
    code, out, _ = run("imagine", "a harbour", "--json")
    grid = records(out)[0]["id"]
    code, out, _ = run("act", grid, "u2", "--json")
    upscale = records(out)[0]
    assert code == ExitCode.OK and upscale["kind"] == "U2"
    for name in upscale["actions"]:  # what it offers is printed in the one spelling
        parsed = parse_action_name(name)
        assert parsed is not None and action_name(*parsed) == name and not re.search(r"[\s_]", name), name
    assert "zoom-out-2x" in upscale["actions"] and "vary-subtle" in upscale["actions"]

    code, out, err = run("act", upscale["id"], "Zoom Out 2x", "--json")  # the button's label
    zoom = records(out)[0]
    assert code == ExitCode.OK and zoom["kind"] == "zoom-out-2x", err
    for alias in ("zoom_out_2x", "ZOOM-OUT-2X", "zoom-2x"):  # the stored action, any case, the old name
        code, out, err = run("act", upscale["id"], alias)
        assert code == ExitCode.OK and f"zoom-out-2x was already requested: job {zoom['id']}" in err
    code, _, err = run("act", upscale["id"], "V1")
    assert code == ExitCode.REFUSED
    offered = " ".join(upscale["actions"])
    assert err == f"error: Job {upscale['id']} does not offer V1; it offers: {offered}.\n"
    code, _, err = run("act", upscale["id"], "zoom")
    assert code == ExitCode.REFUSED and ", ".join(ACTION_NAMES.values()) in err

    picture = tmp_path / "picture.png"
    picture.write_bytes(png(90, 60, (30, 160, 40)))
    code, out, _ = run("describe", str(picture), "--json")
    described = records(out)[0]
    assert described["actions"] == ["P1", "P2", "P3", "P4"] and len(described["prompts"]) == 4
    assert described["files"] == []


def test_result_files_are_named_by_job_and_action_and_never_overwritten(run: Cli, tmp_path: Path) -> None:
    code, out, _ = run("imagine", "a lighthouse", "--json")
    made = records(out)[0]["id"]
    out_dir = tmp_path / "out"
    grid = out_dir / f"{made}-grid.png"
    original = grid.read_bytes()

    code, out, _ = run("wait", made)  # the same files again: kept, not written twice
    assert code == ExitCode.OK
    assert f"kept out/{made}-grid.png (already there, the same)" in out and "wrote" not in out
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{made}-{n}.png" for n in (1, 2, 3, 4, "grid")]

    grid.write_bytes(b"someone else's file")
    code, out, _ = run("wait", made, "--json")
    assert code == ExitCode.OK
    files = records(out)[0]["files"]
    assert files[0] == f"out/{made}-grid-2.png" and files[1:] == [f"out/{made}-{n}.png" for n in range(1, 5)]
    assert grid.read_bytes() == b"someone else's file"  # left as it was
    assert (out_dir / f"{made}-grid-2.png").read_bytes() == original


def test_a_failed_job_exits_1_and_jobs_shows_created_error_and_providers(
    tmp_path: Path, run: Cli
) -> None:
    write_config(tmp_path, providers=[
        {"name": "local", "type": "local", "duration": 0, "poll_interval": 0.05, "grid_size": 128,
         "fail_word": "doomed"}])  # fmt: skip
    code, out, err = run("imagine", "a doomed ship")
    made = out.split()[1]
    assert code == ExitCode.JOB_FAILED
    assert out.splitlines() == [f"job {made} (imagine): failed on local"]
    error = err.splitlines()[-1]
    assert error.startswith("error: ") and len(error) > len("error: ")

    code, out, _ = run("jobs")
    header, row = out.splitlines()
    assert header.split() == ["ID", "KIND", "STATE", "PROG", "CREATED", "PROVIDER", "TRIED", "PARENT",
                              "PROMPT", "ERROR"]  # fmt: skip
    assert row.split()[:3] == [made, "imagine", "failed"]
    assert re.search(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b", row) and error.removeprefix("error: ")[:30] in row
    code, out, _ = run("jobs", "--json")
    [listed] = records(out)
    assert listed["error"] == error.removeprefix("error: ") and listed["actions"] == []


def test_detach_prints_the_id_and_wait_finishes_the_job(tmp_path: Path) -> None:
    """As real processes: --detach returns with the job stored as queued; `wait JOB` takes it later."""
    write_config(tmp_path)
    made = cli(tmp_path, "imagine", "a lighthouse at dusk", "--detach")
    assert made.returncode == ExitCode.OK, made.stderr
    job = made.stdout.strip()
    assert re.fullmatch(r"[a-z2-9]{10}", job) and made.stdout == f"{job}\n"  # nothing else on stdout
    assert f"imagine-bot wait {job}" in made.stderr
    listed = records(cli(tmp_path, "jobs", "--json").stdout)
    assert [(j["id"], j["state"]) for j in listed] == [(job, "queued")]
    assert not (tmp_path / "out").exists()

    waited = cli(tmp_path, "wait", job, "--json", "--quiet")
    assert waited.returncode == ExitCode.OK and waited.stderr == ""
    [result] = records(waited.stdout)
    assert result["id"] == job and result["state"] == "succeeded"
    assert all((tmp_path / name).is_file() for name in result["files"]) and len(result["files"]) == 5

    detached = cli(tmp_path, "act", job, "U3", "--detach", "--json")
    [child] = records(detached.stdout)
    assert (child["kind"], child["state"], child["parent"]) == ("U3", "queued", job)


async def test_a_running_bot_takes_a_detached_job(tmp_path: Path) -> None:
    token = "123456789:AAFakeTelegramTokenForTheCliTests01"  # shaped like @BotFather's: 35 after the colon
    async with TelegramFake(token=token, bot_username=BOT) as telegram:
        path = bot_config(tmp_path, duration=0.1, poll_interval=0.05, telegram=telegram_section(telegram))
        async with running_bot(path, TELEGRAM_TOKEN=telegram.token) as bot:
            await telegram.wait_until(lambda: telegram.calls("getUpdates"), within=30)
            made = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "--config", str(path), "imagine", "a harbour", "--detach",
                cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={"PATH": "/usr/bin:/bin", "TELEGRAM_TOKEN": token})  # fmt: skip
            out, err = await asyncio.wait_for(made.communicate(), 60)
            assert made.returncode == ExitCode.OK, err.decode()
            job = out.decode().strip()

            def state() -> str:
                with sqlite3.connect(tmp_path / "bot.sqlite3") as db:
                    return str(db.execute("SELECT state FROM jobs WHERE id = ?", (job,)).fetchone()[0])

            await telegram.wait_until(lambda: state() == "succeeded", within=30)  # nobody waits for it:
            await stop(bot)  # the bot's poller took it and finished it


def test_version_is_the_package_s(tmp_path: Path) -> None:
    shown = cli(tmp_path, "--version")
    assert shown.returncode == 0 and shown.stdout == f"imagine-bot {version('imagine-bot')}\n"


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += _parsers(child)
    return found


def test_every_argument_and_command_has_help() -> None:
    for parser in _parsers(_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(choice.help for choice in action._choices_actions), parser.prog
            else:
                assert action.help, f"{parser.prog} {action.dest}"


def test_help_lists_examples_exit_codes_actions_flags_and_file_names(tmp_path: Path) -> None:
    top = cli(tmp_path, "--help").stdout
    assert "examples:" in top and "--detach" in top and "--json" in top
    assert set(EXIT_CODES) == set(ExitCode)
    for code, meaning in EXIT_CODES.items():
        assert f"{code.value:>3}  {meaning}" in top
    act = cli(tmp_path, "act", "--help").stdout
    assert all(name in act for name in ACTION_NAMES.values()) and "U1-U4" in act and "P1-P5" in act
    assert "<id>-U2.png" in act and "<id>-grid.png" in act
    imagine = cli(tmp_path, "imagine", "--help").stdout
    assert "--ar W:H" in imagine and "--relax" in imagine and "imagine-bot imagine" in imagine


def test_json_from_cancel_workers_and_db(run: Cli, tmp_path: Path) -> None:
    code, out, _ = run("imagine", "a fox", "--detach", "--json")
    [queued] = records(out)
    code, out, _ = run("cancel", queued["id"], "--json")
    [cancelled] = records(out)
    assert code == ExitCode.OK and (cancelled["id"], cancelled["state"]) == (queued["id"], "cancelled")
    assert cancelled["error"]

    code, out, _ = run("imagine", "a lighthouse", "--quiet")

    async def join() -> None:  # a `run` process would: its heartbeat row is what `workers` lists
        store = await JobStore.open(tmp_path / "jobs.sqlite3")
        try:
            await Worker(store, WorkersConfig(id="web-1")).join()
        finally:
            await store.close()

    asyncio.run(join())
    code, out, _ = run("workers", "--json")
    [worker] = records(out)
    assert code == ExitCode.OK and (worker["id"], worker["state"], worker["leases"]) == ("web-1", "live", 0)
    assert worker["started_at"].endswith("Z") and worker["seen_at"].endswith("Z")

    code, out, err = run("db", "prune", "--older-than", "1d", "--dry-run", "--json")
    [pruned] = records(out)
    assert code == ExitCode.OK and err == ""
    assert (pruned["jobs"], pruned["dry_run"]) == (0, True) and pruned["database"].endswith("jobs.sqlite3")
    source, target = str(tmp_path / "jobs.sqlite3"), str(tmp_path / "copy.sqlite3")
    code, out, err = run("db", "copy", source, target, "--json")
    [copied] = records(out)
    assert code == ExitCode.OK and err == "" and copied["complete"] is True
    jobs = next(t for t in copied["tables"] if t["table"] == "jobs")
    assert jobs["source"] == jobs["target"] == 2
