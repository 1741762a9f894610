"""One-shot CLI commands beside a running bot: the HTTP port is the bot's, never theirs."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.core.test_cli import cli, job_id, write_config


def test_one_shot_commands_work_while_the_webhook_port_is_taken(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with socket.socket() as taken:  # what `imagine-bot run` holds while it serves webhooks and metrics
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config.write_text(config.read_text() + f"webhooks:\n  listen: 127.0.0.1:{port}\n"
                          f"  public_url: http://127.0.0.1:{port}\nmetrics:\n  listen: 127.0.0.1:{port}\n")
        made = cli(tmp_path, "imagine", "a lighthouse beside the bot")
        assert made.returncode == 0, made.stderr
        listed = cli(tmp_path, "jobs")
        assert listed.returncode == 0, listed.stderr
        assert job_id(made.stdout, "imagine") in listed.stdout
        assert "address already in use" not in made.stderr + listed.stderr
