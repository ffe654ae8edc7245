"""When each user was last online, kept in the database so it outlives Redis and restarts.

Written when a user goes offline, and for everyone online on a process every
CHAT_LAST_SEEN_EVERY_SECONDS (so a crash of every process loses at most that much);
never per frame.
"""

from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from chat.errors import ChatError, ErrorCode
from chat.models import LastSeen
from chat.selectors import user_get


def last_seen_record(*, username: str, at: datetime) -> datetime:
    """Records that `username` was online at `at` (never moving the record back); returns it."""
    user_id = (
        get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()
    )
    if user_id is None:
        return at  # deleted meanwhile: nothing to keep
    if LastSeen.objects.filter(user_id=user_id, last_seen__lt=at).update(last_seen=at):
        return at
    try:
        with transaction.atomic():
            LastSeen.objects.create(user_id=user_id, last_seen=at)
    except IntegrityError:
        # Already there and at least as recent (or written by another process just now).
        return LastSeen.objects.get(user_id=user_id).last_seen
    return at


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
