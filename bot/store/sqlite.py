"""The SQLite engine (aiosqlite, WAL): the embedded default, one file, one connection per process.

Several processes may share the file (a CLI beside `run`): "database is locked" is waited out with
backoff beyond busy_timeout, never raised. The process has one connection, so a statement of one task
run while another task's transaction is open would be part of it (committed or rolled back with it: a
claim undone after its submit went out would be sent again); every statement therefore takes the
engine's lock, which the task holding a transaction re-enters.

Migrations are keyed by `PRAGMA user_version` and applied under the write lock (BEGIN IMMEDIATE), so
two processes starting on a fresh file migrate it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.store.engine import SQLITE, DatabaseError, Row, newer_schema

log = logging.getLogger(__name__)
R = TypeVar("R")
_LOCK_RETRIES = 12  # on top of busy_timeout (5 s) each: a minute of another process's write lock


def _statements(script: str) -> list[str]:
    """The SQL statements of a migration script, one by one."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SqliteEngine:
    dialect = SQLITE
    shared = False  # one `run` process per file (a one-shot CLI beside it works on its own jobs only)

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._path = path
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None  # the task inside `_exclusive`, if any
        self.instance = secrets.token_hex(6)

    @classmethod
    async def connect(cls, path: Path, create: bool = True) -> SqliteEngine:
        if str(path) != ":memory:" and not create and not await asyncio.to_thread(path.is_file):
            raise DatabaseError(f"no database at {path} yet: nothing has run with this config (run "
                                "`imagine-bot imagine …` or `imagine-bot run` first)")
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), isolation_level=None)
        engine = cls(db, path)
        await engine._retrying(db.execute, "PRAGMA busy_timeout=5000")
        await engine._retrying(db.execute, "PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")  # durable across process kills in WAL mode
        return engine

    async def close(self) -> None:
        await self._db.close()

    async def listen(self, channel: str, received: Callable[[str], None],
                     reconnected: Callable[[], Awaitable[None]]) -> None:
        await asyncio.Event().wait()  # nobody else to hear: one process shows every chat of a SQLite store

    async def ping(self) -> bool:
        rows = await self.rows("SELECT 1")
        return bool(rows and rows[0][0] == 1)

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """The connection to this task alone for the block; re-entrant within the task holding it."""
        task = asyncio.current_task()
        if task is not None and self._holder is task:
            yield
            return
        async with self._lock:
            self._holder = task
            try:
                yield
            finally:
                self._holder = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Taken at once (BEGIN IMMEDIATE), so it never fails half-way on another process's lock."""
        async with self._exclusive():
            await self._retrying(self._db.execute, "BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    @staticmethod
    async def _retrying(call: Callable[..., Awaitable[R]], *args: Any) -> R:
        """`call(*args)`, waiting out another process's write lock beyond busy_timeout, with backoff."""
        for attempt in range(_LOCK_RETRIES):
            try:
                return await call(*args)
            except sqlite3.OperationalError as exc:
                if not _is_lock_error(exc) or attempt == _LOCK_RETRIES - 1:
                    raise
                log.info("database busy (%s); retrying", exc)
                await asyncio.sleep(min(2.0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    # execute_fetchall is one trip to aiosqlite's thread; execute + fetchone + close would be three
    async def rows(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        prepared = self.dialect.prepare(statement)
        async with self._exclusive():
            return list(await self._retrying(self._db.execute_fetchall, prepared, tuple(params)))

    async def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        prepared = self.dialect.prepare(statement)
        async with self._exclusive():
            cursor = await self._retrying(self._db.execute, prepared, tuple(params))
            return int(cursor.rowcount)

    async def execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        prepared = self.dialect.prepare(statement)
        async with self._exclusive():
            await self._retrying(self._db.executemany, prepared, [tuple(row) for row in rows])

    async def migrate(self, migrations: Sequence[str]) -> None:
        async with self.transaction():
            version = int((await self.rows("PRAGMA user_version"))[0][0])
            if version > len(migrations):
                raise newer_schema(version, len(migrations), str(self._path))
            for number, script in enumerate(migrations[version:], start=version + 1):
                # statement by statement: executescript would commit the open transaction first
                for statement in _statements(script):
                    await self._db.execute(statement)
                await self._db.execute(f"PRAGMA user_version = {number}")
