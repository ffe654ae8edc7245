"""This process's open sockets, and the watches over all of them at once.

A layer reconnect asks every open socket to resync; a periodic check closes the
sockets whose login session ended elsewhere, and moves those whose session took a
new key (a password change in the same browser) to it. One task per process, not per socket.
"""

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Protocol

from django.conf import settings

from chat import metrics
from chat.errors import OUTAGES
from chat.protocol import CloseCode
from chat.realtime.background import repeat

logger = logging.getLogger(__name__)


class OpenSocket(Protocol):
    """What the watches need of an open socket (ChatConsumer implements it)."""

    username: str
    session_key: str
    user_id: int

    def resync(self) -> None:
        """Asks the client to reconnect and sync: live frames may have been lost."""
        ...

    def end(self, code: int) -> None:
        """Closes the socket with `code`."""
        ...

    def session_renamed(self, key: str) -> None:
        """Follows its login session to a new key (a password change cycles it)."""
        ...


_open: "weakref.WeakSet[OpenSocket]" = weakref.WeakSet()
_stopping = False
_watches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)
# Set at start-up (chat.apps): given {session key: user id}, returns the ended keys,
# each with the key its login moved to (a password change) or None.
SessionCheck = Callable[[dict[str, int]], Awaitable[dict[str, str | None]]]
_sessions_ended: SessionCheck | None = None


def set_session_check(check: SessionCheck) -> None:
    """Sets the function that tells which login sessions ended."""
    global _sessions_ended
    _sessions_ended = check


def register(socket: OpenSocket) -> None:
    """Counts a socket as open (it has sent `hello`); starts the session and loop watches."""
    _open.add(socket)
    loop = asyncio.get_running_loop()
    task = _watches.get(loop)
    if task is None or task.done():
        _watches[loop] = loop.create_task(_watch_sessions())
    metrics.keep_reporting()
    metrics.watch_loop_lag()


def forget(socket: OpenSocket) -> None:
    """Stops counting a socket as open."""
    _open.discard(socket)


def mark_stopping() -> None:
    """Notes that the server is stopping: the sockets closing now are handed off, not ended."""
    global _stopping
    _stopping = True


def stopping() -> bool:
    """Tells whether the server is stopping (a deploy or a restart, not a client leaving)."""
    return _stopping


def open_sockets() -> list[OpenSocket]:
    """This process's open sockets."""
    return list(_open)


def resync_all() -> None:
    """Asks every open socket of this process to reconnect and sync."""
    for socket in list(_open):
        socket.resync()


async def _watch_sessions() -> None:
    """Every CHAT_SESSION_CHECK_SECONDS, closes the sockets whose session ended (4001)."""
    await repeat(
        _check_sessions,
        every=settings.CHAT_SESSION_CHECK_SECONDS,
        name="session check",
        expected=OUTAGES,
    )


async def _check_sessions() -> None:
    sockets = list(_open)
    ended = await _sessions_ended({socket.session_key: socket.user_id for socket in sockets})
    for socket in sockets:
        if socket.session_key not in ended:
            continue  # valid, or it moved to a new key meanwhile
        moved_to = ended[socket.session_key]
        if moved_to is not None:
            socket.session_renamed(moved_to)  # its own browser changed the password
            continue
        logger.info("session ended: user=%s", socket.username)
        socket.end(CloseCode.SESSION_ENDED)
