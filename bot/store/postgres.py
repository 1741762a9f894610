"""The PostgreSQL engine (asyncpg, a connection pool): for communities whose bot outgrows one machine.

A statement outside a transaction runs on any pooled connection; a transaction holds one connection
for the task that opened it (a context variable routes that task's statements to it), so other tasks'
statements never join it. When the server can't be reached (a restart, a network cut), statements
wait and retry with backoff, saying so once in the log, and carry on when it is back: the jobs wait,
nothing is lost. A write whose connection dropped mid-flight is sent again; every write of the store
is conditional or keyed (claims, snapshots, charges), so a second run changes nothing a first run
already did (a claim whose answer was lost is taken over by the lapsed-submit path, as after a crash).

Migrations are versioned in `schema_version` and applied in one transaction under an advisory lock, so
several workers starting at once migrate the database once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from bot.config import database_location, database_password
from bot.store.engine import POSTGRES, DatabaseError, Row, newer_schema

log = logging.getLogger(__name__)
_LISTEN_PING = 5.0  # seconds between checks that the LISTEN connection is alive
_MIGRATION_LOCK = 0x1A6B07  # pg_advisory_xact_lock key: one migrating process at a time
_LOST = (
    OSError,  # refused, reset, unreachable
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,  # includes "connection does not exist" and "cannot connect now"
    asyncpg.InterfaceError,  # "connection is closed", "pool is closing" mid-flight
    asyncpg.AdminShutdownError,  # pg_terminate_backend, a server shutdown
    asyncpg.CannotConnectNowError,
    # a connection whose server end was terminated mid-statement can be left with its protocol out of
    # step ("cannot switch to state 11; another operation is in progress"): it is thrown away (see
    # _on_connection) and the statement sent again on another
    asyncpg.InternalClientError,
)


class PostgresEngine:
    dialect = POSTGRES
    shared = True

    def __init__(self, pool: asyncpg.Pool, url: str, reconnect_for: float, instance: str) -> None:
        self._pool = pool
        self.instance = instance  # every connection's application_name: its writes' events carry it
        self._url = url  # carries the password: never logged (messages use `_where`)
        self._where = database_location(url)
        self._reconnect_for = reconnect_for
        self._tx: contextvars.ContextVar[Any] = contextvars.ContextVar("transaction", default=None)
        self._down_since: float | None = None

    @classmethod
    async def connect(cls, url: str, *, reconnect_for: float = 300.0, max_size: int = 10) -> PostgresEngine:
        """A pool on `url`; DatabaseError (naming host and port, never the password) if it can't be
        reached or refuses us."""
        instance = f"imagine-bot/{secrets.token_hex(6)}"
        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=max_size, timeout=10,
                                             command_timeout=60,
                                             server_settings={"application_name": instance})  # fmt: skip
        except (*_LOST, asyncpg.PostgresError, ValueError) as exc:
            where = database_location(url)
            raise DatabaseError(f"Can't use the database {where}: {_reason(exc, url)}") from None
        return cls(pool, url, reconnect_for, instance)

    async def close(self) -> None:
        with contextlib.suppress(*_LOST):
            await asyncio.wait_for(self._pool.close(), 10)

    async def ping(self) -> bool:
        try:
            return bool(await self._pool.fetchval("SELECT 1", timeout=5) == 1)
        except (*_LOST, asyncpg.PostgresError):
            return False

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._tx.get() is not None:  # re-entered by the task holding it
            yield
            return
        connection, transaction = await self._retrying(self._begin)
        token = self._tx.set(connection)
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, asyncpg.InternalClientError):
                connection.terminate()
            with contextlib.suppress(*_LOST):
                await transaction.rollback()
            raise
        else:
            await transaction.commit()
        finally:
            self._tx.reset(token)
            await self._pool.release(connection)

    async def _begin(self) -> tuple[Any, Any]:
        """A pooled connection with a transaction started on it (nothing sent yet: safe to retry)."""
        connection = await self._pool.acquire()
        try:
            transaction = connection.transaction()
            await transaction.start()
        except BaseException:
            await self._pool.release(connection)
            raise
        return connection, transaction

    async def rows(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        prepared = self.dialect.prepare(statement)
        if (connection := self._tx.get()) is not None:
            return list(await connection.fetch(prepared, *params))
        return list(await self._retrying(self._on_connection, "fetch", prepared, *params))

    async def execute(self, statement: str, params: Sequence[Any] = ()) -> int:
        prepared = self.dialect.prepare(statement)
        if (connection := self._tx.get()) is not None:
            status = await connection.execute(prepared, *params)
        else:
            status = await self._retrying(self._on_connection, "execute", prepared, *params)
        last = str(status).rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def execute_many(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        prepared = self.dialect.prepare(statement)
        if (connection := self._tx.get()) is not None:
            await connection.executemany(prepared, rows)
        else:  # one batch is atomic (asyncpg): safe to send again if the server was lost
            await self._retrying(self._on_connection, "executemany", prepared, rows)

    async def _on_connection(self, method: str, *args: Any) -> Any:
        """`method(*args)` on a pooled connection; one left unusable is terminated, never pooled again."""
        connection = await self._pool.acquire()
        try:
            return await getattr(connection, method)(*args)
        except asyncpg.InternalClientError:
            connection.terminate()
            raise
        finally:
            await self._pool.release(connection)

    async def _retrying(self, call: Any, *args: Any) -> Any:
        """`call(*args)`, waiting out a lost server (with backoff) for `reconnect_for`."""
        attempt = 0
        while True:
            try:
                result = await call(*args)
            except _LOST as exc:
                now = time.monotonic()
                if self._down_since is None:
                    self._down_since = now
                    log.warning("the database %s can't be reached (%s); waiting for it", self._where,
                                type(exc).__name__)  # fmt: skip
                if now - self._down_since > self._reconnect_for:
                    raise DatabaseError(f"The database {self._where} has been unreachable for "
                                        f"{self._reconnect_for:.0f} s.") from None
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt))
                attempt += 1
                continue
            if self._down_since is not None:
                down = time.monotonic() - self._down_since
                log.warning("the database %s is back after %.1f s", self._where, down)
                self._down_since = None
            return result

    async def listen(self, channel: str, received: Callable[[str], None],
                     reconnected: Callable[[], Awaitable[None]]) -> None:
        """LISTEN on a connection of its own (a pooled one would be handed to others); it is pinged
        every few seconds, since an idle connection does not notice a server that went away."""
        first = True
        while True:
            try:
                connection = await self._retrying(self._listening_connection)
            except DatabaseError:
                continue  # still down after reconnect_for: keep waiting (nothing else to do here)
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _, lost=lost: lost.set())
            try:
                await connection.add_listener(channel, lambda *args: received(str(args[-1])))
                if not first:
                    await reconnected()
                first = False
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), _LISTEN_PING)
                    if not lost.is_set():
                        await connection.fetchval("SELECT 1", timeout=_LISTEN_PING)
            except _LOST:
                log.warning("the database %s: change events interrupted; reconnecting", self._where)
            finally:
                connection.terminate()

    async def _listening_connection(self) -> Any:
        return await asyncpg.connect(self._url, server_settings={"application_name": self.instance})

    async def migrate(self, migrations: Sequence[str]) -> None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            version = int(await connection.fetchval("SELECT max(version) FROM schema_version") or 0)
            if version > len(migrations):
                raise newer_schema(version, len(migrations), self._where)
            for script in migrations[version:]:
                await connection.execute(script)
            if len(migrations) > version:
                await connection.execute("DELETE FROM schema_version")
                await connection.execute("INSERT INTO schema_version (version) VALUES ($1)", len(migrations))


def _reason(exc: BaseException, url: str) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError | asyncio.TimeoutError):
        text = "nothing answers there (is PostgreSQL running, and is the host and port right?)"
    secret = database_password(url)
    return text.replace(secret, "[REDACTED]") if secret else text
