"""`imagine-bot admin ...`: the admin operations, scriptable from a shell (the CLI is an operator)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.errors import ExitCode


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
    assert run(config, "imagine", "paused meanwhile") == ExitCode.REFUSED
    assert "Provider 'local' is paused by an admin." in capsys.readouterr().err
    assert run(config, "admin", "resume", "local") == 0
    assert run(config, "imagine", "a lighthouse") == 0
    assert run(config, "admin", "stats", "--since", "1h") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].split() == ["local", "1", "1", "0", "0", "0", "1"]
    assert run(config, "admin", "unban", "telegram:202") == 0
    assert run(config, "admin", "stats", "--since", "soon") == ExitCode.REFUSED
    assert "'soon' is not a period" in capsys.readouterr().err


def test_admin_commands_as_json(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: one object per line, for each ban, each provider's stats, and what a change did."""
    assert run(config, "admin", "ban", "telegram:202", "--reason", "spam", "--json") == 0
    assert run(config, "--json", "admin", "bans") == 0
    assert run(config, "admin", "set-limit", "user_per_day", "3", "--json") == 0
    assert run(config, "admin", "limits", "--json") == 0
    assert run(config, "admin", "pause", "local", "--json") == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    banned, listed, limit, limits, paused = printed
    assert banned == listed and (banned["platform"], banned["user_id"]) == ("telegram", "202")
    assert banned["reason"] == "spam" and banned["scope"] == "*" and banned["banned_at"].endswith("Z")
    assert limit == {"key": "user_per_day", "value": "3"} and limits["user_per_day"] == 3
    assert limits["user_per_hour"] == 5 and paused == {"provider": "local", "paused": True}
    assert run(config, "admin", "resume", "local") == 0
    assert run(config, "imagine", "a lighthouse", "--quiet") == 0
    capsys.readouterr()
    assert run(config, "admin", "stats", "--json") == 0
    [stats] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (stats["provider"], stats["jobs"], stats["succeeded"], stats["scope"]) == ("local", 1, 1, None)
