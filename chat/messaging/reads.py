"""Reading messages back: history pages, sync pages, and the visibility rules behind them.

A user sees the messages of the rooms they may see (chat/rooms.py) and the direct
messages they sent or received; nothing here ever returns another pair's direct messages.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Q, QuerySet

from chat.db import Converters, converted, field_converters
from chat.errors import ChatError, ErrorCode
from chat.loop_db import Query, Steps, run_steps
from chat.models import DirectConversation, Message, Room
from chat.protocol import SYNC_PAGE_SIZE, StoredMessage
from chat.rooms import room_for_user, rooms_visible_to
from chat.selectors import user_get

_FIELDS = (
    "id",
    "seq",
    "sender__username",
    "body",
    "sent_at",
    "client_id",
    "room__name",
    "recipient__username",
    "rev",
    "edited_at",
    "deleted",
    "reactions",
    "mentioned",
    "attachments",
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
        rev=row["rev"],
        edited_at=row["edited_at"],
        deleted=row["deleted"],
        reactions=tuple(row["reactions"]),
        mentions=tuple(row["mentioned"]),
        attachments=tuple(row["attachments"]),
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
    # A former member's own messages in a private room are gone from them with the room.
    return Message.objects.filter(
        Q(room__in=rooms_visible_to(user_id=user_id))
        | Q(room__isnull=True, sender_id=user_id)
        | Q(recipient_id=user_id)
    )


def messages_visible_to(*, user_id: int) -> QuerySet:
    """Returns every message the user may see: their rooms', and their own direct messages."""
    return _visible_to(user_id)


def stored_messages(rows: QuerySet) -> list[StoredMessage]:
    """Reads a queryset of messages, in its order, as StoredMessages."""
    return _stored(rows)


