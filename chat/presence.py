"""Who is online, and telling everyone when that changes.

One entry per open socket; a user is online while one of theirs is.

`get_presence()` gives the store for this configuration: in process for the
embedded mode, in Redis when REDIS_URL is set, so every server process shares one
view and a crashed process's sockets expire instead of haunting the list.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

from chat import groups
from chat.protocol import encode, presence_frame, users_frame
from chat.realtime.background import repeat
from chat.realtime.publish import publish

logger = logging.getLogger(__name__)

# The name under which presence frames are published as a burst (see chat.realtime.fanout).
PRESENCE_BURST = "presence"

# Called with (user, online) when maintenance finds a transition (Redis mode).
Listener = Callable[[str, bool], Awaitable[None]]


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


# Each script runs atomically in Redis, so two processes never both see "first"
# or both see "last" for one user. Times come from Redis' own clock.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: user's sockets, expiries, online set. ARGV: socket, user, ttl.
_ADD = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], now + ARGV[3], ARGV[2] .. '\\n' .. ARGV[1])
local first = redis.call('SADD', KEYS[3], ARGV[2])
return {first, redis.call('ZCARD', KEYS[1])}
"""
)

# KEYS: user's sockets, expiries, online set. ARGV: socket, user.
_REMOVE = (
    _NOW
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2] .. '\\n' .. ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) == 0 then
  return redis.call('SREM', KEYS[3], ARGV[2])
end
return 0
"""
)

# KEYS: expiries, online set. ARGV: key prefix, ttl, then user, socket pairs.
# Returns the users that were not online: re-added after a sweep or a Redis restart.
_REFRESH = (
    _NOW
    + """
local back = {}
for i = 3, #ARGV, 2 do
  local user, socket = ARGV[i], ARGV[i + 1]
  redis.call('ZADD', ARGV[1] .. user, now + ARGV[2], socket)
  redis.call('ZADD', KEYS[1], now + ARGV[2], user .. '\\n' .. socket)
  if redis.call('SADD', KEYS[2], user) == 1 then table.insert(back, user) end
end
return back
"""
)

# KEYS: expiries, online set. ARGV: key prefix, batch size.
# Removes expired sockets; returns the users left with none.
_SWEEP = (
    _NOW
    + """
local gone = {}
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[2])
for _, entry in ipairs(expired) do
  redis.call('ZREM', KEYS[1], entry)
  local cut = string.find(entry, '\\n', 1, true)
  local user = string.sub(entry, 1, cut - 1)
  local key = ARGV[1] .. user
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) == 0 and redis.call('SREM', KEYS[2], user) == 1 then
    table.insert(gone, user)
  end
