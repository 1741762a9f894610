"""`imagine-bot web-link` and `web-sessions` as subprocesses, and `imagine-bot run` serving the pages
with no chat platform configured."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp

from bot.errors import ExitCode
from tests.core.test_cli import cli, env
from tests.net import free_port

CONFIG = """\
database: {db}
providers:
  - {{name: local, type: local, duration: 0.1, poll_interval: 0.05, grid_size: 256}}
webhooks:
  listen: 127.0.0.1:{port}
  public_url: http://127.0.0.1:{port}
web:
  enabled: {enabled}
"""


def write(tmp_path: Path, enabled: bool = True) -> int:
    port = free_port()
    (tmp_path / "config.yaml").write_text(CONFIG.format(db=tmp_path / "jobs.sqlite3", port=port,
                                                        enabled=str(enabled).lower()))
    return port


def start_run(tmp_path: Path) -> subprocess.Popen[str]:
    """`imagine-bot run` in the background (the test's loop only waits on its port meanwhile)."""
    config = tmp_path / "config.yaml"
    return subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env(config),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def _until_serving(port: int, process: subprocess.Popen[str]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz"):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise AssertionError("run never served")


async def test_run_serves_the_pages_without_a_chat_platform(tmp_path: Path) -> None:
    port = write(tmp_path)
    made = cli(tmp_path, "web-link", "--operator")
    assert made.returncode == 0, made.stderr
    link = made.stdout.strip()
    assert link.startswith(f"http://127.0.0.1:{port}/web/login?t=")
    assert "secret" not in made.stderr.lower()
    process = start_run(tmp_path)
    try:
        await _until_serving(port, process)
        token = parse_qs(urlsplit(link).query)["t"][0]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.post(f"http://127.0.0.1:{port}/web/login", data={"t": token}) as page:
                assert page.status == 200 and "Your gallery" in await page.text()
            listed = cli(tmp_path, "web-sessions", "--json")
            (session,) = [json.loads(line) for line in listed.stdout.splitlines()]
            assert session["user"].startswith("cli:") and session["rights"] == "operator"
            revoked = cli(tmp_path, "web-sessions", "--revoke", session["id"])
            assert revoked.stdout.strip() == "revoked 1 session(s)"
            async with browser.get(f"http://127.0.0.1:{port}/web/") as page:
                assert page.status == 401
            async with browser.post(f"http://127.0.0.1:{port}/web/login", data={"t": token}) as page:
                assert page.status == 403  # used already, by this process: the store remembers
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "secret" not in stderr.lower() and token not in stderr


def test_web_link_for_a_member_of_a_chat(tmp_path: Path) -> None:
    write(tmp_path)
    made = cli(tmp_path, "web-link", "--user", "telegram:42", "--scope", "telegram:-100", "--admin", "--json")
    record = json.loads(made.stdout)
    assert record["url"].count("/web/login?t=") == 1 and record["expires_in"] == 600
    assert cli(tmp_path, "web-link", "--admin").returncode != 0  # an admin of which chat?


def test_web_commands_say_when_the_pages_are_off(tmp_path: Path) -> None:
    write(tmp_path, enabled=False)
    made = cli(tmp_path, "web-link")
    assert made.returncode != 0 and "web.enabled" in made.stderr and "Traceback" not in made.stderr
    run = cli(tmp_path, "run")
    assert run.returncode == ExitCode.NO_FRONTEND and "web.enabled" in run.stderr
