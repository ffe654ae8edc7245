"""When each user was last online, kept in the database so it outlives Redis and restarts.

Written when a user goes offline, and for everyone online on a process every
CHAT_LAST_SEEN_EVERY_SECONDS (so a crash of every process loses at most that much);
never per frame.
"""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from chat.errors import ChatError, ErrorCode
from chat.models import LastSeen
from chat.selectors import user_get


def last_seen_record(*, username: str, at: datetime) -> datetime:
    """Records that `username` was online at `at` (never moving the record back); returns it."""
    return last_seen_record_many(seen=[(username, at)]).get(username, at)


# Users per statement: two parameters each, far below SQLite's and PostgreSQL's limits.
_RECORD_CHUNK = 400


def last_seen_record_many(*, seen: list[tuple[str, datetime]]) -> dict[str, datetime]:
    """Records when each of these users was online (never moving a record back), in a
    few statements for them all; returns each user's recorded time (a user deleted
    meanwhile is left out).

    So a crowd going offline at once (a proxy restarted, a network cut) costs a few
    statements, not three and a commit for each user in turn (docs/performance.md).
    """
    latest: dict[str, datetime] = {}
    for username, at in seen:
        latest[username] = max(at, latest.get(username, at))
    ids = dict(get_user_model().objects.filter(username__in=latest).values_list("pk", "username"))
    rows = [(user_id, latest[username]) for user_id, username in sorted(ids.items())]
    # One upsert that keeps the later time: the ORM's bulk upsert would overwrite a
    # newer record with an older time. GREATEST in PostgreSQL, MAX in SQLite.
    table = connection.ops.quote_name(LastSeen._meta.db_table)
    later = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(rows), _RECORD_CHUNK):
            chunk = rows[start : start + _RECORD_CHUNK]
            cursor.execute(
                f"INSERT INTO {table} (user_id, last_seen) VALUES "
                + ", ".join(["(%s, %s)"] * len(chunk))
                + " ON CONFLICT (user_id) DO UPDATE"
                f" SET last_seen = {later}({table}.last_seen, EXCLUDED.last_seen)",
                [
                    value
                    for user_id, at in chunk
                    for value in (user_id, connection.ops.adapt_datetimefield_value(at))
                ],
            )
    recorded = LastSeen.objects.filter(user_id__in=ids).values_list("user_id", "last_seen")
    return {ids[user_id]: at for user_id, at in recorded}


def last_seen_touch(*, usernames: list[str], at: datetime) -> None:
    """Records `at` as the last-seen time of every one of `usernames` (all online now)."""
    user_ids = get_user_model().objects.filter(username__in=usernames).values_list("pk", flat=True)
    LastSeen.objects.bulk_create(
        [LastSeen(user_id=user_id, last_seen=at) for user_id in user_ids],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["last_seen"],
    )


def last_seen_of(*, username: str) -> datetime | None:
    """When an active user was last online (None if never recorded); `not_found` if no such user."""
    user = user_get(username=username)
    if user is None:
        raise ChatError(ErrorCode.NOT_FOUND, f"no user named {username!r}")
    return LastSeen.objects.filter(user_id=user.pk).values_list("last_seen", flat=True).first()
