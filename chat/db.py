"""Running ORM code from the event loop."""

from collections.abc import Callable

from channels.db import database_sync_to_async
from django.db import connection


def db_call(function: Callable, *, concurrent: bool = False) -> Callable:
    """Wraps ORM code for `await`, closing stale connections around it as Channels does.

    By default calls run one at a time on one worker thread (Channels' default).
    `concurrent=True` lets reads run side by side on a thread pool; only on
    PostgreSQL, where each thread's connection is independent (SQLite serialises
    access anyway, and its shared in-memory test database locks across threads).
    """
    thread_sensitive = not (concurrent and connection.vendor == "postgresql")
    return database_sync_to_async(function, thread_sensitive=thread_sensitive)
