"""The handshake's reads on PostgreSQL, run on the event loop itself.

A handshake reads its login session and user, then its greeting: two calls that
`db_call` would each send to a worker thread. In a storm of handshakes those hops
cost more than the reads: a session and user read took 0.4 ms of CPU in one
thread and about 1.0 ms through the thread pool, where six threads and the event
loop took turns at the interpreter lock (docs/performance.md, seventeenth step).
Here the same statements go over a few asynchronous psycopg connections of the
loop's own, with no thread and no hop.

A read is written once, as steps: a generator that yields each `Query` and is sent
back its rows, then returns its answer. `run_steps` runs steps on Django's
connection (SQLite, the tests, any thread); `read` runs them here on PostgreSQL, or
through `db_call` when this path is off (SQLite, or `CHAT_LOOP_DB_CONNECTIONS=0`).

The connections are made from Django's own settings for the database (its
parameters, adapters and binding), kept per event loop, and follow CONN_MAX_AGE:
0 closes each after its read. A stopping server closes the kept ones
(`close_all`, chatsite/server.py). A read that fails on a kept connection because the
connection died (a database restart) runs once more on a new one; errors reach
the caller as Django's database errors, as `db_call`'s do.
"""

import asyncio
import functools
import logging
import time
import weakref
from collections.abc import Callable, Generator
from typing import Any, NamedTuple

import psycopg
from django.conf import settings
from django.db import connection, connections
from psycopg import sql as pg_sql

from chat.db import db_call

logger = logging.getLogger(__name__)


class Query(NamedTuple):
    """One statement of a read and its parameters."""

    sql: str
    params: Any


# What a read's steps are: a generator yielding queries, sent each one's rows.
Steps = Generator[Query, list, Any]


def run_steps(steps: Steps) -> Any:
    """Runs a read's steps on Django's connection of the calling thread; returns its answer."""
    try:
        query = next(steps)
    except StopIteration as done:
        return done.value
    with connection.cursor() as cursor:
        while True:
            cursor.execute(query.sql, query.params)
            try:
                query = steps.send(cursor.fetchall())
            except StopIteration as done:
                return done.value


def _run_in_thread(make_steps: Callable[..., Steps], *args, **kwargs) -> Any:
    return run_steps(make_steps(*args, **kwargs))


async def read(make_steps: Callable[..., Steps], *args, **kwargs) -> Any:
    """Runs `make_steps(*args, **kwargs)`: on the loop's own connections on PostgreSQL,
    else on a database thread. Returns the steps' answer."""
    if not enabled():
        return await db_call(_run_in_thread, concurrent=True)(make_steps, *args, **kwargs)
    pool = _pool()
    with connection.wrap_database_errors:  # psycopg's errors as Django's
        try:
            return await pool.run(make_steps(*args, **kwargs))
        except _Stale:
            # The kept connection had died while idle: once more, on a new one.
            return await pool.run(make_steps(*args, **kwargs), fresh=True)


def enabled() -> bool:
    """Tells whether reads run on the loop's own connections (PostgreSQL, and not turned off)."""
    return _vendor() == "postgresql" and settings.CHAT_LOOP_DB_CONNECTIONS > 0


@functools.cache
def _vendor() -> str:
    # Asked a few times a handshake; the database's kind does not change while the
    # process runs, and the asking went through Django's per-thread connection lookup.
    return connection.vendor


class _Stale(Exception):
    """A kept connection turned out dead (a database restart, an idle timeout): the
    read, which changes nothing, runs again on a new one."""


class _Pool:
    """At most `size` connections of one event loop; reads wait for a free one."""

    def __init__(self, size: int) -> None:
        self._free = asyncio.Semaphore(size)
        self._idle: list[tuple[psycopg.AsyncConnection, float]] = []  # (connection, opened at)

    async def run(self, steps: Steps, *, fresh: bool = False) -> Any:
        async with self._free:
            kept = None if fresh else self._take_idle()
            conn = kept[0] if kept else await _connect()
            opened_at = kept[1] if kept else time.monotonic()
            try:
                answer = await _drive(conn, steps)
            except psycopg.OperationalError as exc:
                died = conn.closed  # the connection broke, not just the statement
                _discard(conn)
                if kept is not None and died:
                    raise _Stale from exc
                raise
            except BaseException:
                # Cancelled mid-statement, or a bug: the connection's state is unknown.
                _discard(conn)
                raise
            self._give_back(conn, opened_at)
            return answer

    def _take_idle(self) -> tuple[psycopg.AsyncConnection, float] | None:
        while self._idle:
            conn, opened_at = self._idle.pop()
            if not conn.closed:
                return conn, opened_at
        return None

    def _give_back(self, conn: psycopg.AsyncConnection, opened_at: float) -> None:
        max_age = connections["default"].settings_dict["CONN_MAX_AGE"]
        if max_age is not None and time.monotonic() - opened_at >= max_age:
            _discard(conn)  # CONN_MAX_AGE 0: one read per connection, as Django does
        else:
            self._idle.append((conn, opened_at))

    def close(self) -> int:
        closed = 0
        while self._idle:
            conn = self._idle.pop()[0]
            closed += not conn.closed
            _discard(conn)
        return closed


async def _drive(conn: psycopg.AsyncConnection, steps: Steps) -> Any:
    try:
        query = next(steps)
    except StopIteration as done:
        return done.value
    cursor = conn.cursor()
    while True:
        await cursor.execute(query.sql, query.params)
        try:
            query = steps.send(await cursor.fetchall())
        except StopIteration as done:
            return done.value


async def _connect() -> psycopg.AsyncConnection:
    """A connection made as Django makes its own, but asynchronous and in autocommit."""
    params = connections["default"].get_connection_params()
    # Django names its synchronous cursor class: a ClientCursor binds parameters in
    # Python, any other psycopg cursor on the server. Their asynchronous twins do the same.
    client_side = issubclass(params.pop("cursor_factory"), psycopg.ClientCursor)
    params["cursor_factory"] = psycopg.AsyncClientCursor if client_side else psycopg.AsyncCursor
    conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
    role = connections["default"].settings_dict["OPTIONS"].get("assume_role")
    if role:
        await conn.execute(pg_sql.SQL("SET ROLE {}").format(pg_sql.Identifier(role)))
    return conn


def _discard(conn: psycopg.AsyncConnection) -> None:
    # Synchronous, so that it also works while a task is being cancelled.
    if not conn.closed:
        conn.pgconn.finish()


# One pool per event loop: a connection waits on the loop that made it.
_pools: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool]" = weakref.WeakKeyDictionary()


def _pool() -> _Pool:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool(settings.CHAT_LOOP_DB_CONNECTIONS)
    return pool


def close_all() -> int:
    """Closes every kept connection of every loop (a stopping server, and the tests
    before they drop a database); returns how many were closed.

    Each ends with libpq's goodbye to the server, where an exit that left them open
    would end them with an unexpected EOF.
    """
    closed = sum(pool.close() for pool in list(_pools.values()))
    if closed:
        logger.info("closed %d database connections of the event loop", closed)
    return closed
