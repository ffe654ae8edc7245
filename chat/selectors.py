"""Reads that are not messages: rooms, users and login sessions."""

from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from chat.models import Room
from chat.rooms import rooms_visible_to

# What a session left behind by a password change holds: the key its login moved to
# (it is logged in as nobody). Written by chat.accounts.
SESSION_MOVED_TO = "chat_moved_to"


def room_names(*, user_id: int) -> list[str]:
    """Lists the names of the rooms the user may see, sorted."""
    return list(rooms_visible_to(user_id=user_id).order_by("name").values_list("name", flat=True))


def room_get(*, name: str) -> Room | None:
    """Finds a room by name, whoever may see it (for staff; users go through chat.rooms)."""
    return Room.objects.filter(name=name).first()


def user_get(*, username: str, active_only: bool = True) -> AbstractBaseUser | None:
    """Finds a user by username; by default only an active one."""
    users = get_user_model().objects.filter(username=username)
    if active_only:
        users = users.filter(is_active=True)
    return users.first()


# Sessions read together by the session check: two queries per so many sockets.
SESSIONS_PER_READ = 500


def sessions_ended(*, sessions: dict[str, int]) -> dict[str, str | None]:
    """Returns the ended session keys (of the given key -> user id pairs), each with the key
    its login moved to (a password change in that browser), or None.

    Runs for every open socket of a process once a minute: the valid sessions, nearly
    all of them, are read SESSIONS_PER_READ at a time with their users (two queries
    instead of two per socket: 20,000 a minute at 10,000 sockets); only the others
    are looked at one by one.
    """
    keys = list(sessions)
    doubtful = {}
    for start in range(0, len(keys), SESSIONS_PER_READ):
        chunk = {key: sessions[key] for key in keys[start : start + SESSIONS_PER_READ]}
        valid = _valid_sessions(chunk)
        doubtful.update((key, user_id) for key, user_id in chunk.items() if key not in valid)
    ended = {}
    for key, user_id in doubtful.items():
        state = _session_state(key, user_id)
        if state is None:
            # Read once more: a read that straddled the commit of a password change
            # can see the new password with the old session.
            state = _session_state(key, user_id)
        if state is not True:
            ended[key] = state
    return ended


def _valid_sessions(sessions: dict[str, int]) -> set[str]:
    """The keys among `sessions` that session_is_valid would pass, read in two queries."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    rows = (
        store.model.objects.filter(session_key__in=list(sessions), expire_date__gt=timezone.now())
        .values_list("session_key", "session_data")
        .iterator()
    )
    data = {key: store.decode(text) for key, text in rows}
    users = get_user_model().objects.filter(pk__in=set(sessions.values()), is_active=True)
    by_pk = {user.pk: user for user in users.only("pk", "password")}
    return {
        key
        for key, session in data.items()
        if _belongs(session, sessions[key], by_pk.get(sessions[key]))
    }


def _belongs(data: dict, user_id: int, user: AbstractBaseUser | None) -> bool:
    """Tells whether session data is a login of `user` (active, id `user_id`) that a
    password change made since has not ended, as in Django's views."""
    return (
        str(data.get(SESSION_KEY)) == str(user_id)
        and user is not None
        and constant_time_compare(data.get(HASH_SESSION_KEY, ""), user.get_session_auth_hash())
    )


def _session_state(key: str, user_id: int) -> bool | str | None:
    """True for a valid session; the key its login moved to; or None (ended)."""
    if session_is_valid(session_key=key, user_id=user_id):
        return True
    engine = import_module(settings.SESSION_ENGINE)
    moved_to = engine.SessionStore(key).load().get(SESSION_MOVED_TO)
    if moved_to and session_is_valid(session_key=moved_to, user_id=user_id):
        return moved_to
    return None


def session_is_valid(*, session_key: str, user_id: int) -> bool:
    """Tells whether the session still exists, belongs to the user and is not stale."""
    engine = import_module(settings.SESSION_ENGINE)
    data = engine.SessionStore(session_key).load()
    if str(data.get(SESSION_KEY)) != str(user_id):
        return False  # no query for the user of a session that is not theirs
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    return _belongs(data, user_id, user)
