"""Who is online: one entry per open socket; a user is online while one of theirs is.

`get_presence()` gives the store for this configuration: in-process now, Redis
when REDIS_URL is set (so every server process shares one view).
"""

import asyncio
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Joined:
    """The result of registering a socket."""

    first: bool  # the user was offline before this socket
    sockets: int  # the user's open sockets, this one included


class PresenceStore(Protocol):
    """The interface every presence store implements."""

    async def add(self, *, user: str, socket: str) -> Joined:
        """Registers an open socket of `user`."""
        ...

    async def remove(self, *, user: str, socket: str) -> bool:
        """Forgets a socket; True when it was the user's last one."""
        ...

    async def online(self) -> list[str]:
        """Lists the online users, sorted."""
        ...


class LocalPresence:
    """Presence for the single-process embedded mode, kept in memory."""

    def __init__(self) -> None:
        self._sockets: dict[str, set[str]] = {}
        self._lock = asyncio.Lock()

    async def add(self, *, user: str, socket: str) -> Joined:
        """Registers an open socket of `user`."""
        async with self._lock:
            sockets = self._sockets.setdefault(user, set())
            first = not sockets
            sockets.add(socket)
            return Joined(first=first, sockets=len(sockets))

    async def remove(self, *, user: str, socket: str) -> bool:
        """Forgets a socket; True when it was the user's last one."""
        async with self._lock:
            sockets = self._sockets.get(user)
            if not sockets or socket not in sockets:
                return False
            sockets.discard(socket)
            if sockets:
                return False
            del self._sockets[user]
            return True

    async def online(self) -> list[str]:
        """Lists the online users, sorted."""
        return sorted(self._sockets)


_store: PresenceStore | None = None


def get_presence() -> PresenceStore:
    """Returns this process's presence store, creating it on first use."""
    global _store
    if _store is None:
        _store = LocalPresence()
    return _store


def reset_presence() -> None:
    """Drops the store, so the next `get_presence()` starts empty (tests, reconfiguration)."""
    global _store
    _store = None
