"""`imagine-bot admin ...`: the admin operations, scriptable from a shell (the CLI is an operator)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.cli import main


@pytest.fixture
def config(tmp_path: Path, root_logging: None) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "database": str(tmp_path / "bot.sqlite3"),
        "providers": [{"name": "local", "type": "local", "duration": 0, "grid_size": 128,
                       "poll_interval": 0.05}],
        "polling": {"idle_interval": 0.05},
        "limits": {"user_per_hour": 5},
    }))  # fmt: skip
    return str(path)


def run(config: str, *args: str) -> int:
    return main(["--config", config, *args])


def test_admin_commands_from_the_shell(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(config, "admin", "ban", "telegram:202", "--reason", "spam") == 0
    assert run(config, "admin", "ban", "555", "--scope", "discord:42") == 0
    assert run(config, "admin", "bans") == 0
    assert run(config, "admin", "set-limit", "user_per_hour", "2", "--scope", "telegram:-1001") == 0
    assert run(config, "admin", "limits", "--scope", "telegram:-1001") == 0
    assert run(config, "admin", "pause", "local") == 0
    out = capsys.readouterr().out
    assert "banned telegram:202 (everywhere)" in out and "banned *:555 (discord:42)" in out
    assert "telegram:202\t*\tspam\tby cli:" in out
    assert "user_per_hour: 2\n" in out and "chat_per_day: none\n" in out
    assert run(config, "imagine", "paused meanwhile") == 2
    assert "Provider 'local' is paused by an admin." in capsys.readouterr().err
    assert run(config, "admin", "resume", "local") == 0
    assert run(config, "imagine", "a lighthouse") == 0
    assert run(config, "admin", "stats", "--since", "1h") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].split() == ["local", "1", "1", "0", "0", "0", "1"]
    assert run(config, "admin", "unban", "telegram:202") == 0
    assert run(config, "admin", "stats", "--since", "soon") == 2
    assert "'soon' is not a period" in capsys.readouterr().err
