"""`imagine-bot db copy SRC DST`: every table of a store copied from one database to another (SQLite to
PostgreSQL and back; each a path or a postgresql:// URL). Stop the bot first, so nothing changes under
the copy.

The target is migrated first; the source must hold a store at a schema this code knows (an older one
is migrated, as starting the bot on it would). Rows go in batches, each one transaction, and a row
whose key (or other unique value) is already in the target is left as it is: copying again, or into a
target that already has some of the jobs, duplicates nothing. Jobs go in the source's queue order
(created_at, then its seq/rowid), so the target numbers them in that order. At the end each table's
rows are counted on both sides. The tables and their columns are `sql.COPY_TABLES`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bot.config import database_location, is_database_url
from bot.store import sql
from bot.store.engine import DatabaseError, Engine, Row, open_engine
from bot.store.jobs import JobStore
from bot.store.migrations import POSTGRES, SQLITE

BATCH = 500  # rows per batch
BLOB_BATCH = 16  # stored inputs are up to a few MB each


@dataclass(frozen=True)
class TableCount:
    table: str
    source: int
    target: int
    before: int  # rows the target had before the copy

    @property
    def short(self) -> bool:
        return self.target < self.source

    def line(self) -> str:
        mark = "  MISSING ROWS" if self.short else ""
        return (f"{self.table:<17}{self.source:>9} in source {self.target:>9} in target "
                f"({self.target - self.before} copied){mark}")  # fmt: skip


@dataclass(frozen=True)
class Copied:
    source: str  # locations, without credentials
    target: str
    tables: list[TableCount]

    @property
    def short(self) -> list[TableCount]:
        """Tables with fewer rows in the target than in the source (rows that could not be copied)."""
        return [t for t in self.tables if t.short]

    def lines(self) -> list[str]:
        return [t.line() for t in self.tables]


async def copy_store(source: str | Path, target: str | Path, *, progress: bool = True) -> Copied:
    """Copy every table of the store at `source` to `target` (see the module docstring)."""
    where, there = database_location(source), database_location(target)
    if where == there:
        raise DatabaseError(f"The source and the target are the same database ({where}).")
    src = await _open_source(source)
    try:
        dst = await JobStore.open(target)
        try:
            counts = [await _copy_table(src, dst.engine, table, progress) for table in sql.COPY_TABLES]
        finally:
            await dst.close()
    finally:
        await src.close()
    return Copied(where, there, counts)


async def _open_source(source: str | Path) -> Engine:
    """The engine of an existing store at `source`, migrated to this version's schema."""
    where = database_location(source)
    if not is_database_url(source) and not await asyncio.to_thread(Path(source).is_file):
        raise DatabaseError(f"There is no database at {where}.")
    engine = await open_engine(source)
    try:
        if await _schema_version(engine) == 0:
            raise DatabaseError(f"The database {where} holds no imagine-bot store.")
        await engine.migrate(POSTGRES if engine.dialect.numbered else SQLITE)  # newer: DatabaseError
    except BaseException:
        await engine.close()
        raise
    return engine


async def _schema_version(engine: Engine) -> int:
    if not engine.dialect.numbered:
        return int((await engine.rows(sql.SQLITE_SCHEMA_VERSION))[0][0])
    if not (await engine.rows(sql.POSTGRES_HAS_SCHEMA))[0][0]:
        return 0
    return int((await engine.rows(sql.POSTGRES_SCHEMA_VERSION))[0][0])


async def _count(engine: Engine, table: str) -> int:
    return int((await engine.rows(sql.copy_count(table)))[0][0])


async def _copy_table(src: Engine, dst: Engine, table: str, progress: bool) -> TableCount:
    total, before = await _count(src, table), await _count(dst, table)
    insert = sql.copy_insert(table)
    with tqdm(total=total, desc=table, unit="row", file=sys.stderr, disable=not progress,
              dynamic_ncols=True) as bar:  # fmt: skip
        async for batch in _batches(src, table):
            async with dst.transaction():
                await dst.execute_many(insert, batch)
            bar.update(len(batch))
    return TableCount(table, total, await _count(dst, table), before)


async def _batches(src: Engine, table: str) -> AsyncIterator[Sequence[Row]]:
    """The rows of `table` in batches: jobs in queue order, the other tables in key order."""
    if table == "jobs":
        ids = [str(row[0]) for row in await src.rows(sql.COPY_JOB_ORDER)]
        for start in range(0, len(ids), BATCH):
            wanted = ids[start:start + BATCH]
            found = {row[0]: tuple(row) for row in await src.rows(sql.COPY_JOBS, (json.dumps(wanted),))}
            yield [found[job_id] for job_id in wanted if job_id in found]
        return
    size = BLOB_BATCH if table == "blobs" else BATCH
    key_at = [sql.COPY_TABLES[table][0].index(column) for column in sql.COPY_TABLES[table][1]]
    after: list[Any] | None = None
    while True:
        if after is None:
            rows = await src.rows(sql.copy_page(table, after=False), (size,))
        else:
            rows = await src.rows(sql.copy_page(table, after=True), (*after, size))
        if rows:
            yield [tuple(row) for row in rows]
        if len(rows) < size:
            return
        after = [rows[-1][i] for i in key_at]
