"""Writes and the real-time events they cause: storing and publishing messages, presence.

Every change that some socket must hear about is published from here and only here.
"""

import logging
import zlib
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone
from limits.errors import StorageError
from redis.exceptions import RedisError

from chat import groups, selectors
from chat.models import DirectConversation, Message, Room
from chat.presence import Joined, get_presence, on_presence_change
from chat.protocol import (
    ErrorCode,
    ProtocolError,
    Send,
    StoredMessage,
    encode,
    message_frame,
    presence_frame,
)

logger = logging.getLogger(__name__)

# What a dependency outage looks like from here: the database, Redis, the network.
OUTAGES = (DatabaseError, RedisError, StorageError, OSError)

# Key of the PostgreSQL advisory lock that makes message ids commit in id order.
_MESSAGE_ID_LOCK = zlib.crc32(b"chat.message.id")


@dataclass(frozen=True, slots=True)
class Posted:
    """The outcome of a send: the stored message, and whether this call created it."""

    message: StoredMessage
    created: bool
    recipient_id: int | None = None


def _lock_message_ids() -> None:
    """Serialises the id-to-commit step of every message.

    PostgreSQL hands out ids at insert time, so two concurrent sends could commit
    in the other order; a client that keeps "the largest id seen" would then skip
    the late one during `sync`. Holding this lock from insert to commit makes ids
    visible in increasing order. SQLite already admits one writer at a time.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_MESSAGE_ID_LOCK])


def _next_seq(table: str, pk: int) -> int:
    """Takes the next seq of a conversation, locking its row until commit."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq", [pk]
        )
        return cursor.fetchone()[0]


def _existing(sender_id: int, client_id: str) -> StoredMessage | None:
    found = selectors._stored(Message.objects.filter(sender_id=sender_id, client_id=client_id))
    return found[0] if found else None


def message_store(*, sender, send: Send) -> Posted:
    """Stores a message once per (sender, client_id) and returns it.

    Raises ProtocolError for an unknown room or recipient; stores nothing then.
    """
    previous = _existing(sender.pk, send.client_id)
    if previous is not None:
        return Posted(message=previous, created=False)

    room = recipient = None
    if send.room is not None:
        room = selectors.room_get(name=send.room)
        if room is None:
            raise ProtocolError(
                ErrorCode.UNKNOWN_ROOM, f"no room named {send.room!r}", client_id=send.client_id
            )
    else:
        recipient = selectors.user_get(username=send.to)
        if recipient is None:
            raise ProtocolError(
                ErrorCode.UNKNOWN_USER, f"no user named {send.to!r}", client_id=send.client_id
            )

    try:
        with transaction.atomic():
            _lock_message_ids()
            direct = None
            if room is not None:
                seq = _next_seq(Room._meta.db_table, room.pk)
            else:
                low, high = selectors.direct_pair(sender.pk, recipient.pk)
                direct, _ = DirectConversation.objects.get_or_create(
                    user_low_id=low, user_high_id=high
                )
                seq = _next_seq(DirectConversation._meta.db_table, direct.pk)
            message = Message.objects.create(
                sender=sender,
                room=room,
                recipient=recipient,
                direct=direct,
                body=send.body,
                client_id=send.client_id,
                seq=seq,
                sent_at=timezone.now(),
            )
    except IntegrityError:
        # Two sockets raced with the same client_id: the other one stored it first.
        previous = _existing(sender.pk, send.client_id)
        if previous is None:
            raise
        return Posted(message=previous, created=False)

    stored = StoredMessage(
        id=message.pk,
        seq=seq,
        sender=sender.get_username(),
        body=message.body,
        sent_at=message.sent_at,
        client_id=message.client_id,
        room=room.name if room else None,
        to=recipient.get_username() if recipient else None,
    )
    return Posted(message=stored, created=True, recipient_id=recipient.pk if recipient else None)


async def message_publish(*, message: StoredMessage, sender_id: int, recipient_id: int | None):
    """Sends a stored message to every socket that may see it, encoded once."""
    layer = get_channel_layer()
    event = {"type": "chat.message", "text": encode(message_frame(message))}
    if message.room is not None:
        await layer.group_send(groups.room_group(message.room), event)
        return
    # A direct message reaches the two parties' sockets and nobody else's.
    await layer.group_send(groups.user_group(sender_id), event)
    if recipient_id != sender_id:
        await layer.group_send(groups.user_group(recipient_id), event)


async def message_send(*, sender, send: Send) -> Posted:
    """Stores the message (once per client_id) and publishes it if it is new."""
    posted = await database_sync_to_async(message_store)(sender=sender, send=send)
    if posted.created:
        try:
            await message_publish(
                message=posted.message, sender_id=sender.pk, recipient_id=posted.recipient_id
            )
        except (RedisError, OSError) as exc:
            # Stored all the same: every subscriber that lost Redis reconnects, closes
            # its sockets with 4012, and their clients fetch the message with sync.
            logger.warning("publishing message %s failed: %s", posted.message.id, exc)
    return posted


async def presence_join(*, user: str, socket: str) -> Joined:
    """Registers a socket and announces the user when it is their first."""
    joined = await get_presence().add(user=user, socket=socket)
    if joined.first:
        await _announce(user=user, online=True)
    return joined


async def presence_leave(*, user: str, socket: str) -> None:
    """Forgets a socket and announces the user offline when it was their last."""
    if await get_presence().remove(user=user, socket=socket):
        await _announce(user=user, online=False)


async def _announce_change(user: str, online: bool) -> None:
    await _announce(user=user, online=online)


on_presence_change(_announce_change)


async def _announce(*, user: str, online: bool) -> None:
    event = {
        "type": "chat.presence",
        "user": user,
        "text": encode(presence_frame(user=user, online=online)),
    }
    await get_channel_layer().group_send(groups.EVERYONE, event)


def session_end(*, session_key: str) -> None:
    """Closes every socket opened with this login session (logout)."""
    async_to_sync(get_channel_layer().group_send)(
        groups.session_group(session_key), {"type": "session.ended"}
    )


def rooms_changed() -> None:
    """Tells every socket that the room list changed, so it joins or leaves room groups."""
    async_to_sync(get_channel_layer().group_send)(groups.EVERYONE, {"type": "rooms.changed"})
