"""Reading messages back: history pages, sync pages, and the visibility rules behind them.

A user sees every room message and the direct messages they sent or received;
nothing here ever returns another pair's direct messages.
"""

from django.db.models import Q, QuerySet

from chat.errors import ChatError, ErrorCode
from chat.models import DirectConversation, Message
from chat.protocol import SYNC_PAGE_SIZE, StoredMessage
from chat.selectors import room_get, user_get

_FIELDS = (
    "id",
    "seq",
    "sender__username",
    "body",
    "sent_at",
    "client_id",
    "room__name",
    "recipient__username",
)


def _stored(rows: QuerySet) -> list[StoredMessage]:
    return [_from_row(row) for row in rows.values(*_FIELDS)]


def _from_row(row: dict) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        seq=row["seq"],
        sender=row["sender__username"],
        body=row["body"],
        sent_at=row["sent_at"],
        client_id=row["client_id"],
        room=row["room__name"],
        to=row["recipient__username"],
    )


def messages_by_client_id(*, keys: set[tuple[int, str]]) -> dict[tuple[int, str], StoredMessage]:
    """Finds the messages already stored under these (sender id, client_id) keys."""
    if not keys:
        return {}
    rows = Message.objects.filter(
        sender_id__in={sender_id for sender_id, _ in keys},
        client_id__in={client_id for _, client_id in keys},
    ).values(*_FIELDS, "sender_id")
    found = {(row["sender_id"], row["client_id"]): _from_row(row) for row in rows}
    return {key: message for key, message in found.items() if key in keys}


def direct_pair(user_a_id: int, user_b_id: int) -> tuple[int, int]:
    """Orders a pair of user ids the way DirectConversation stores them."""
    return (user_a_id, user_b_id) if user_a_id <= user_b_id else (user_b_id, user_a_id)


def direct_conversation_get(*, user_a_id: int, user_b_id: int) -> DirectConversation | None:
    """Finds the direct conversation of two users, if they ever wrote to each other."""
    low, high = direct_pair(user_a_id, user_b_id)
    return DirectConversation.objects.filter(user_low_id=low, user_high_id=high).first()


def direct_partners(*, user_id: int, limit: int = 100) -> list[str]:
    """Lists the usernames the user has direct conversations with, newest first."""
    conversations = (
        DirectConversation.objects.filter(Q(user_low_id=user_id) | Q(user_high_id=user_id))
        .order_by("-id")
        .values_list("user_low_id", "user_low__username", "user_high__username")[:limit]
    )
    return [high if low_id == user_id else low for low_id, low, high in conversations]


def message_page(
    *,
    room_id: int | None = None,
    direct_id: int | None = None,
    before: int | None = None,
    after: int | None = None,
    limit: int,
) -> tuple[list[StoredMessage], bool]:
    """Returns one page of a conversation, oldest first, and whether more lie beyond it.

    With `after`, the oldest `limit` messages above that seq; otherwise the newest
    `limit` messages below `before` (or the newest of all).
    """
    messages = Message.objects.filter(room_id=room_id, direct_id=direct_id)
    if after is not None:
        rows = _stored(messages.filter(seq__gt=after).order_by("seq")[: limit + 1])
        return rows[:limit], len(rows) > limit
    if before is not None:
        messages = messages.filter(seq__lt=before)
    rows = _stored(messages.order_by("-seq")[: limit + 1])
    page = rows[:limit]
    page.reverse()
    return page, len(rows) > limit


def _visible_to(user_id: int) -> QuerySet:
    return Message.objects.filter(
        Q(room__isnull=False) | Q(sender_id=user_id) | Q(recipient_id=user_id)
    )


def message_sync_page(
    *, user_id: int, after: int, limit: int = SYNC_PAGE_SIZE
) -> tuple[list[StoredMessage], bool]:
    """Returns the oldest `limit` messages visible to the user with an id above `after`."""
    rows = _stored(_visible_to(user_id).filter(id__gt=after).order_by("id")[: limit + 1])
    return rows[:limit], len(rows) > limit


def message_last_id(*, user_id: int) -> int:
    """Returns the newest message id visible to the user, 0 when there is none."""
    return _visible_to(user_id).order_by("-id").values_list("id", flat=True).first() or 0


def history_for_user(
    *,
    user_id: int,
    room: str | None,
    with_: str | None,
    before: int | None,
    after: int | None,
    limit: int,
) -> tuple[list[StoredMessage], bool]:
    """Returns a history page of a room or of the user's direct conversation with `with_`.

    Raises ChatError for an unknown room or user.
    """
    if room is not None:
        found = room_get(name=room)
        if found is None:
            raise ChatError(ErrorCode.UNKNOWN_ROOM, f"no room named {room!r}")
        return message_page(room_id=found.pk, before=before, after=after, limit=limit)
    # A deactivated user's past conversation stays readable.
    other = user_get(username=with_, active_only=False)
    if other is None:
        raise ChatError(ErrorCode.UNKNOWN_USER, f"no user named {with_!r}")
    direct = direct_conversation_get(user_a_id=user_id, user_b_id=other.pk)
    if direct is None:
        return [], False
    return message_page(direct_id=direct.pk, before=before, after=after, limit=limit)


def greeting(*, user_id: int) -> tuple[list[str], int]:
    """What `hello` reads from the database: the direct partners and the newest visible id."""
    return direct_partners(user_id=user_id), message_last_id(user_id=user_id)
