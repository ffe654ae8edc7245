"""Running ORM code from the event loop, and reading plain SQL rows as the ORM reads them."""

import time
from collections.abc import Callable, Sequence

from asgiref.sync import SyncToAsync
from django.db import connection, connections

# How often a kept-alive connection is checked (CONN_HEALTH_CHECKS' `SELECT 1`) and
# retired when older than CONN_MAX_AGE. Channels does both around every call, which
# cost a round trip per call: a quarter of the database thread's time during a burst
# of handshakes.
CHECK_EVERY_SECONDS = 1.0


def _tidy_connections() -> None:
    """Closes this thread's broken or obsolete connections, as Django does between requests.

    A connection that saw an error, or that must not outlive a call
    (CONN_MAX_AGE = 0), is looked at every time; a healthy kept-alive one at most
    once per CHECK_EVERY_SECONDS.
    """
    now = time.monotonic()
    for conn in connections.all(initialized_only=True):
        checked_at = getattr(conn, "chat_checked_at", 0.0)
        if (
            conn.errors_occurred
            or conn.settings_dict.get("CONN_MAX_AGE") == 0
            or now - checked_at >= CHECK_EVERY_SECONDS
        ):
            conn.close_if_unusable_or_obsolete()
            conn.chat_checked_at = now


class _DatabaseCall(SyncToAsync):
    """SyncToAsync that keeps the thread's database connections tidy around each call."""

    def thread_handler(self, loop, *args, **kwargs):
        _tidy_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            _tidy_connections()


def db_call(function: Callable, *, concurrent: bool = False) -> Callable:
    """Wraps ORM code for `await`, retiring broken or stale connections around it.

    By default calls run one at a time on one worker thread (Channels' default).
    `concurrent=True` lets reads run side by side on a thread pool; only on
    PostgreSQL, where each thread's connection is independent (SQLite serialises
    access anyway, and its shared in-memory test database locks across threads).
    """
    thread_sensitive = not (concurrent and connection.vendor == "postgresql")
    return _DatabaseCall(function, thread_sensitive=thread_sensitive)


# A column's converters, each with the expression it is called with.
Converters = list[tuple[Callable, object]]


def field_converters(field, alias: str) -> Converters:
    """What the ORM's compiler applies to `field` read from table `alias`: the backend's
    converters, then the field's own (`from_db_value`). A boolean read on SQLite comes
    back a bool, a date-time aware, a JSON field decoded."""
    column = field.get_col(alias)
    found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
    return [(converter, column) for converter in found]


def converted(row: Sequence, converters: Sequence[Converters]) -> list:
    """A plain SQL row with each column passed through its converters."""
    values = []
    for value, column_converters in zip(row, converters, strict=True):
        for converter, expression in column_converters:
            value = converter(value, expression, connection)
        values.append(value)
    return values


def rows_sql(types: Sequence[str], rows: Sequence[Sequence]) -> tuple[str, list]:
    """A query that yields `rows`, for a `WITH name(columns) AS (...)`, and its parameters.

    `types` gives each column's PostgreSQL type. PostgreSQL: one array parameter
    per column, unnested, so the statement's text is the same whatever the number
    of rows: psycopg splits a statement into its placeholders once per text (a
    `VALUES` list of a few hundred placeholders it split anew at every batch,
    which cost the live path more than the database's own work), and the
    prepared plan is kept. SQLite: a `VALUES` list, so `rows` must not be empty.
    """
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{kind}[]" for kind in types)
        columns = [[row[n] for row in rows] for n in range(len(types))]
        return f"SELECT * FROM unnest({arrays})", columns
    row = "(" + ", ".join(["%s"] * len(types)) + ")"
    return "VALUES " + ", ".join([row] * len(rows)), [value for row in rows for value in row]
