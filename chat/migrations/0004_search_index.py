"""The full-text index of message bodies, one kind per database.

PostgreSQL: a stored generated column holding to_tsvector('simple', body), so
the words of a row are worked out once, when it is written (the existing rows
as the column is added), and a GIN index over it. SQLite: an FTS5 table whose rowid is the message
id, filled from the existing messages; the services keep it in step, and a
trigger drops a message's entry when its row is removed (a user or room deleted).
"""

from django.db import migrations

# Kept here rather than imported: a migration must not change when the code does.
PG_COLUMN = "search_vector"
PG_INDEX = "message_body_search"
FTS_TABLE = "chat_message_search"


def create_index(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    message = apps.get_model("chat", "Message")
    table = message._meta.db_table
    if vendor == "postgresql":
        schema_editor.execute(
            f"ALTER TABLE {table} ADD COLUMN {PG_COLUMN} tsvector "
            f"GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, body)) STORED"
        )
        schema_editor.execute(f"CREATE INDEX {PG_INDEX} ON {table} USING gin ({PG_COLUMN})")
    elif vendor == "sqlite":
        for statement in (
            f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5("
            "body, tokenize = 'unicode61 remove_diacritics 2')",
            # Existing messages; deleted ones have no text to index.
            f"INSERT INTO {FTS_TABLE} (rowid, body) "
            f"SELECT id, body FROM {table} WHERE NOT deleted AND body <> ''",
            # A removed row (its sender, recipient or room deleted) leaves the index too.
            f"CREATE TRIGGER {FTS_TABLE}_forget AFTER DELETE ON {table} "
            f"BEGIN DELETE FROM {FTS_TABLE} WHERE rowid = old.id; END",
        ):
            schema_editor.execute(statement)


def drop_index(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    message = apps.get_model("chat", "Message")
    if vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
        schema_editor.execute(f"ALTER TABLE {message._meta.db_table} DROP COLUMN {PG_COLUMN}")
    elif vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {FTS_TABLE}_forget")
        schema_editor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("chat", "0003_messages_that_change")]

    operations = [migrations.RunPython(create_index, drop_index)]
