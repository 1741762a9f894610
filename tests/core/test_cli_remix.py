"""`imagine-bot act JOB V2 --remix "prompt"` as a subprocess, on the local provider."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.core.test_cli import cli, job_id, write_config


def test_act_with_remix_runs_the_edited_prompt(tmp_path: Path) -> None:
    write_config(tmp_path)
    out = tmp_path / "out"
    run = cli(tmp_path, "imagine", "a lighthouse at dusk", "--out", str(out))
    assert run.returncode == 0, run.stderr
    grid_id = job_id(run.stdout, "imagine")
    run = cli(tmp_path, "act", grid_id, "V2", "--out", str(out))
    assert run.returncode == 0, run.stderr
    plain = (out / f"{job_id(run.stdout, 'V2')}-grid.png").read_bytes()

    run = cli(tmp_path, "act", grid_id, "V2", "--remix", "a red barn at noon --ar 16:9", "--out", str(out))
    assert run.returncode == 0, run.stderr
    remix_id = job_id(run.stdout, "V2")  # a job of its own beside the plain V2, not "already requested"
    assert "already requested" not in run.stderr
    assert (out / f"{remix_id}-grid.png").read_bytes() != plain
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
        (request,) = db.execute("SELECT request FROM jobs WHERE id = ?", (remix_id,)).fetchone()
    assert '"text":"a red barn at noon"' in request and '"remixed":true' in request

    run = cli(tmp_path, "act", grid_id, "V2", "--remix", "a barn --chaos 500")
    assert run.returncode != 0 and "--chaos must be between 0 and 100" in run.stderr
    run = cli(tmp_path, "act", grid_id, "U1", "--remix", "a barn")
    assert run.returncode != 0 and "U1 takes no prompt to remix" in run.stderr
