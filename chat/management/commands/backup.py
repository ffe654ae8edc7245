"""`manage.py backup`: the database and the uploaded files, into backups/ by default."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from chat.backups import BackupError, backup_create


class Command(BaseCommand):
    """Writes chat-<UTC time>.dump (or .sqlite3) and chat-<UTC time>-media.tar."""

    help = (
        "Backs up the database of DATABASE_URL (pg_dump custom format, or an SQLite "
        "copy) and the uploaded files (a tar) into --output-dir; prints the files."
    )

    def add_arguments(self, parser) -> None:
        """Reads --output-dir."""
        parser.add_argument(
            "--output-dir", default="backups", help="where to write (default: backups)"
        )

    def handle(self, *args, output_dir: str, **options) -> None:
        """Backs up, then names each file written."""
        try:
            made = backup_create(directory=Path(output_dir))
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        for path in made:
            self.stdout.write(str(path))
