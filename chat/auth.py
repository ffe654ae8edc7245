"""Who is on a socket: the Django login session named by the handshake's cookie.

Channels' AuthMiddlewareStack does the same in two thread hops (session, then user)
on the single database thread, and wraps every outgoing frame of the socket to
save a session that sockets never change. This middleware loads both in one call
that may run beside other reads, and leaves `send` alone.
"""

from importlib import import_module
from types import SimpleNamespace

from channels.middleware import BaseMiddleware
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.contrib import auth

from chat.db import db_call


def session_user(session_key: str | None) -> tuple:
    """Loads the session and its user (AnonymousUser when none is logged in).

    The user is checked as Django checks it for a page: an existing, active user
    whose password has not changed since the login.
    """
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = auth.get_user(SimpleNamespace(session=session))
    return session, user


class SessionUserMiddleware(BaseMiddleware):
    """Puts `session` and `user` in the scope of a websocket handshake."""

    async def __call__(self, scope, receive, send):
        """Resolves the scope's session and user, then runs the inner application."""
        key = scope.get("cookies", {}).get(settings.SESSION_COOKIE_NAME)
        session, user = await db_call(session_user, concurrent=True)(key)
        return await super().__call__(dict(scope, session=session, user=user), receive, send)


def SessionUserMiddlewareStack(inner):
    """Cookie parsing, then session and user, for a websocket application."""
    return CookieMiddleware(SessionUserMiddleware(inner))
