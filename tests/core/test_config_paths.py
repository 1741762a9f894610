"""Relative paths in a config resolve against the config file's directory, wherever a command runs from;
without a config file the bot's files live in the platform's data directory; a read-only open of a
database that is not there yet says so and creates nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import load_config
from bot.config_check import check_config
from bot.config_paths import config_base_dir, default_data_dir
from bot.store import DatabaseError, JobStore

CONFIG = """\
database: {database}
providers:
  - name: local
    type: local
    duration: 0.1
    poll_interval: 0.05
    grid_size: 256
polling:
  idle_interval: 0.1
"""


def write(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_relative_paths_resolve_against_the_config_file_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # for `~`
    path = write(tmp_path / "etc", "database: data/jobs.sqlite3\nmedia: {cache_dir: ../cache}\n"
                                   "moderation: {banned_words_file: ~/words.txt}\n")  # fmt: skip
    config = load_config(Path("etc/config.yaml"), {})  # a relative config path, too
    assert config.database == tmp_path / "etc" / "data" / "jobs.sqlite3"
    assert config.media_cache_dir == tmp_path / "etc" / ".." / "cache"
    assert config.moderation.banned_words_file == tmp_path / "home" / "words.txt"
    path.write_text("database: data/jobs.sqlite3\n")
    config = load_config(path, {})
    assert config.media_cache_dir == tmp_path / "etc" / "data" / "jobs.sqlite3.media"  # beside the database


def test_absolute_paths_and_server_urls_stay_as_written(tmp_path: Path) -> None:
    text = f"database: {tmp_path / 'db.sqlite3'}\nmedia: {{cache_dir: /var/cache/ib}}\n"
    path = write(tmp_path / "etc", text)
    config = load_config(path, {})
    assert config.database == tmp_path / "db.sqlite3" and config.media_cache_dir == Path("/var/cache/ib")
    path = write(tmp_path / "etc", "database: postgresql://bot:pw@db:5432/imagine\n")
    config = load_config(path, {})
    assert config.database == "postgresql://bot:pw@db:5432/imagine"
    assert config.media_cache_dir == tmp_path / "etc" / "imagine-bot.media"  # this machine's: by the config


def test_without_a_config_file_the_data_directory_is_used(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    assert default_data_dir(env) == tmp_path / "xdg" / "imagine-bot"
    share = tmp_path / "home" / ".local" / "share" / "imagine-bot"
    assert default_data_dir({"HOME": str(tmp_path / "home")}) == share
    relative = {"XDG_DATA_HOME": "xdg", "HOME": str(tmp_path / "home")}  # the XDG spec: ignore a relative one
    assert default_data_dir(relative) == share
    assert config_base_dir(None, env) == default_data_dir(env)
    checked = check_config(None, env)
    assert checked.source == "defaults" and checked.base_dir == tmp_path / "xdg" / "imagine-bot"
    assert checked.config is not None
    assert checked.config.database == tmp_path / "xdg" / "imagine-bot" / "imagine-bot.sqlite3"
    assert f"database: {tmp_path / 'xdg' / 'imagine-bot' / 'imagine-bot.sqlite3'}" in checked.summary


async def test_a_read_only_open_of_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "state" / "jobs.sqlite3"
    with pytest.raises(DatabaseError) as caught:
        await JobStore.open(missing, create=False)
    assert str(caught.value) == (f"no database at {missing} yet: nothing has run with this config (run "
                                 "`imagine-bot imagine …` or `imagine-bot run` first)")  # fmt: skip
    assert not missing.parent.exists()  # not the file, not even its directory
    store = await JobStore.open(missing)  # create=True, the default: made, directory and all
    await store.close()
    store = await JobStore.open(missing, create=False)  # there now: opens
    assert await store.ping()
    await store.close()


async def test_build_app_passes_create_database_on(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONFIG.format(database="jobs.sqlite3")), {})
    with pytest.raises(DatabaseError, match=r"no database at .*jobs\.sqlite3 yet"):
        async with build_app(config, serve_http=False, create_database=False):
            pass
    assert not (tmp_path / "jobs.sqlite3").exists()
    async with build_app(config, serve_http=False) as app:
        assert await app.store.ping()
    assert (tmp_path / "jobs.sqlite3").exists()


def _cli(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "USER": "tester"}
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=60,
                          cwd=cwd, env=env)  # fmt: skip


def test_commands_from_another_directory_use_the_database_beside_the_config(tmp_path: Path) -> None:
    """`cd sub && imagine-bot --config ../cfg/config.yaml jobs` shows the jobs made from elsewhere."""
    write(tmp_path / "cfg", CONFIG.format(database="jobs.sqlite3"))
    elsewhere, sub = tmp_path / "elsewhere", tmp_path / "sub"
    elsewhere.mkdir()
    sub.mkdir()
    made = _cli(elsewhere, tmp_path, "--config", "../cfg/config.yaml", "imagine", "a fox", "--out", "o")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "cfg" / "jobs.sqlite3").is_file()
    listed = _cli(sub, tmp_path, "--config", str(Path("..") / "cfg" / "config.yaml"), "jobs")
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()[1:]
    assert len(rows) == 1 and "a fox" in rows[0] and "succeeded" in rows[0]
    assert not list(sub.iterdir()) and [p.name for p in elsewhere.iterdir()] == ["o"]
    assert not (tmp_path / ".local").exists()  # with a config file, nothing goes to the data directory
