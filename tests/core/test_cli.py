"""The `imagine-bot` command as a subprocess, on the local provider, with everything in tmp_path."""

from __future__ import annotations

import argparse
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from bot.cli_parser import parser as _parser
from bot.errors import ExitCode
from tests.core.conftest import png, size_of

CONFIG = """\
database: {db}
providers:
  - name: local
    type: local
    duration: {duration}
    poll_interval: 0.05
    grid_size: 256
polling:
  idle_interval: 0.1
"""


def write_config(tmp_path: Path, duration: float = 0.1) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "jobs.sqlite3", duration=duration))
    return path


def env(config: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IMAGINE_BOT_CONFIG": str(config),
            "PYTHONUNBUFFERED": "1", "USER": "tester"}  # fmt: skip


def cli(tmp_path: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    config = config or tmp_path / "config.yaml"
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env=env(config))  # fmt: skip


def job_id(output: str, kind: str) -> str:
    """The id in `job ID (KIND): succeeded on local` (stdout) or `job ID (KIND) on local` (stderr)."""
    match = re.search(rf"^job (\w+) \({re.escape(kind)}\):? .*\blocal$", output, re.MULTILINE)
    assert match, output
    return match[1]


def test_imagine_act_describe_blend_and_jobs(tmp_path: Path) -> None:
    write_config(tmp_path)
    out = tmp_path / "out"
    run = cli(tmp_path, "imagine", "a lighthouse at dusk --ar 16:9", "--out", str(out))
    assert run.returncode == 0, run.stderr
    grid_id = job_id(run.stdout, "imagine")
    assert f"job {grid_id} (imagine): succeeded on local" in run.stdout and "100% succeeded" in run.stderr
    assert f"actions: U1 U2 U3 U4 V1 V2 V3 V4 reroll (imagine-bot act {grid_id} U1)" in run.stdout
    width, height = size_of((out / f"{grid_id}-grid.png").read_bytes())
    assert abs(width / height - 16 / 9) < 0.02
    tiles = [(out / f"{grid_id}-{i}.png").read_bytes() for i in range(1, 5)]
    assert len(set(tiles)) == 4

    run = cli(tmp_path, "act", grid_id, "U2", "--out", str(out))
    assert run.returncode == 0, run.stderr
    upscale_id = job_id(run.stdout, "U2")
    assert (out / f"{upscale_id}-U2.png").read_bytes() not in tiles
    assert "vary-strong" in run.stdout and "zoom-out-2x" in run.stdout
    run = cli(tmp_path, "act", grid_id, "u2", "--out", str(out))
    assert run.returncode == 0 and f"U2 was already requested: job {upscale_id}" in run.stderr

    run = cli(tmp_path, "act", grid_id, "V3", "--out", str(out))
    assert run.returncode == 0, run.stderr
    variation_id = job_id(run.stdout, "V3")
    assert (out / f"{variation_id}-grid.png").exists()

    picture = tmp_path / "picture.png"
    picture.write_bytes(png(120, 60, (30, 160, 40)))
    run = cli(tmp_path, "describe", str(picture))
    assert run.returncode == 0, run.stderr
    assert len(re.findall(r"^P[1-4]: .*green", run.stdout, re.MULTILINE)) == 4

    other = tmp_path / "other.png"
    other.write_bytes(png(60, 60, (200, 30, 30)))
    run = cli(tmp_path, "blend", str(picture), str(other), "--out", str(out))
    assert run.returncode == 0, run.stderr
    blend_id = job_id(run.stdout, "blend")

    run = cli(tmp_path, "jobs")
    assert run.returncode == 0
    lines = run.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "KIND", "STATE"]
    listed = {line.split()[0]: line.split()[1:3] for line in lines[1:]}
    assert listed[grid_id] == ["imagine", "succeeded"] and listed[blend_id] == ["blend", "succeeded"]
    assert listed[upscale_id] == ["U2", "succeeded"] and listed[variation_id] == ["V3", "succeeded"]
    assert len(listed) == 5


def test_bad_input_exits_non_zero_with_a_reason(tmp_path: Path) -> None:
    write_config(tmp_path)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    for args, expected in [
        (("imagine", "a fox --ar wide"), "--ar"),
        (("imagine", "a fox", "--provider", "mj"), "no provider called 'mj'"),
        (("act", "nosuchjob", "U1"), "no job 'nosuchjob'"),
        (("describe", str(text)), "not an image"),
    ]:
        run = cli(tmp_path, *args)
        assert run.returncode != 0 and expected in run.stderr, (args, run.stderr)
        assert "Traceback" not in run.stderr


def test_run_without_a_frontend(tmp_path: Path) -> None:
    write_config(tmp_path)
    run = cli(tmp_path, "run")
    assert run.returncode == ExitCode.NO_FRONTEND
    assert "No chat frontend is configured" in run.stderr and "telegram.token" in run.stderr


