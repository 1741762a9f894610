"""The seam between the repositories and a database: an `Engine` runs SQL and holds transactions.

Statements are written once, in the SQL both engines speak, with `?` placeholders and a few named
fragments where the dialects differ (`{greatest}`, `{ids}`, `{seq}`, `{for_update}`, `{blob}`);
each engine turns a statement into its own once (`Dialect.prepare`, cached).

`database:` in the config is a path (SQLite, the embedded default) or a `postgresql://` URL;
`open_engine` picks the engine. A URL's password is a secret: messages name the database by
`config.database_location` (host, port and name only).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.config import is_database_url

Row = Sequence[Any]


class DatabaseError(Exception):
    """The database can't be used (unreachable at start, or at a schema this code does not know); the
    message is for the operator and carries no credentials."""


@dataclass(frozen=True)
class Dialect:
    """How one engine writes the few things the two dialects spell differently."""

    name: str
    fragments: dict[str, str]
    numbered: bool  # placeholders are $1, $2, ... (PostgreSQL) rather than ? (SQLite)
    key_lock: str | None  # a statement taking a lock on a text key until the transaction ends
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def prepare(self, statement: str) -> str:
        """`statement` in this dialect (fragments filled in, placeholders numbered if need be)."""
        prepared = self._cache.get(statement)
        if prepared is None:
            prepared = statement.format_map(self.fragments) if "{" in statement else statement
            if self.numbered:
                counter = iter(range(1, 10_000))
                prepared = re.sub(r"\?", lambda _: f"${next(counter)}", prepared)
            self._cache[statement] = prepared
        return prepared


SQLITE = Dialect(
    "sqlite",
    {
        "greatest": "max",
        "ids": "json_each(?)",
        "seq": "rowid",
        "for_update": "",
        "blob": "BLOB",
    },
    numbered=False,
    key_lock=None,  # a write transaction holds the whole file
)
POSTGRES = Dialect(
    "postgresql",
    {
        "greatest": "GREATEST",
        "ids": "json_array_elements_text(CAST(? AS json))",
        "seq": "seq",
        "for_update": " FOR UPDATE",
        "blob": "BYTEA",
    },
    numbered=True,
    key_lock="SELECT pg_advisory_xact_lock(hashtext(?))",
)


class Engine(Protocol):
    """What the repositories need from a database."""

    dialect: Dialect
    shared: bool  # several processes may use it at once (PostgreSQL), rather than one (SQLite)
    instance: str  # this process among the database's users: the origin its change events carry

    async def rows(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; its rows (a write with RETURNING returns what it wrote)."""
        ...

    async def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run one write; the number of rows it changed."""
        ...

    async def execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one write once per row of parameters (a batch), inside the current transaction if any."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """One write transaction for the block: the current task's statements run inside it, other
        tasks' statements never do; an exception rolls it back."""
        ...

    async def migrate(self, migrations: Sequence[str]) -> None:
        """Apply the scripts this database has not run yet, once even when several processes start at
        the same moment; DatabaseError when the database is newer than `migrations`."""
        ...

    async def listen(self, channel: str, received: Callable[[str], None],
                     reconnected: Callable[[], Awaitable[None]]) -> None:
        """Pass every payload sent to `channel` by any process to `received`, until cancelled (the
        database sends one for every change of a job, and for every inbox entry of a chat, in the
        transaction that made it: see the PostgreSQL triggers in migrations.py); after
        the connection was lost and made again, await `reconnected` (to catch up what was missed)."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


def newer_schema(version: int, known: int, where: str) -> DatabaseError:
    return DatabaseError(f"The database {where} is at schema version {version}, newer than this version of "
                         f"imagine-bot knows ({known}); upgrade imagine-bot.")


async def open_engine(database: str | Path, create: bool = True) -> Engine:
    """The engine for `database` (a path or a postgresql:// URL), connected; not yet migrated.
    `create=False`: a SQLite file that does not exist yet is a DatabaseError, and nothing is created."""
    if is_database_url(database):
        from bot.store.postgres import PostgresEngine

        return await PostgresEngine.connect(str(database))
    from bot.store.sqlite import SqliteEngine

    return await SqliteEngine.connect(Path(database), create=create)
