"""Moderation by staff: muting a user in a room or everywhere, deactivating an account,
and the record of every such action (`ModerationAction`).
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from chat.errors import ChatError, ErrorCode
from chat.models import ModerationAction, Mute, Room
from chat.protocol import MAX_MUTE_MINUTES


def record(
    *,
    kind: str,
    actor,
    target_name: str = "",
    room: Room | None = None,
    message_id: int | None = None,
    detail: str = "",
) -> ModerationAction:
    """Records one moderation action: who did what to whom, and when."""
    return ModerationAction.objects.create(
        kind=kind,
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        target_name=target_name,
        room=room,
        message_id=message_id,
        detail=detail,
    )


def _require_staff(actor) -> None:
    # Re-read: a socket's user object is as old as the socket.
    if not get_user_model().objects.filter(pk=actor.pk, is_active=True, is_staff=True).exists():
        raise ChatError(ErrorCode.FORBIDDEN, "only staff may moderate")


def _target(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ChatError(ErrorCode.UNKNOWN_USER, f"no user named {username!r}")
    return user


def _room(name: str | None) -> Room | None:
    if name is None:
        return None
    room = Room.objects.filter(name=name).first()
    if room is None:
        raise ChatError(ErrorCode.UNKNOWN_ROOM, f"no room named {name!r}")
    return room


def mute_set(*, actor, username: str, minutes: int, room: str | None = None) -> datetime | None:
    """Mutes a user in `room` (or everywhere) for `minutes`; 0 lifts it. Returns the end.

    A new mute of the same user and place replaces the old one, shorter or longer.
    """
    _require_staff(actor)
    if minutes == 0:
        _lift(actor=actor, username=username, room=room)
        return None
    if not 0 < minutes <= MAX_MUTE_MINUTES:
        raise ChatError(ErrorCode.BAD_FRAME, f"a mute lasts 0 to {MAX_MUTE_MINUTES} minutes")
    user, place = _target(username), _room(room)
    until = timezone.now() + timedelta(minutes=minutes)
    with transaction.atomic():
        Mute.objects.update_or_create(user=user, room=place, defaults={"until": until, "by": actor})
        record(
            kind=ModerationAction.Kind.MUTE,
            actor=actor,
            target_name=user.get_username(),
            room=place,
            detail=f"{minutes} min, until {until:%Y-%m-%d %H:%M} UTC",
        )
    return until


def mute_lift(*, actor, username: str, room: str | None = None) -> bool:
    """Lifts a user's mute in `room` (or the one everywhere); tells whether there was one."""
    _require_staff(actor)
    return _lift(actor=actor, username=username, room=room)


def _lift(*, actor, username: str, room: str | None) -> bool:
    user, place = _target(username), _room(room)
    with transaction.atomic():
        deleted, _ = Mute.objects.filter(user=user, room=place).delete()
        record(
            kind=ModerationAction.Kind.UNMUTE,
            actor=actor,
            target_name=user.get_username(),
            room=place,
            detail="" if deleted else "was not muted",
        )
    return bool(deleted)


def mute_check_many(
    *, places: Iterable[tuple[int, int | None]]
) -> dict[tuple[int, int | None], datetime]:
    """Tells which (user id, room id or None for a direct message) pairs are muted, and until when.

    One query for the whole batch: a mute everywhere covers every place, a room's
    mute only that room. Unmuted pairs are left out.
    """
    places = set(places)
    if not places:
        return {}
    rooms = {room_id for _, room_id in places if room_id is not None}
    mutes: dict[int, list[tuple[int | None, datetime]]] = {}
    for user_id, room_id, until in Mute.objects.filter(
        Q(room__isnull=True) | Q(room_id__in=rooms),
        user_id__in={user_id for user_id, _ in places},
        until__gt=timezone.now(),
    ).values_list("user_id", "room_id", "until"):
        mutes.setdefault(user_id, []).append((room_id, until))
    ends: dict[tuple[int, int | None], datetime] = {}
    for user_id, room_id in places:
        # The later end wins when a user is muted both everywhere and in this room.
        covering = [
            until for muted_room, until in mutes.get(user_id, ()) if muted_room in (None, room_id)
        ]
        if covering:
            ends[user_id, room_id] = max(covering)
    return ends


def muted_sql(*, user: str, room: str) -> tuple[str, list]:
    """SQL, true when `user` is muted now where `room` is (NULL: in direct messages).

    `user` and `room` are SQL expressions (columns of the caller's statement); the
    parameters go with the SQL. The rule of `mute_check_many`, for a statement that
    checks many sends at once: a mute everywhere covers every place, a room's mute
    only that room.
    """
    meta = Mute._meta
    table = connection.ops.quote_name(meta.db_table)
    user_id = meta.get_field("user").column
    room_id = meta.get_field("room").column
    until = meta.get_field("until").column
    sql = (
        f"EXISTS (SELECT 1 FROM {table} WHERE {user_id} = {user} AND {until} > %s "
        f"AND ({room_id} IS NULL OR {room_id} = {room}))"
    )
    return sql, [connection.ops.adapt_datetimefield_value(timezone.now())]


def mute_refuse(
    *,
    user_id: int,
    room_id: int | None,
    client_id: str | None = None,
    message_id: int | None = None,
) -> None:
    """Refuses with `muted` (and when it ends) if the user is muted in that place."""
    until = mute_check_many(places=[(user_id, room_id)]).get((user_id, room_id))
    if until is not None:
        raise muted_error(until, client_id=client_id, message_id=message_id)


def muted_error(
    until: datetime, *, client_id: str | None = None, message_id: int | None = None
) -> ChatError:
    """The refusal of a muted user's send, edit or reaction."""
    return ChatError(
        ErrorCode.MUTED,
        "you are muted here for now",
        client_id=client_id,
        message_id=message_id,
        until=until,
    )


def user_deactivate(*, actor, username: str) -> None:
    """Deactivates an account; every socket of it closes, on every process, once it commits.

    The closing is the deactivation's own signal (chat/signals.py), as in the admin.
    """
    _require_staff(actor)
    user = _target(username)
    if user.pk == actor.pk:
        raise ChatError(ErrorCode.FORBIDDEN, "you cannot deactivate yourself")
    with transaction.atomic():
        user.is_active = False
        user.save(update_fields=["is_active"])
        record(kind=ModerationAction.Kind.DEACTIVATE, actor=actor, target_name=username)
