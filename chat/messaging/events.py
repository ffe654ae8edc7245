"""Where a message's frame goes: the groups of the sockets that may see it."""

from chat import groups
from chat.protocol import StoredMessage, message_frame
from chat.realtime.publish import frame_events


def message_events(
    message: StoredMessage, sender_id: int, recipient_id: int | None
) -> list[tuple[str, dict]]:
    """The (group, event) pairs that carry a message frame to every socket that may see it."""
    if message.room is not None:
        targets = [groups.room_group(message.room)]
    else:
        # A direct message reaches the two parties' sockets and nobody else's.
        targets = [groups.user_group(sender_id)]
        if recipient_id != sender_id:
            targets.append(groups.user_group(recipient_id))
    return frame_events(targets, message_frame(message))