end
return gone
"""
)


class RedisPresence:
    """Presence shared by every process on one Redis, with expiring socket entries.

    Each process refreshes the entries of its own sockets every heartbeat and sweeps
    everyone's expired entries, so a killed process's users go offline within
    about TTL + heartbeat seconds, and a Redis that restarted empty is refilled
    within one heartbeat.
    """

    PREFIX = "chat:presence:"

    def __init__(self, url: str, *, ttl: float, heartbeat: float) -> None:
        self.ttl = ttl
        self.heartbeat = heartbeat
        self.redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        self._sockets_prefix = self.PREFIX + "sockets:"
        self._expiries = self.PREFIX + "expiries"
        self._online = self.PREFIX + "online"
        self._add = self.redis.register_script(_ADD)
        self._remove = self.redis.register_script(_REMOVE)
        self._refresh = self.redis.register_script(_REFRESH)
        self._sweep = self.redis.register_script(_SWEEP)
        self._local: dict[str, str] = {}  # this process's sockets: socket -> user
        self._maintenance: asyncio.Task | None = None
        self._unannounced: list[tuple[str, bool]] = []

    async def add(self, *, user: str, socket: str) -> Joined:
        """Registers an open socket of `user`."""
        self._start_maintenance()
        keys = [self._sockets_prefix + user, self._expiries, self._online]
        first, count = await self._add(keys=keys, args=[socket, user, self.ttl])
        self._local[socket] = user
        return Joined(first=bool(first), sockets=int(count))

    async def remove(self, *, user: str, socket: str) -> bool:
        """Forgets a socket; True when it was the user's last one."""
        self._local.pop(socket, None)
        keys = [self._sockets_prefix + user, self._expiries, self._online]
        return bool(await self._remove(keys=keys, args=[socket, user]))

    async def online(self) -> list[str]:
        """Lists the online users, sorted."""
        return sorted(await self.redis.smembers(self._online))

    async def maintain(self) -> tuple[list[str], list[str]]:
        """Refreshes this process's sockets and sweeps expired ones; returns (back, gone)."""
        back: list[str] = []
        if self._local:
            args = [self._sockets_prefix, self.ttl]
            for socket, user in list(self._local.items()):
                args += [user, socket]
            back = await self._refresh(keys=[self._expiries, self._online], args=args)
        gone = await self._sweep(
            keys=[self._expiries, self._online], args=[self._sockets_prefix, 1000]
        )
        return back, gone

    def _start_maintenance(self) -> None:
        if self._maintenance is None or self._maintenance.done():
            self._maintenance = asyncio.create_task(self._maintain_forever())

    async def _maintain_forever(self) -> None:
        # No back-off beyond one beat: a late heartbeat lets live sockets expire.
        await repeat(
            self._beat,
            every=self.heartbeat,
            name="presence heartbeat",
            max_backoff=self.heartbeat,
            expected=(RedisError, OSError),
        )

    async def _beat(self) -> None:
        """One heartbeat: refresh and sweep, then announce what changed."""
        back, gone = await self.maintain()
        if _listener is None:
            return
        # Announcements that failed last time go first: the sweep that found them
        # will not find them again.
        changes = self._unannounced + [(u, True) for u in back] + [(u, False) for u in gone]
        self._unannounced = []
        failed = None
        for user, online in changes:
            try:
                await _listener(user, online)
            except (RedisError, OSError) as exc:
                # One lost announcement must not cost the others (or the heartbeat).
                self._unannounced.append((user, online))
                failed = exc
        if failed is not None:
            raise failed

    async def close(self) -> None:
        """Stops maintenance and closes the Redis connections."""
        if self._maintenance is not None:
            self._maintenance.cancel()
        await self.redis.aclose()


_store: PresenceStore | None = None
_listener: Listener | None = None


def on_presence_change(listener: Listener) -> None:
    """Sets who hears the transitions found by heartbeats and sweeps (Redis mode)."""
    global _listener
    _listener = listener


def get_presence() -> PresenceStore:
    """Returns this process's presence store, creating it on first use."""
    global _store
    if _store is None:
        if settings.REDIS_URL:
            _store = RedisPresence(
                settings.REDIS_URL,
                ttl=settings.CHAT_PRESENCE_TTL_SECONDS,
                heartbeat=settings.CHAT_HEARTBEAT_SECONDS,
            )
        else:
            _store = LocalPresence()
    return _store


def reset_presence() -> None:
    """Drops the store, so the next `get_presence()` starts empty (tests, reconfiguration)."""
    global _store
    if isinstance(_store, RedisPresence) and _store._maintenance is not None:
        _store._maintenance.cancel()
    _store = None


# --- Announcements -------------------------------------------------------------


async def presence_join(*, user: str, socket: str) -> Joined:
    """Registers a socket and announces the user when it is their first."""
    joined = await get_presence().add(user=user, socket=socket)
    if joined.first:
        await announce(user, True)
    return joined


async def presence_leave(*, user: str, socket: str) -> None:
    """Forgets a socket and announces the user offline when it was their last."""
    if await get_presence().remove(user=user, socket=socket):
        await announce(user, False)


async def announce(user: str, online: bool) -> None:
    """Publishes a user's coming online or going offline to every socket.

    Not to the user's own sockets (`hello` told them); as part of the "presence"
    burst, which each process gathers for CHAT_PRESENCE_WINDOW_SECONDS.
    """
    frame = presence_frame(user=user, online=online)
    await publish([groups.EVERYONE], frame, except_user=user, burst=PRESENCE_BURST)


async def online_list_text() -> str | None:
    """The summary of a presence burst: one `users` frame with the whole online list.

    None (send the changes one by one after all) when the list cannot be read.
    """
    try:
        online = await get_presence().online()
    except (RedisError, OSError) as exc:
        logger.warning("presence list unavailable: %s", exc.__class__.__name__)
        return None
    return encode(users_frame(online=online))
