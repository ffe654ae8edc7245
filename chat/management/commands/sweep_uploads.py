"""`manage.py sweep_uploads`: deletes uploads never attached to a message, with their files."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from chat.files.uploads import uploads_sweep


class Command(BaseCommand):
    """Deletes orphan uploads older than --older-than-hours (24 by default)."""

    help = (
        "Deletes uploads never attached to a message and older than --older-than-hours "
        "(default 24), and their files in storage; prints how many."
    )

    def add_arguments(self, parser) -> None:
        """Reads --older-than-hours."""
        parser.add_argument(
            "--older-than-hours",
            type=float,
            default=24.0,
            help="only uploads at least this many hours old (default 24)",
        )

    def handle(self, *args, older_than_hours: float, **options) -> None:
        """Sweeps, then says how many uploads went."""
        if older_than_hours < 0:
            raise CommandError("--older-than-hours must be 0 or more")
        count = uploads_sweep(older_than=timedelta(hours=older_than_hours))
        self.stdout.write(f"{count} unattached upload{'s' if count != 1 else ''} deleted")
