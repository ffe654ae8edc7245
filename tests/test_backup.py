"""Backups: `manage.py backup` then `manage.py restore` into a fresh database gives the
same history back, read through the site's own selectors, and the uploaded files.
"""

import json
import os
import re
import subprocess
import sys
import urllib.parse
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tests.server import ROOT, Database, base_env

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL behaviour (runs in the PostgreSQL pass)"
)

# Posts a room message and a direct message through the site's services, and keeps
# one file in the uploads storage.
SEED = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from chat.messaging.store import message_store
from chat.protocol import Send
users = get_user_model().objects
alice = users.create_user("alice", password="a-long-enough-passphrase-42")
users.create_user("bob", password="a-long-enough-passphrase-42")
message_store(sender=alice, send=Send(body="kept in the room", client_id="b1", room="general"))
message_store(sender=alice, send=Send(body="kept between us", client_id="b2", to="bob"))
default_storage.save("uploads/kept.txt", ContentFile(b"the file's bytes"))
"""

# Reads bob's history of the room and of his conversation with alice, and the file.
READ = """
import json
import django
django.setup()
from django.core.files.storage import default_storage
from chat.messaging.reads import history_for_user
from chat.selectors import user_get
bob = user_get(username="bob")
pages = {
    "room": history_for_user(user_id=bob.pk, room="general", with_=None, before=None,
                             after=None, limit=50)[0],
    "direct": history_for_user(user_id=bob.pk, room=None, with_="alice", before=None,
                               after=None, limit=50)[0],
}
with default_storage.open("uploads/kept.txt") as file:
    kept = file.read().decode()
print(json.dumps({
    "history": {name: [(m.sender, m.body) for m in page] for name, page in pages.items()},
    "file": kept,
}))
"""

EXPECTED = {
    "history": {
        "room": [["alice", "kept in the room"]],
        "direct": [["alice", "kept between us"]],
    },
    "file": "the file's bytes",
}


def run(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Runs `python *args` in the checkout with `env` and the site's settings."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "chatsite.settings"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def manage(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """Runs `manage.py *args`, insisting that it succeeds."""
    result = run(env, "manage.py", *args, stdin=stdin)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def round_trip(source_env: dict, target_env: dict, backups: Path) -> tuple[list[Path], dict]:
    """Seeds the source, backs it up, restores into the target; returns the files and reads."""
    manage(source_env, "migrate", "--noinput", "-v0")
    result = run(source_env, "-c", SEED)
    assert result.returncode == 0, result.stderr
    made = manage(source_env, "backup", "--output-dir", str(backups)).stdout.split()
    manage(target_env, "restore", "--noinput", made[0])
    result = run(target_env, "-c", READ)
    assert result.returncode == 0, result.stderr
    return [Path(path) for path in made], json.loads(result.stdout)


@pytest.fixture
def sqlite_envs(tmp_path):
    """Two SQLite sites (database file and media directory each), source and target."""
    return tuple(
        base_env(
            DATABASE_URL=f"sqlite:///{tmp_path / name / 'db.sqlite3'}",
            MEDIA_ROOT=str(tmp_path / name / "media"),
        )
        for name in ("source", "target")
    )


def test_sqlite_backup_restores_history_and_files_into_a_fresh_site(sqlite_envs, tmp_path):
    for env in sqlite_envs:
        Path(env["MEDIA_ROOT"]).parent.mkdir()
    made, read_back = round_trip(*sqlite_envs, tmp_path / "backups")
    stamp = made[0].name.removesuffix(".sqlite3")
    assert re.fullmatch(r"chat-\d{8}T\d{6}Z", stamp)  # the UTC time of the backup
    assert [path.name for path in made] == [f"{stamp}.sqlite3", f"{stamp}-media.tar"]
    assert read_back == EXPECTED


@postgres_only
def test_postgres_backup_restores_history_and_files_into_a_fresh_database(tmp_path):
    source = Database()
    target_name = f"chat_restore_{os.getpid()}"
    admin = urllib.parse.urlsplit(source.url)
    target_url = urllib.parse.urlunsplit(admin._replace(path=f"/{target_name}"))
    admin_url = urllib.parse.urlunsplit(admin._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {target_name}")
    try:
        source_env = base_env(DATABASE_URL=source.url, MEDIA_ROOT=str(tmp_path / "source"))
        target_env = base_env(DATABASE_URL=target_url, MEDIA_ROOT=str(tmp_path / "target"))
        made, read_back = round_trip(source_env, target_env, tmp_path / "backups")
        assert made[0].suffix == ".dump"
        assert made[0].read_bytes().startswith(b"PGDMP")  # pg_dump's custom format
        assert read_back == EXPECTED
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {target_name} WITH (FORCE)")
        source.drop()


def test_restore_asks_first_and_changes_nothing_without_a_yes(sqlite_envs, tmp_path):
    source, target = sqlite_envs
    for env in sqlite_envs:
        Path(env["MEDIA_ROOT"]).parent.mkdir()
    manage(source, "migrate", "--noinput", "-v0")
    backup = manage(source, "backup", "--output-dir", str(tmp_path / "b")).stdout.split()[0]
    refused = run(target, "manage.py", "restore", backup, stdin="no\n")
    assert refused.returncode == 1
    assert "Type 'yes' to continue" in refused.stdout
    assert "Restore cancelled" in refused.stderr
    assert not (tmp_path / "target" / "db.sqlite3").exists()


def test_restore_refuses_a_file_that_is_not_a_backup_of_this_kind(sqlite_envs, tmp_path):
    source, _ = sqlite_envs
    Path(source["MEDIA_ROOT"]).parent.mkdir()
    manage(source, "migrate", "--noinput", "-v0")
    stranger = tmp_path / f"{uuid.uuid4().hex}.dump"
    stranger.write_bytes(b"PGDMP\x01\x0e\x00 not for SQLite")
    refused = run(source, "manage.py", "restore", "--noinput", str(stranger))
    assert refused.returncode == 1
    assert f"{stranger} is not an SQLite database" in refused.stderr
    # The site's database is untouched: it still migrates as a no-op and reads.
    assert "No migrations to apply" in manage(source, "migrate", "--noinput").stdout
