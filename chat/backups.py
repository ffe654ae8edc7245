"""Backups: the database (pg_dump's custom format, or SQLite's online backup) and the
uploaded files (a tar of the storage directory), and restoring both.
"""

import os
import sqlite3
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

from django.core.files.storage import FileSystemStorage, storages
from django.db import connections
from django.db.backends.postgresql.client import DatabaseClient

# The first bytes of each kind of backup, checked before anything is overwritten.
PG_DUMP_MAGIC = b"PGDMP"
SQLITE_MAGIC = b"SQLite format 3\x00"
MEDIA_SUFFIX = "-media.tar"


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why."""


def backup_create(*, directory: Path, now: datetime | None = None) -> list[Path]:
    """Backs up the database and the uploaded files into `directory`; returns the files."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    directory.mkdir(parents=True, exist_ok=True)
    settings_dict = connections["default"].settings_dict
    if connections["default"].vendor == "postgresql":
        database = directory / f"chat-{stamp}.dump"
        _refuse_existing(database)
        _pg_dump(settings_dict, database)
    else:
        database = directory / f"chat-{stamp}.sqlite3"
        _refuse_existing(database)
        _sqlite_copy(source=_sqlite_file(settings_dict), target=database)
    made = [database]
    media = _media_root()
    if media is not None:
        archive = media_archive_of(database)
        _refuse_existing(archive)
        with tarfile.open(archive, "w") as tar:
            if media.is_dir():
                tar.add(media, arcname=".")
        made.append(archive)
    return made


def backup_restore(*, path: Path) -> list[Path]:
    """Replaces the database with the backup at `path`, then puts its files back.

    Returns what was restored: the database backup and, when one lies beside it,
    the media archive. Raises BackupError for a missing file or the wrong kind.
    """
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    with path.open("rb") as file:
        head = file.read(len(SQLITE_MAGIC))
    settings_dict = connections["default"].settings_dict
    connections["default"].close()  # nothing of ours holds the database meanwhile
    if connections["default"].vendor == "postgresql":
        if not head.startswith(PG_DUMP_MAGIC):
            raise BackupError(
                f"{path} is not a pg_dump custom-format file; DATABASE_URL is PostgreSQL"
            )
        _pg_restore(settings_dict, path)
    else:
        if head != SQLITE_MAGIC:
            raise BackupError(f"{path} is not an SQLite database; DATABASE_URL is SQLite")
        _sqlite_copy(source=path, target=_sqlite_file(settings_dict))
    restored = [path]
    archive, media = media_archive_of(path), _media_root()
    if media is not None and archive.is_file():
        media.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            # The "data" filter refuses links out of the directory and absolute names.
            tar.extractall(media, filter="data")
        restored.append(archive)
    return restored


def media_archive_of(database_backup: Path) -> Path:
    """Returns the media archive's path that belongs to a database backup."""
    return database_backup.with_name(database_backup.stem + MEDIA_SUFFIX)


def _refuse_existing(path: Path) -> None:
    if path.exists():
        raise BackupError(f"{path} already exists")


def _media_root() -> Path | None:
    """The directory of the uploaded files, or None when they live elsewhere (S3)."""
    storage = storages["default"]
    return Path(storage.location) if isinstance(storage, FileSystemStorage) else None


# --- PostgreSQL: pg_dump and pg_restore, connected as Django is -------------------


def _libpq(settings_dict: dict) -> tuple[list[str], dict[str, str]]:
    """Connection options for pg_dump and pg_restore; the password goes in the environment."""
    _, secrets = DatabaseClient.settings_to_cmd_args_env(settings_dict, [])
    args = [
        f"{flag}={settings_dict[key]}"
        for flag, key in (("--username", "USER"), ("--host", "HOST"), ("--port", "PORT"))
        if settings_dict.get(key)
    ]
    args.append(f"--dbname={settings_dict['NAME']}")
    return args, {**os.environ, **(secrets or {})}


def _pg_dump(settings_dict: dict, target: Path) -> None:
    connect, env = _libpq(settings_dict)
    # --no-owner: the backup restores into a database owned by whoever restores it.
    command = ["pg_dump", "--format=custom", "--no-owner", f"--file={target}", *connect]
    _run(command, env)


def _pg_restore(settings_dict: dict, source: Path) -> None:
    connect, env = _libpq(settings_dict)
    # --clean --if-exists: drop what the backup holds first, so it replaces, not adds;
    # one transaction, so a failed restore leaves the database as it was.
    options = ["--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction"]
    _run(["pg_restore", *options, *connect, str(source)], env)


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True)
    except FileNotFoundError:
        raise BackupError(
            f"{command[0]} is not installed (Debian: apt-get install postgresql-client)"
        ) from None
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()}")


# --- SQLite: the online backup API, safe while the site writes ---------------------


def _sqlite_file(settings_dict: dict) -> Path:
    name = str(settings_dict["NAME"])
    if name in ("", ":memory:") or name.startswith("file:"):
        raise BackupError(f"the SQLite database {name!r} is not a file")
    return Path(name)


def _sqlite_copy(*, source: Path, target: Path) -> None:
    """Copies a whole SQLite database page by page, as `sqlite3 .backup` does."""
    if not source.is_file():
        raise BackupError(f"the SQLite database {source} does not exist")
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    writer = sqlite3.connect(target, timeout=20)
    try:
        reader.backup(writer)
    except sqlite3.Error as exc:
        raise BackupError(f"copying {source} to {target} failed: {exc}") from None
    finally:
        writer.close()
        reader.close()
