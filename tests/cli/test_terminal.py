"""On a terminal (a real pseudo-terminal here): a progress bar redrawn on stderr, a styled `jobs` table;
stdout that is not the terminal stays plain text."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import write_config


def _on_a_terminal(tmp_path: Path, *args: str, stream: str) -> tuple[int, str, str]:
    """Run `imagine-bot ARGS` with `stream` ("stdout" or "stderr") on a pseudo-terminal and the other on a
    pipe; returns the exit code, what the terminal showed, and what the pipe got."""
    controller, terminal = pty.openpty()
    pipe = subprocess.PIPE
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TERM": "xterm-256color", "COLUMNS": "120"}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--config", str(tmp_path / "config.yaml"), *args],
                            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                            stdout=terminal if stream == "stdout" else pipe,
                            stderr=terminal if stream == "stderr" else pipe)  # fmt: skip
    os.close(terminal)
    shown = b""
    try:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every writer of the terminal has closed it (the process ended)
                break
            if not chunk:
                break
            shown += chunk
        out, err = proc.communicate(timeout=60)
        piped = (out if stream == "stderr" else err).decode()
    finally:
        os.close(controller)
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    return proc.returncode, shown.decode(errors="replace"), piped


def test_a_terminal_gets_a_progress_bar_on_stderr_and_stdout_stays_plain(tmp_path: Path) -> None:
    write_config(tmp_path, duration=0.3)
    code, bar, out = _on_a_terminal(tmp_path, "imagine", "a lighthouse at dusk", stream="stderr")
    assert code == 0, bar
    made = out.split()[1]
    assert "━" in bar and "\r" in bar  # rich's bar, redrawn in place
    assert f"{made} imagine" in bar and "100%" in bar and "succeeded on local" in bar
    assert "\x1b" not in out and out.splitlines()[0] == f"job {made} (imagine): succeeded on local"
    assert f"wrote out/{made}-grid.png" in out


def test_jobs_on_a_terminal_is_a_table(tmp_path: Path) -> None:
    write_config(tmp_path)
    code, _, out = _on_a_terminal(tmp_path, "imagine", "a fox", "--quiet", stream="stderr")
    made = out.split()[1]
    code, table, err = _on_a_terminal(tmp_path, "jobs", stream="stdout")
    assert code == 0 and err == ""
    assert "\x1b[1m" in table  # the header in bold
    assert made in table and "imagine" in table and "succeeded" in table
