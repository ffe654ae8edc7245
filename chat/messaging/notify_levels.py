"""Notification levels: how much of each conversation notifies each user, kept on the server.

A level is `all`, `mentions` (direct messages and mentions of me: the default) or
`none`. Only the other two are stored. A change goes to every socket of the user,
so each tab and device notifies (and counts) the same way.
"""

import logging

from asgiref.sync import async_to_sync
from redis.exceptions import RedisError

from chat import groups
from chat.errors import ChatError, ErrorCode
from chat.models import NotificationLevel
from chat.protocol import DEFAULT_NOTIFY_LEVEL, Notify, notify_frame
from chat.realtime.publish import publish
from chat.rooms import room_visible_get
from chat.selectors import user_get

logger = logging.getLogger(__name__)


def notify_level_set(*, user, room: str | None, with_: str | None, level: str) -> bool:
    """Stores how much a room (or the direct conversation with `with_`) notifies the user.

    Tells every socket of the user with a `notify` frame; returns whether that was
    published (Redis may be away: the level is stored all the same).
    """
    if room is not None:
        found = room_visible_get(user_id=user.pk, name=room)
        if found is None:
            raise ChatError(ErrorCode.NOT_FOUND, f"no room named {room!r}")
        where = {"room": found, "peer": None}
        entry = Notify(room=found.name, with_=None, level=level)
    else:
        peer = user_get(username=with_, active_only=False)
        if peer is None:
            raise ChatError(ErrorCode.NOT_FOUND, f"no user named {with_!r}")
        where = {"room": None, "peer": peer}
        entry = Notify(room=None, with_=peer.get_username(), level=level)
    # No row means the default, so hello lists only what differs from it.
    if level == DEFAULT_NOTIFY_LEVEL:
        NotificationLevel.objects.filter(user=user, **where).delete()
    else:
        NotificationLevel.objects.update_or_create(user=user, **where, defaults={"level": level})
    try:
        async_to_sync(publish)([groups.user_group(user.pk)], notify_frame(entry))
    except (RedisError, OSError) as exc:
        # Stored all the same: sockets that missed it get it from the next `hello`.
        logger.warning("publishing a notification level failed: %s", exc)
        return False
    return True