#: One valid command line per subcommand (and per admin operation).
COMMANDS = [["imagine", "a fox"], ["act", "j1", "U1"], ["describe", "cat.png"], ["blend", "a.png", "b.png"],
            ["wait", "j1"], ["cancel", "j1"], ["jobs"], ["run"], ["check-config"],
            ["admin", "ban", "u1"], ["admin", "unban", "u1"], ["admin", "bans"], ["admin", "limits"],
            ["admin", "set-limit", "user_per_day", "5"], ["admin", "pause", "mj"], ["admin", "resume", "mj"],
            ["admin", "stats"], ["db", "copy", "a.db", "postgresql://h/b"], ["workers"],
            ["db", "prune", "--dry-run"], ["web-link", "--operator"], ["web-sessions"],
            ["shorten", "a very red fox"]]  # fmt: skip


def _subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found |= _subcommands(child, (*prefix, name)) or {(*prefix, name)}
    return found


def test_every_subcommand_takes_config_before_or_after_it() -> None:
    covered = {tuple(argv[:2] if argv[0] in ("admin", "db") else argv[:1]) for argv in COMMANDS}
    assert covered == _subcommands(_parser())  # a new subcommand needs a line in COMMANDS
    for argv in COMMANDS:
        assert _parser().parse_args(["--config", "before.yaml", *argv]).config == "before.yaml"
        assert _parser().parse_args([*argv, "--config", "after.yaml"]).config == "after.yaml", argv
        both = ["--config", "before.yaml", *argv[:1], "--config", "after.yaml", *argv[1:]]
        assert _parser().parse_args(both).config == "after.yaml", argv  # the one after the subcommand
        assert _parser().parse_args(argv).config is None


def test_config_after_the_subcommand_is_the_one_used(tmp_path: Path) -> None:
    good = write_config(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("colour: blue\n")
    for argv in (["run", "--config", str(bad)], ["check-config", "--config", str(bad)],
                 ["admin", "stats", "--config", str(bad)],
                 ["--config", str(good), "jobs", "--config", str(bad)]):  # fmt: skip
        refused = cli(tmp_path, *argv, config=good)  # $IMAGINE_BOT_CONFIG names the good one
        assert refused.returncode == ExitCode.CONFIG, (argv, refused.stderr)
        assert f"{bad}: invalid configuration" in refused.stderr and "colour" in refused.stderr
    started = cli(tmp_path, "--config", str(bad), "run", "--config", str(good), config=bad)
    assert "No chat frontend is configured" in started.stderr  # it got as far as starting, on the good one


def _read_until(stream: IO[str], pattern: str, timeout: float = 30.0) -> str:
    """Lines of a child's stream up to the first one matching `pattern`."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.2)
        if ready:
            line = stream.readline()
            seen += line
            if re.search(pattern, line):
                return seen
            if not line:
                break
    raise AssertionError(f"never saw {pattern!r}; got {seen!r}")


def test_kill_9_mid_job_then_resume(tmp_path: Path) -> None:
    config = write_config(tmp_path, duration=2.0)
    db = tmp_path / "jobs.sqlite3"
    with subprocess.Popen(
        [sys.executable, "-m", "bot", "imagine", "a lighthouse at dusk"], stderr=subprocess.PIPE, text=True,
        cwd=tmp_path, env=env(config),
    ) as proc:  # fmt: skip
        try:
            assert proc.stderr is not None
            seen = _read_until(proc.stderr, r"\d+% running")  # progress is on stderr
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
    job = job_id(seen, "imagine")
    with sqlite3.connect(db) as conn:
        (task_before,) = conn.execute("SELECT provider_task_id FROM jobs WHERE id = ?", (job,)).fetchone()
    assert task_before

    run = cli(tmp_path, "jobs")
    assert re.search(rf"^{job}\s+imagine\s+(submitted|running)", run.stdout, re.MULTILINE), run.stdout
    run = cli(tmp_path, "wait", job, "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert f"job {job} (imagine): succeeded on local" in run.stdout
    assert len(list((tmp_path / "out").glob(f"{job}-*.png"))) == 5
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, state, provider_task_id FROM jobs").fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert rows == [(job, "succeeded", task_before)]  # one job, the same provider task: nothing resubmitted


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    config = write_config(tmp_path, duration=0.5)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "imagine", "a lighthouse"], cwd=tmp_path,
                            env=env(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()
        proc.stdout.close()  # like `imagine-bot imagine ... | head -1`
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    waited = cli(tmp_path, "wait", job_id(first, "imagine"))  # the job stayed in the store, as on Ctrl-C
    assert waited.returncode == 0 and "succeeded on local" in waited.stdout, waited.stderr


def test_a_closed_stderr_loses_only_the_progress(tmp_path: Path) -> None:
    """`imagine-bot imagine ... 2>&-`-like: the job still ends, its files are written, the result printed."""
    config = write_config(tmp_path, duration=0.3)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "imagine", "a lighthouse", "--out", "out"],
                            cwd=tmp_path, env=env(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stderr is not None
    proc.stderr.close()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    made = job_id(out, "imagine")
    assert f"job {made} (imagine): succeeded on local" in out
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [f"{made}-{n}.png" for n in (1, 2, 3, 4, "grid")]
