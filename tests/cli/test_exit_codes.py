"""Each way `imagine-bot` can fail has its own exit code (bot/errors.py ExitCode) and one `error:` line;
an unexpected error is logged with its traceback through the redacting log, never printed raw."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.domain import Job, JobState, Owner
from bot.errors import ExitCode
from bot.logs import REDACTED
from bot.store import JobStore
from providers.base import Action, GenerationRequest, PromptParams
from tests.cli.conftest import Cli, cli, write_config
from tests.fakes.mj_proxy import MjProxyFake

MJ_KEY = "mj-key-0f9e8d7c6b5a"


def test_exit_codes_are_distinct() -> None:
    assert len({code.value for code in ExitCode}) == len(ExitCode.__members__)
    assert ExitCode.INTERNAL == 70 and ExitCode.INTERRUPTED == 130


def test_each_failure_exits_with_its_own_code_and_one_error_line(tmp_path: Path) -> None:
    write_config(tmp_path, providers=[
        {"name": "local", "type": "local", "duration": 0, "poll_interval": 0.05, "grid_size": 128,
         "fail_word": "doomed"}])  # fmt: skip
    usage = cli(tmp_path, "imagine")
    assert usage.returncode == ExitCode.USAGE and "usage: imagine-bot imagine" in usage.stderr
    refused = cli(tmp_path, "imagine", "a fox --chaos lots")
    assert refused.returncode == ExitCode.REFUSED, refused.stderr
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("error: --chaos")
    unknown = cli(tmp_path, "wait", "nosuchjob", "--json")
    assert unknown.returncode == ExitCode.REFUSED
    assert unknown.stderr == "error: There is no job 'nosuchjob'.\n"
    failed = cli(tmp_path, "imagine", "a doomed ship", "--quiet")
    assert failed.returncode == ExitCode.JOB_FAILED and "failed on local" in failed.stdout
    assert failed.stderr.count("\n") == 1 and failed.stderr.startswith("error: ")
    nowhere = tmp_path / "nowhere.sqlite3"
    missing = cli(tmp_path, "db", "copy", "-q", str(nowhere), str(tmp_path / "copy.sqlite3"))
    assert missing.returncode == ExitCode.DATABASE
    assert missing.stderr.startswith("error: There is no database")
    (tmp_path / "config.yaml").write_text("colour: blue\n")
    invalid = cli(tmp_path, "jobs")
    assert invalid.returncode == ExitCode.CONFIG and "invalid configuration" in invalid.stderr
    for run in (usage, refused, unknown, failed, missing, invalid):
        assert "Traceback" not in run.stderr


async def test_a_provider_that_refuses_exits_5(tmp_path: Path, run: Cli) -> None:
    """`cancel` of a job running at a midjourney-proxy whose key is wrong: the relay answers 401."""
    async with MjProxyFake(secret="the-right-secret") as fake:
        write_config(tmp_path, default_provider="relay", providers=[
            {"name": "relay", "type": "mj_proxy", "base_url": fake.base_url, "api_key": MJ_KEY}])  # fmt: skip
        store = await JobStore.open(tmp_path / "jobs.sqlite3")
        try:
            now = time.time()
            await store.insert(Job(
                id="running01", kind=Action.IMAGINE, provider="relay", provider_task_id="1700000000000",
                request=GenerationRequest(prompt=PromptParams(text="a fox")), state=JobState.RUNNING,
                owner=Owner(platform="cli", user_id="tester"), created_at=now, updated_at=now,
                deadline=now + 600))  # fmt: skip
        finally:
            await store.close()
        code, out, err = await asyncio.to_thread(run, "cancel", "running01")
        assert [method for method, path in fake.requests if path.endswith("/cancel")] == ["POST"]
    assert code == ExitCode.PROVIDER, err
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1
    assert MJ_KEY not in err


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_an_unexpected_error_is_logged_with_its_traceback_redacted_and_exits_70(
    tmp_path: Path, log_format: str
) -> None:
    """A crash whose message carries a configured secret (here a bad $IMAGINE_BOT_FAULTS naming it): the
    traceback goes through the log, whose redaction covers the exception text too."""
    write_config(tmp_path, logging={"format": log_format}, providers=[
        {"name": "local", "type": "local", "duration": 0},
        {"name": "mj", "type": "midjourney_api", "api_key": "${MJ_KEY}"}])  # fmt: skip
    crashed = cli(tmp_path, "jobs", MJ_KEY=MJ_KEY, IMAGINE_BOT_FAULTS=f"{MJ_KEY}=kill")
    assert crashed.returncode == ExitCode.INTERNAL, crashed.stderr
    assert MJ_KEY not in crashed.stderr and MJ_KEY[:10] not in crashed.stderr
    assert crashed.stdout == ""
    if log_format == "json":
        [entry] = [json.loads(line) for line in crashed.stderr.splitlines()]  # one record, nothing raw
        assert entry["level"] == "CRITICAL" and entry["logger"] == "bot.cli"
        assert "Traceback" in entry["exc"] and f"ValueError: bad fault '{REDACTED}=kill'" in entry["exc"]
    else:
        assert crashed.stderr.splitlines()[0].endswith(
            "CRITICAL bot.cli: imagine-bot stopped on an unexpected error; please report it with this log")
        assert "Traceback" in crashed.stderr and f"bad fault '{REDACTED}=kill'" in crashed.stderr


def test_ctrl_c_exits_130_and_leaves_the_job_for_wait(tmp_path: Path) -> None:
    write_config(tmp_path, duration=5.0)
    command = [sys.executable, "-m", "bot", "--config", str(tmp_path / "config.yaml"), "imagine", "a slow"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        line = first
        while line and "running" not in line:  # progress lines: SIGINT once it runs
            line = proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == ExitCode.INTERRUPTED and out == ""
    assert "interrupted: the job stays in the store" in err and "Traceback" not in err
    job = first.split()[1]
    listed = cli(tmp_path, "jobs", "--json")
    assert json.loads(listed.stdout)["state"] in ("submitted", "running") and job in listed.stdout
