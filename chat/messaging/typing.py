"""Typing: "bob is typing…" for the other people of a conversation; never stored."""

from chat import groups
from chat.errors import ChatError, ErrorCode
from chat.protocol import typing_frame
from chat.realtime.publish import publish
from chat.selectors import user_get


async def typing_announce(
    *, user, rooms: list[str], room: str | None, to_user_id: int | None
) -> None:
    """Tells the others of a room (never the typist's own sockets), or the one recipient."""
    username = user.get_username()
    if room is not None:
        if room not in rooms:
            raise ChatError(ErrorCode.UNKNOWN_ROOM, f"no room named {room!r}")
        await publish(
            [groups.room_group(room)], typing_frame(user=username, room=room), except_user=username
        )
    elif to_user_id != user.pk:
        await publish([groups.user_group(to_user_id)], typing_frame(user=username, room=None))


def typing_recipient(*, username: str) -> int:
    """The id of the user a direct `typing` goes to; ChatError `unknown_user` otherwise."""
    found = user_get(username=username)
    if found is None:
        raise ChatError(ErrorCode.UNKNOWN_USER, f"no user named {username!r}")
    return found.pk
