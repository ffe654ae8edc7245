"""Read positions: how far each user has read each conversation, kept on the server.

A position never moves back. Moving it tells every socket of the reader (so other
tabs and devices clear their badges) and, in a direct conversation, the other
party too ("seen").
"""

import logging

from asgiref.sync import async_to_sync
from django.db import IntegrityError, transaction
from redis.exceptions import RedisError

from chat import groups
from chat.errors import ChatError, ErrorCode
from chat.messaging import reads
from chat.models import ReadPosition, Room
from chat.protocol import read_frame
from chat.realtime.publish import frame_events, publish_many
from chat.rooms import room_for_user
from chat.selectors import user_get

logger = logging.getLogger(__name__)


def read_mark(*, user, room: str | None, with_: str | None, seq: int) -> int | None:
    """Moves the user's read position in a conversation up to `seq` (never back).

    `seq` is capped at the conversation's last message. Returns the new position,
    or None when it did not move; a move is published to whoever must hear it.
    """
    if room is not None:
        found = room_for_user(user_id=user.pk, name=room)
        where, last_seq, other = {"room_id": found.pk}, found.last_seq, None
    else:
        other = user_get(username=with_, active_only=False)
        if other is None:
            raise ChatError(ErrorCode.UNKNOWN_USER, f"no user named {with_!r}")
        direct = reads.direct_conversation_get(user_a_id=user.pk, user_b_id=other.pk)
        if direct is None:
            return None
        where, last_seq = {"direct_id": direct.pk}, direct.last_seq
    seq = min(seq, last_seq)
    if not _move(user.pk, where, seq):
        return None
    me = user.get_username()
    # All my sockets; in a direct conversation, the other party's too, where
    # `with` names the other party from each receiver's side.
    events = frame_events(
        [groups.user_group(user.pk)],
        read_frame(user=me, room=room, with_=None if room else other.get_username(), seq=seq),
    )
    if other is not None and other.pk != user.pk:
        events += frame_events(
            [groups.user_group(other.pk)], read_frame(user=me, room=None, with_=me, seq=seq)
        )
    try:
        async_to_sync(publish_many)(events)
    except (RedisError, OSError) as exc:
        # The position moved all the same: sockets that lost Redis reconnect, and
        # `hello.unread` tells them where it stands.
        logger.warning("publishing a read position failed: %s", exc)
    return seq


def _move(user_id: int, where: dict, seq: int) -> bool:
    """Raises the stored position to `seq`; True when it moved."""
    positions = ReadPosition.objects.filter(user_id=user_id, **where)
    if positions.filter(seq__lt=seq).update(seq=seq):
        return True
    if positions.exists() or seq == 0:
        return False
    try:
        with transaction.atomic():
            ReadPosition.objects.create(user_id=user_id, seq=seq, **where)
    except IntegrityError:
        # Another tab created it meanwhile: move it as above.
        return bool(positions.filter(seq__lt=seq).update(seq=seq))
    return True


def read_start(*, user_id: int) -> None:
    """Starts a new user at the end of every room: what came before they joined is not unread."""
    ReadPosition.objects.bulk_create(
        [
            ReadPosition(user_id=user_id, room_id=room_id, seq=last_seq)
            for room_id, last_seq in Room.objects.values_list("id", "last_seq")
        ],
        ignore_conflicts=True,
    )
