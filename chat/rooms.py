"""Room access, decided in one place: which rooms each user may see.

A room with members is private to them; a room without members is open to everyone.
Every path that names a room asks here, and to anyone else a private room does not exist.
"""

from django.db import connection
from django.db.models import Q, QuerySet

from chat.errors import ChatError, ErrorCode
from chat.models import Room

# Each room's name with the ids of its members, or None for a room open to everyone.
RoomAccess = list[tuple[str, frozenset[int] | None]]

_memberships = Room.members.through.objects


def rooms_visible_to(*, user_id: int) -> QuerySet:
    """Returns the rooms the user may see: every open room and the private rooms they are in."""
    private = _memberships.values("room_id")
    mine = _memberships.filter(user_id=user_id).values("room_id")
    return Room.objects.filter(~Q(pk__in=private) | Q(pk__in=mine))


def room_visible_get(*, user_id: int, name: str) -> Room | None:
    """Finds a room by name if the user may see it."""
    return rooms_visible_to(user_id=user_id).filter(name=name).first()


def room_for_user(*, user_id: int, name: str) -> Room:
    """Finds a room the user may see; ChatError `unknown_room` otherwise, as for no room at all."""
    room = room_visible_get(user_id=user_id, name=name)
    if room is None:
        raise ChatError(ErrorCode.UNKNOWN_ROOM, f"no room named {name!r}")
    return room


def room_hidden_sql(*, room: str, user: str) -> str:
    """SQL, true when the room whose id is `room` is private and `user` is not its member.

    `room` and `user` are SQL expressions (columns of the caller's statement), so
    one statement can check many sends at once (`store._read_batch`).
    """
    through = Room.members.through._meta
    table = connection.ops.quote_name(through.db_table)
    room_id = through.get_field("room").column
    user_id = through.get_field("user").column
    return (
        f"(EXISTS (SELECT 1 FROM {table} WHERE {room_id} = {room}) AND NOT EXISTS "
        f"(SELECT 1 FROM {table} WHERE {room_id} = {room} AND {user_id} = {user}))"
    )


def room_access() -> RoomAccess:
    """Lists every room's name, sorted, with its member ids (None for an open room)."""
    members: dict[int, set[int]] = {}
    for room_id, user_id in _memberships.values_list("room_id", "user_id"):
        members.setdefault(room_id, set()).add(user_id)
    return [
        (name, frozenset(members[pk]) if pk in members else None)
        for pk, name in Room.objects.order_by("name").values_list("pk", "name")
    ]


def room_names_of(access: RoomAccess, *, user_id: int) -> list[str]:
    """Picks from a room access list the names of the rooms the user may see, in its order."""
    return [name for name, members in access if members is None or user_id in members]
