"""Who is on a socket: the Django login session named by the handshake's cookie.

Channels' AuthMiddlewareStack does the same in two thread hops (session, then user)
on the single database thread, and wraps every outgoing frame of the socket to
save a session that sockets never change. This middleware reads both in one
`loop_db.read` (on PostgreSQL, from the event loop without a thread hop), and
leaves `send` alone.
"""

from functools import cache
from importlib import import_module
from types import SimpleNamespace
from typing import NamedTuple

from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.contrib import auth
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection
from django.utils.crypto import constant_time_compare

from chat import loop_db
from chat.db import Converters, converted, db_call, field_converters
from chat.loop_db import Query, Steps, run_steps
from chat.sessions import SessionStore

# The backend Django's login stores in the session for a password login.
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def session_user(session_key: str | None) -> tuple:
    """Loads the session and its user (AnonymousUser when none is logged in).

    The user is checked as Django checks it for a page: an existing, active user
    whose password has not changed since the login. The usual case, a password
    login still valid, is answered by `login_steps`; every other case (no login,
    another backend, a user gone or deactivated, a changed password or a rotated
    secret) by Django's own `auth.get_user`, which also flushes or cycles the
    session as it does for a page.
    """
    session, user = run_steps(login_steps(session_key))
    return session, user or auth.get_user(SimpleNamespace(session=session))


def login_steps(session_key: str | None) -> Steps:
    """Reads the session and its user, for a ModelBackend login that verifies with
    the current secret: (session, user), or (session, None) when anything is not as
    in a good login, so that Django decides the rest.

    The same checks as `auth.get_user` with ModelBackend, in plain statements: the
    ORM's `get()` was half of the handshake's session and user load (0.7 of 1.3 ms),
    and every socket of a reconnect storm pays it. One statement reads the session
    with the row of the user id saved with it (chat/sessions.py); only when that is
    not the user its data names (a row saved by Django's own engine, say) does a
    second one read the user. Steps (chat/loop_db.py), so that a handshake can run
    them on the event loop.
    """
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if session.session_key is None or not isinstance(session, SessionStore):
        return session, None
    user_row = _user_row()
    rows = yield session.load_query(
        user_table=user_row.table, user_pk=user_row.pk_column, user_columns=user_row.columns
    )
    session.loaded(rows)
    try:
        user_id = auth.get_user_model()._meta.pk.to_python(session[auth.SESSION_KEY])
        backend = session[auth.BACKEND_SESSION_KEY]
        session_hash = session[auth.HASH_SESSION_KEY]
    except (KeyError, ValidationError):
        return session, None
    if backend != MODEL_BACKEND or backend not in settings.AUTHENTICATION_BACKENDS:
        return session, None
    values = rows[0][1:]
    if values[user_row.pk_index] != user_id:
        rows = yield Query(user_row.select, [user_id])
        if not rows:
            return session, None
        values = rows[0]
    user = auth.get_user_model().from_db(
        DEFAULT_DB_ALIAS, user_row.attnames, converted(values, user_row.converters)
    )
    if not user.is_active:  # ModelBackend.user_can_authenticate
        return session, None
    if not constant_time_compare(session_hash, user.get_session_auth_hash()):
        return session, None
    return session, user


class _UserRow(NamedTuple):
    """How the user model's row is read: alone, or joined to its session."""

    select: str  # the row by primary key, alone
    table: str
    pk_column: str
    columns: list[str]
    attnames: list[str]
    converters: list[Converters]
    pk_index: int


@cache
def _user_row() -> _UserRow:
    """Built once: it depends on the user model and the database's vendor only."""
    meta = auth.get_user_model()._meta
    quote = connection.ops.quote_name
    fields = meta.concrete_fields
    columns = [field.column for field in fields]
    return _UserRow(
        select=(
            f"SELECT {', '.join(quote(column) for column in columns)} "
            f"FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = %s"
        ),
        table=meta.db_table,
        pk_column=meta.pk.column,
        columns=columns,
        attnames=[field.attname for field in fields],
        converters=[field_converters(field, meta.db_table) for field in fields],
        pk_index=fields.index(meta.pk),
    )


class SessionUserMiddleware(BaseMiddleware):
    """Puts `session` and `user` in the scope of a websocket handshake."""

    async def __call__(self, scope, receive, send):
        """Resolves the scope's session and user, then runs the inner application."""
        key = scope.get("cookies", {}).get(settings.SESSION_COOKIE_NAME)
        session, user = await loop_db.read(login_steps, key)
        if user is None:
            # Not a good password login: Django decides, in a database thread, as
            # it may flush or cycle the session.
            session, user = await db_call(session_user, concurrent=True)(key)
        return await super().__call__(dict(scope, session=session, user=user), receive, send)


def SessionUserMiddlewareStack(inner):
    """Cookie parsing, then session and user, for a websocket application."""
    return CookieMiddleware(SessionUserMiddleware(inner))
