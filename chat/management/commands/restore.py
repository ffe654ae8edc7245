"""`manage.py restore FILE`: replaces the database with a backup and puts its files back."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from chat.backups import BackupError, backup_restore, media_archive_of


class Command(BaseCommand):
    """Restores a backup made by `manage.py backup`, after asking (unless --noinput)."""

    help = (
        "Replaces the database of DATABASE_URL with FILE (a backup made by "
        "`manage.py backup`) and restores the uploaded files from the -media.tar "
        "beside it. Stop the site first."
    )

    def add_arguments(self, parser) -> None:
        """Reads FILE and --noinput."""
        parser.add_argument("file", help="backups/chat-<time>.dump or .sqlite3")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="do not ask for confirmation",
        )

    def handle(self, *args, file: str, interactive: bool, **options) -> None:
        """Asks, restores, then names what was restored."""
        path = Path(file)
        if interactive:
            name = connections["default"].settings_dict["NAME"]
            media = media_archive_of(path)
            answer = input(
                f"This replaces everything in the database {name} with {path}"
                + (f" and puts back the files of {media}" if media.is_file() else "")
                + ".\nType 'yes' to continue: "
            )
            if answer.strip() != "yes":
                raise CommandError("Restore cancelled; nothing changed.")
        try:
            restored = backup_restore(path=path)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        for restored_path in restored:
            self.stdout.write(f"restored {restored_path}")
