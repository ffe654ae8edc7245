"""The benchmark's stand-in for autovacuum's ANALYZE, on the suite's PostgreSQL.

Some machines run PostgreSQL with autovacuum off; there the tables a benchmark
scenario filled would keep the statistics of when they were empty, and the next
scenario would be measured on plans no deployment makes. `autovacuum_analyze` runs
what autovacuum would have, by its rule, and nothing when autovacuum is on.
"""

import secrets

import psycopg
import pytest
from django.db import connection

from bench.targets import autovacuum_analyze

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL only (runs in the PostgreSQL pass)"
)


@pytest.fixture
def database_url():
    """A database of its own on the suite's server, dropped after the test."""
    settings = connection.settings_dict
    server = f"postgresql://{settings['USER']}@{settings['HOST']}:{settings['PORT']}"
    name = f"chat_run_stats_{secrets.token_hex(4)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _write(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        # The counts autovacuum reads, sent before the statement's answer comes back.
        db.execute("SELECT pg_stat_force_next_flush()")
        db.execute(statement)


def test_a_table_is_analyzed_once_more_rows_changed_than_autovacuums_rule(database_url):
    with psycopg.connect(database_url, autocommit=True) as db:
        autovacuum = db.execute("SHOW autovacuum").fetchone()[0]
        threshold = int(db.execute("SHOW autovacuum_analyze_threshold").fetchone()[0])
    _write(database_url, "CREATE TABLE filled (n int)")
    _write(database_url, "ANALYZE filled")  # empty: the threshold alone counts
    _write(database_url, f"INSERT INTO filled SELECT generate_series(1, {threshold})")
    assert autovacuum_analyze(database_url) == []  # not more than the threshold yet

    _write(database_url, "INSERT INTO filled VALUES (0)")
    if autovacuum == "on":
        # The server's own autovacuum does it; the benchmark leaves it alone.
        assert autovacuum_analyze(database_url) == []
        return
    assert autovacuum_analyze(database_url) == ["public.filled"]
    with psycopg.connect(database_url) as db:
        assert (
            db.execute("SELECT reltuples FROM pg_class WHERE relname = 'filled'").fetchone()[0]
            == threshold + 1
        )
    assert autovacuum_analyze(database_url) == []  # done: nothing changed since
