"""A real PostgreSQL for the tests, never a mock.

The server is, in order: `IMAGINE_BOT_TEST_PG` (a URL) when set; else the one on 127.0.0.1:5432 when it
answers; else a throwaway cluster this test process starts with the system's `initdb`/`pg_ctl` in a
temporary directory (as the `postgres` user when running as root: PostgreSQL refuses root) and stops
at exit. Each test gets a database of its own with a random name, dropped after it, so runs and xdist
workers never see each other's data.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.net import free_port

_SERVER: str | None = None


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql); "
                           "or set IMAGINE_BOT_TEST_PG to a server's URL")
    return found


def _throwaway() -> str:
    """Start a cluster of our own; its URL (superuser `postgres`, trust auth)."""
    root = Path(tempfile.mkdtemp(prefix="imagine-bot-pg-"))
    data, port = root / "data", free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    run = [*as_user, _binary("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]
    subprocess.run(run, check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = str(root / "log")
    start = [*as_user, _binary("pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start"]
    subprocess.run(start, check=True, capture_output=True)
    stop = [*as_user, _binary("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
    atexit.register(lambda: (subprocess.run(stop, capture_output=True), shutil.rmtree(root, True)))
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def server() -> str:
    """The URL of the server the tests use (started on first use when there is none)."""
    global _SERVER
    if _SERVER is None:
        if env := os.environ.get("IMAGINE_BOT_TEST_PG"):
            _SERVER = env
        elif _answers("127.0.0.1", 5432):
            _SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
        else:
            _SERVER = _throwaway()
    return _SERVER


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def database() -> AsyncIterator[str]:
    """A fresh, empty database on the test server for the block; its URL. Dropped after."""
    admin_url = server()
    name = f"imagine_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(admin_url, name)
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
