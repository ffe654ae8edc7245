"""A real database failure for a test: a table renamed away for a block."""

import contextlib

from asgiref.sync import sync_to_async
from django.db import connection


@sync_to_async
def _rename(old: str, new: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')


@contextlib.asynccontextmanager
async def table_away(model):
    """Renames `model`'s table for the block, so that every statement reading it fails
    as on a broken database (on PostgreSQL also on the event loop's own connections)."""
    table = model._meta.db_table
    await _rename(table, f"{table}_away")
    try:
        yield
    finally:
        await _rename(f"{table}_away", table)
