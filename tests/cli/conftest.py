"""The `imagine-bot` command as people script it: in this process (`main([...])` with capsys) and as
real subprocesses, on the built-in local provider, everything in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main


def write_config(tmp_path: Path, duration: float = 0.0, **extra: Any) -> Path:
    """A config on the local provider (jobs of `duration` s, small grids) in tmp_path."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "database": str(tmp_path / "jobs.sqlite3"),
        "providers": [{"name": "local", "type": "local", "duration": duration, "poll_interval": 0.05,
                       "grid_size": 128}],
        "polling": {"idle_interval": 0.05},
        **extra,
    }), encoding="utf-8")  # fmt: skip
    return path


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot --config <tmp_path/config.yaml> ARGS` as a subprocess, in tmp_path."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "USER": "tester", **env}
    command = [sys.executable, "-m", "bot", "--config", str(tmp_path / "config.yaml"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=environment)


def records(text: str) -> list[dict[str, Any]]:
    """Every line of `text` as a JSON object (each must be one)."""
    return [json.loads(line) for line in text.splitlines()]


class Cli:
    """`imagine-bot --config PATH ...` in this process: the exit code, and what went to stdout/stderr."""

    def __init__(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = config
        self._capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main(["--config", str(self.config), *args])
        out, err = self._capsys.readouterr()
        return code, out, err


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], root_logging: None,
        monkeypatch: pytest.MonkeyPatch) -> Cli:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # ./out is tmp_path's
    return Cli(write_config(tmp_path), capsys)
