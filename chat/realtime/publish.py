"""Publishing: one call puts a frame on the way to every socket of some groups.

Every real-time event of every feature goes through `publish` (or `publish_many`
for a batch, in order): a frame, encoded once, and the groups that should see it.
The fan-out of each process writes it to its local members without knowing what
it is. Three control events are not frames: closing the sockets of a group (a
session or account ended), a login session that took a new key (a password
change), and a changed room list.
"""

from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from chat import metrics
from chat.groups import EVERYONE, session_group
from chat.protocol import encode
from chat.realtime.layers import group_send_many

# The kinds of event a fan-out understands; everything a person sees is a frame.
FRAME = "chat.frame"
CLOSE = "sockets.close"
SESSION_RENAMED = "session.renamed"
ROOMS_CHANGED = "rooms.changed"


def frame_events(
    groups: Iterable[str],
    frame: dict[str, Any],
    *,
    except_user: str | None = None,
    burst: str | None = None,
) -> list[tuple[str, dict]]:
    """The (group, event) pairs that carry `frame` to the sockets of `groups`.

    `except_user`: that user's own sockets are left out (a typist does not see their
    own typing). `burst`: frames of that name are gathered per process for a short
    window, and a burst of them may be replaced by one summary (see the fan-out).
    """
    text = encode(frame)
    events = []
    for group in groups:
        # `group` tells each process's fan-out which of its sockets to write to.
        event = {"type": FRAME, "group": group, "text": text}
        if except_user is not None:
            event["except_user"] = except_user
        if burst is not None:
            event["burst"] = burst
        events.append((group, event))
    return events


async def publish(
    groups: Iterable[str],
    frame: dict[str, Any],
    *,
    except_user: str | None = None,
    burst: str | None = None,
) -> None:
    """Sends `frame` to every socket of `groups`, on every process (see `frame_events`)."""
    await publish_many(frame_events(groups, frame, except_user=except_user, burst=burst))


async def publish_many(events: list[tuple[str, dict]]) -> None:
    """Sends several (group, event) pairs in one round trip where the layer can, in order."""
    with metrics.PUBLISH_SECONDS.time():
        await group_send_many(get_channel_layer(), events)


def publish_after_commit(groups: Iterable[str], frame: dict[str, Any]) -> None:
    """Publishes from synchronous code (a view, the admin) once the transaction commits."""
    from django.db import transaction

    events = frame_events(groups, frame)
    transaction.on_commit(lambda: async_to_sync(publish_many)(events), robust=True)


def close_sockets(group: str, *, code: int) -> None:
    """Closes every socket of `group` with `code`, on every process (from synchronous code)."""
    event = {"type": CLOSE, "group": group, "code": code}
    async_to_sync(get_channel_layer().group_send)(group, event)


def session_renamed(old_key: str, new_key: str) -> None:
    """Moves every socket of login session `old_key` to `new_key`, on every process."""
    group = session_group(old_key)
    event = {"type": SESSION_RENAMED, "group": group, "key": new_key}
    async_to_sync(get_channel_layer().group_send)(group, event)


def rooms_changed() -> None:
    """Tells every socket that the room list changed, so it joins or leaves room groups."""
    event = {"type": ROOMS_CHANGED, "group": EVERYONE}
    async_to_sync(get_channel_layer().group_send)(EVERYONE, event)