def message_page_around(
    *, room_id: int | None = None, direct_id: int | None = None, around: int, limit: int
) -> tuple[list[StoredMessage], bool, bool]:
    """Returns the page of a conversation centred on seq `around`, oldest first.

    About half the page is `around` and the messages before it, half those after;
    near either end of the conversation the other side fills the page. Also says
    whether older and newer messages lie beyond the page.
    """
    messages = Message.objects.filter(room_id=room_id, direct_id=direct_id)
    older = _stored(messages.filter(seq__lte=around).order_by("-seq")[: limit + 1])
    newer = _stored(messages.filter(seq__gt=around).order_by("seq")[: limit + 1])
    want_older = limit - limit // 2  # the larger half holds `around` itself
    take_newer = min(len(newer), max(limit // 2, limit - len(older)))
    take_older = min(len(older), max(want_older, limit - take_newer))
    page = older[:take_older]
    page.reverse()
    return page + newer[:take_newer], len(older) > take_older, len(newer) > take_newer


# A message the user %(user)s may see, as SQL over the message row's own columns
# (unqualified): in a room they may see (open, or private with them a member), or a
# direct message of theirs. The same rule as `_visible_to`, for the reads every
# handshake and every reconnect makes (chat/messaging/greeting.py, the sync pages);
# tests/test_greeting.py compares the two on one world.
_VISIBLE = """(
  room_id IN (
    SELECT r.id FROM {room} r
    WHERE NOT EXISTS (SELECT 1 FROM {members} m WHERE m.room_id = r.id)
       OR EXISTS (SELECT 1 FROM {members} m WHERE m.room_id = r.id AND m.user_id = %(user)s)
  )
  OR (room_id IS NULL AND sender_id = %(user)s)
  OR recipient_id = %(user)s
)"""


def visible_sql() -> str:
    """SQL, true for a message row the user `%(user)s` may see (see `_VISIBLE`)."""
    quote = connection.ops.quote_name
    members = Room.members.through._meta.db_table
    return _VISIBLE.format(room=quote(Room._meta.db_table), members=quote(members))


# One sync page: the visible messages after a cursor (`id` or `rev`), oldest first.
_PAGE = """
SELECT {columns}
FROM {message} msg
JOIN {user} snd ON snd.id = msg.sender_id
LEFT JOIN {room} rm ON rm.id = msg.room_id
LEFT JOIN {user} rcp ON rcp.id = msg.recipient_id
WHERE {visible} AND msg.{cursor} > %(after)s
ORDER BY msg.{cursor}
LIMIT %(limit)s
"""


@cache
def _page_sql(cursor: str) -> tuple[str, list[Converters]]:
    """The sync page's statement ordered by `cursor`, and each column's converters."""
    quote = connection.ops.quote_name
    fields = [Message._meta.get_field(name) for name in _PAGE_FIELDS]
    username = get_user_model()._meta.get_field("username")
    room_name = Room._meta.get_field("name")
    columns = [f"msg.{quote(field.column)}" for field in fields] + [
        f"snd.{quote(username.column)}",
        f"rm.{quote(room_name.column)}",
        f"rcp.{quote(username.column)}",
    ]
    converters = [field_converters(field, "msg") for field in fields]
    sql = _PAGE.format(
        columns=", ".join(columns),
        message=quote(Message._meta.db_table),
        user=quote(get_user_model()._meta.db_table),
        room=quote(Room._meta.db_table),
        visible=visible_sql(),
        cursor=quote(Message._meta.get_field(cursor).column),
    )
    return sql, converters


# The message's own columns a page reads; the names of sender, room and recipient follow.
_PAGE_FIELDS = tuple(name for name in _FIELDS if "__" not in name)


def _page_steps(*, user_id: int, cursor: str, after: int, limit: int) -> Steps:
    """Up to `limit` visible messages with `cursor` above `after`, and whether more follow.

    Plain SQL rather than the ORM: every reconnecting client asks for one at once,
    and building and compiling the ORM's query cost 2.5 ms of the interpreter for a
    page with nothing in it. Steps (chat/loop_db.py), so that a socket's `sync` can
    read it on the event loop.
    """
    sql, converters = _page_sql(cursor)
    rows = yield Query(sql, {"user": user_id, "after": after, "limit": limit + 1})
    page = []
    for row in rows[:limit]:
        values = dict(
            zip(_PAGE_FIELDS, converted(row[: len(_PAGE_FIELDS)], converters), strict=True)
        )
        sender, room, to = row[len(_PAGE_FIELDS) :]
        page.append(
            _from_row(
                values | {"sender__username": sender, "room__name": room, "recipient__username": to}
            )
        )
    return page, len(rows) > limit


def message_sync_page(
    *, user_id: int, after: int, limit: int = SYNC_PAGE_SIZE
) -> tuple[list[StoredMessage], bool]:
    """Returns the oldest `limit` messages visible to the user with an id above `after`."""
    return run_steps(message_sync_page_steps(user_id=user_id, after=after, limit=limit))


def message_sync_page_steps(*, user_id: int, after: int, limit: int = SYNC_PAGE_SIZE) -> Steps:
    """`message_sync_page` as steps."""
    return (yield from _page_steps(user_id=user_id, cursor="id", after=after, limit=limit))


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
    room_id, direct_id = conversation_of(user_id=user_id, room=room, with_=with_)
    if room_id is None and direct_id is None:
        return [], False
    return message_page(
        room_id=room_id, direct_id=direct_id, before=before, after=after, limit=limit
    )


def history_around_for_user(
    *, user_id: int, room: str | None, with_: str | None, around: int, limit: int
) -> tuple[list[StoredMessage], bool, bool]:
    """Returns the page of a room or direct conversation centred on seq `around`.

    Also says whether older and newer messages lie beyond it. Raises ChatError
    for an unknown room or user.
    """
    room_id, direct_id = conversation_of(user_id=user_id, room=room, with_=with_)
    if room_id is None and direct_id is None:
        return [], False, False
    return message_page_around(room_id=room_id, direct_id=direct_id, around=around, limit=limit)


def conversation_of(
    *, user_id: int, room: str | None, with_: str | None
) -> tuple[int | None, int | None]:
    """Returns (room id, direct conversation id) of a room, or of the user's one with `with_`.

    Both are None for two users who never wrote to each other. Raises ChatError
    for an unknown room or user; a room the user may not see is unknown.
    """
    if room is not None:
        return room_for_user(user_id=user_id, name=room).pk, None
    # A deactivated user's past conversation stays readable.
    other = user_get(username=with_, active_only=False)
    if other is None:
        raise ChatError(ErrorCode.UNKNOWN_USER, f"no user named {with_!r}")
    direct = direct_conversation_get(user_a_id=user_id, user_b_id=other.pk)
    return None, (direct.pk if direct is not None else None)


def message_changes_page(
    *, user_id: int, since: int, limit: int = SYNC_PAGE_SIZE
) -> tuple[list[StoredMessage], bool]:
    """Returns, in their current state, the `limit` visible messages changed last after `since`.

    Oldest revision first: new, edited, deleted and reacted-to messages alike.
    """
    return run_steps(message_changes_page_steps(user_id=user_id, since=since, limit=limit))


def message_changes_page_steps(*, user_id: int, since: int, limit: int = SYNC_PAGE_SIZE) -> Steps:
    """`message_changes_page` as steps."""
    return (yield from _page_steps(user_id=user_id, cursor="rev", after=since, limit=limit))


def message_last_rev(*, user_id: int) -> int:
    """Returns the newest revision visible to the user, 0 when there is none."""
    return _visible_to(user_id).order_by("-rev").values_list("rev", flat=True).first() or 0


def message_get(*, user_id: int, message_id: int) -> Message:
    """Finds a message the user may see, locked for a change; ChatError `not_found` otherwise."""
    message = (
        _visible_to(user_id)
        .select_for_update(of=("self",))
        .select_related("room", "sender", "recipient")
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        raise ChatError(
            ErrorCode.NOT_FOUND, f"no message {message_id} that you can see", message_id=message_id
        )
    return message


def stored(message: Message) -> StoredMessage:
    """Turns a message row (with its room, sender and recipient loaded) into a StoredMessage."""
    return StoredMessage(
        id=message.pk,
        seq=message.seq,
        sender=message.sender.get_username(),
        body=message.body,
        sent_at=message.sent_at,
        client_id=message.client_id,
        room=message.room.name if message.room_id else None,
        to=message.recipient.get_username() if message.recipient_id else None,
        rev=message.rev,
        edited_at=message.edited_at,
        deleted=message.deleted,
        reactions=tuple(message.reactions),
        mentions=tuple(message.mentioned),
        attachments=tuple(message.attachments),
    )
