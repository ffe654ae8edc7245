"""Who is online, who is away, and telling everyone when that changes.

One entry per open socket, each active or idle; a user is online while one of
theirs is active, away while every one of them is idle, offline without any.

`get_presence()` gives the store for this configuration: in process for the
embedded mode, in Redis when REDIS_URL is set, so every server process shares one
view and a crashed process's sockets expire instead of haunting the list. When a
user was last online is kept in the database (chat/last_seen.py).
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import redis.asyncio as aioredis
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from redis.exceptions import RedisError

from chat import groups
from chat.db import db_call
from chat.last_seen import last_seen_record_many, last_seen_touch
from chat.protocol import (
    AWAY,
    OFFLINE,
    ONLINE,
    encode,
    presence_batch_frame,
    presence_frame,
    users_frame,
)
from chat.realtime.background import repeat
from chat.realtime.publish import publish
from chat.realtime.rounds import Rounds
from chat.redis_pool import bounded_pool

logger = logging.getLogger(__name__)

# The name under which presence frames are published as a burst (see chat.realtime.fanout).
PRESENCE_BURST = "presence"

# How often each process records "last seen now" for the users it has sockets of:
# what a crash of every process at once can cost that time, without a write per frame.
LAST_SEEN_EVERY_SECONDS = 60.0

# Called with (user, status, last_seen) when maintenance finds a change (Redis mode).
Listener = Callable[[str, str, datetime | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Change:
    """A user's status before and after one change of their sockets."""

    user: str
    before: str
    after: str
    # For a user found gone by a sweep: when their sockets were last refreshed.
    last_seen: datetime | None = None

    @property
    def changed(self) -> bool:
        """Tells whether the user's status is different now (so it is announced)."""
        return self.before != self.after


@dataclass(frozen=True, slots=True)
class Joined:
    """The result of registering a socket."""

    change: Change
    sockets: int  # the user's open sockets, this one included
    # Everyone online and, among them, the away users, sorted, as they stood right
    # after the socket was added: what its `hello` lists.
    online: list[str]
    away: list[str]

    @property
    def first(self) -> bool:
        """Tells whether the user was offline before this socket."""
        return self.change.before == OFFLINE


class PresenceStore(Protocol):
    """The interface every presence store implements."""

    async def add(self, *, user: str, socket: str) -> Joined:
        """Registers an open, active socket of `user`; answers with the lists of
        users online and away right after."""
        ...

    async def remove(self, *, user: str, socket: str) -> Change:
        """Forgets a socket."""
        ...

    async def hand_off(self, sockets: list[tuple[str, str]]) -> list[Change]:
        """Forgets the (user, socket) entries of a stopping server; returns the changes made."""
        ...

    async def set_idle(self, *, user: str, socket: str, idle: bool) -> Change:
        """Marks one registered socket idle or active."""
        ...

    async def online(self) -> list[str]:
        """Lists the online users (away ones included), sorted."""
        ...

    async def statuses(self) -> tuple[list[str], list[str]]:
        """Lists the online users and, among them, the away ones; both sorted."""
        ...

    async def status(self, user: str) -> str:
        """Tells one user's status: online, away or offline."""
        ...

    def local_users(self) -> set[str]:
        """The users with a socket on this process."""
        ...


def _status_of(idle_flags) -> str:
    """The status of a user whose sockets have these idle flags."""
    flags = list(idle_flags)
    if not flags:
        return OFFLINE
    return AWAY if all(flags) else ONLINE


class LocalPresence:
    """Presence for the single-process embedded mode, kept in memory."""

    def __init__(self) -> None:
        self._sockets: dict[str, dict[str, bool]] = {}  # user -> socket -> idle

    def _status(self, user: str) -> str:
        return _status_of(self._sockets.get(user, {}).values())

    async def add(self, *, user: str, socket: str) -> Joined:
        """Registers an open, active socket of `user`."""
        before = self._status(user)
        sockets = self._sockets.setdefault(user, {})
        sockets[socket] = False
        online, away = await self.statuses()
        return Joined(
            change=Change(user, before, self._status(user)),
            sockets=len(sockets),
            online=online,
            away=away,
        )

    async def remove(self, *, user: str, socket: str) -> Change:
        """Forgets a socket."""
        before = self._status(user)
        sockets = self._sockets.get(user, {})
        sockets.pop(socket, None)
        if not sockets:
            self._sockets.pop(user, None)
        return Change(user, before, self._status(user))

    async def hand_off(self, sockets: list[tuple[str, str]]) -> list[Change]:
        """Forgets the sockets of this stopping process; in one process that is everyone's."""
        return [await self.remove(user=user, socket=socket) for user, socket in sockets]

    async def set_idle(self, *, user: str, socket: str, idle: bool) -> Change:
        """Marks one registered socket idle or active."""
        before = self._status(user)
        sockets = self._sockets.get(user, {})
        if socket in sockets:
            sockets[socket] = idle
        return Change(user, before, self._status(user))

    async def online(self) -> list[str]:
        """Lists the online users (away ones included), sorted."""
        return sorted(self._sockets)

    async def statuses(self) -> tuple[list[str], list[str]]:
        """Lists the online users and, among them, the away ones; both sorted."""
        away = [user for user in sorted(self._sockets) if self._status(user) == AWAY]
        return sorted(self._sockets), away

    async def status(self, user: str) -> str:
        """Tells one user's status: online, away or offline."""
        return self._status(user)

    def local_users(self) -> set[str]:
        """The users with a socket on this process."""
        return set(self._sockets)


# Each script runs atomically in Redis, so two processes never both see one change
# of a user's status. Times come from Redis' own clock. Every script ends by
# settling the users it touched: their status is recomputed from their live
# sockets and idle marks, stored in the online and away sets, and returned with
# the status those sets held before. ARGV[1] is always the key prefix.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local prefix = ARGV[1]
local online_key, away_key = prefix .. 'online', prefix .. 'away'
local expiries = prefix .. 'expiries'
-- Users handed off by a stopping server (see _HAND_OFF): user -> deadline.
local leaving = prefix .. 'leaving'

local function settle(user)
  local sockets, idle = prefix .. 'sockets:' .. user, prefix .. 'idle:' .. user
  local before = 'offline'
  if redis.call('SISMEMBER', online_key, user) == 1 then
    before = redis.call('SISMEMBER', away_key, user) == 1 and 'away' or 'online'
  end
  redis.call('ZREMRANGEBYSCORE', sockets, '-inf', now)
  -- An idle mark outlives its socket when the socket expired: drop it.
  for _, socket in ipairs(redis.call('SMEMBERS', idle)) do
    if not redis.call('ZSCORE', sockets, socket) then redis.call('SREM', idle, socket) end
  end
  local total = redis.call('ZCARD', sockets)
  local after = 'online'
  if total == 0 then
    -- Handed off by a stopping server: the status holds until the deadline.
    local deadline = redis.call('ZSCORE', leaving, user)
    if deadline and tonumber(deadline) > now and before ~= 'offline' then
      return before, before
    end
    redis.call('ZREM', leaving, user)
    after = 'offline'
    redis.call('SREM', online_key, user)
    redis.call('SREM', away_key, user)
  else
    redis.call('ZREM', leaving, user)
    redis.call('SADD', online_key, user)
    if redis.call('SCARD', idle) == total then
      after = 'away'
      redis.call('SADD', away_key, user)
    else
      redis.call('SREM', away_key, user)
    end
  end
  return before, after
end

-- Settles each of `users`; returns user, before, after triples of those that changed.
local function settle_each(users)
  local changed = {}
  for _, user in ipairs(users) do
    local before, after = settle(user)
    if before ~= after then
      table.insert(changed, user)
      table.insert(changed, before)
      table.insert(changed, after)
    end
  end
  return changed
end
"""

# ARGV: prefix, ttl, then user, socket pairs: sockets opened together (a round of
# handshakes). Each is added as if alone, in order: a user with two sockets in the
# round is online after the first. Returns before, after, the user's sockets, for
# each pair, then the online and the away users once all are added (what the new
# sockets are greeted with: one round trip, not a second one to read the lists).
_ADD = (
    _PRELUDE
    + """
local answers = {}
for i = 3, #ARGV, 2 do
  local user, socket = ARGV[i], ARGV[i + 1]
  redis.call('ZADD', prefix .. 'sockets:' .. user, now + ARGV[2], socket)
  redis.call('ZADD', expiries, now + ARGV[2], user .. '\\n' .. socket)
  redis.call('SREM', prefix .. 'idle:' .. user, socket)
  local before, after = settle(user)
  table.insert(answers, before)
  table.insert(answers, after)
  table.insert(answers, redis.call('ZCARD', prefix .. 'sockets:' .. user))
end
table.insert(answers, redis.call('SMEMBERS', online_key))
table.insert(answers, redis.call('SMEMBERS', away_key))
return answers
"""
)

# ARGV: prefix, user, socket. Returns {before, after}.
_REMOVE = (
    _PRELUDE
    + """
local user, socket = ARGV[2], ARGV[3]
redis.call('ZREM', prefix .. 'sockets:' .. user, socket)
redis.call('ZREM', expiries, user .. '\\n' .. socket)
redis.call('SREM', prefix .. 'idle:' .. user, socket)
local before, after = settle(user)
return {before, after}
"""
)

# ARGV: prefix, grace, then user, socket pairs: the sockets a stopping server hands
# off. Forgets them like _REMOVE, but a user they leave without a socket keeps their
# status for `grace` seconds (in `leaving`): a restart is not a goodbye, and the
# user is usually back by then. Returns user, before, after triples of the users
# whose status changed anyway (their sockets on other processes are all idle).
_HAND_OFF = (
    _PRELUDE
    + """
local users, seen = {}, {}
for i = 3, #ARGV, 2 do
  local user, socket = ARGV[i], ARGV[i + 1]
  redis.call('ZREM', prefix .. 'sockets:' .. user, socket)
  redis.call('ZREM', expiries, user .. '\\n' .. socket)
  redis.call('SREM', prefix .. 'idle:' .. user, socket)
  if not seen[user] then
    seen[user] = true
    table.insert(users, user)
  end
end
for _, user in ipairs(users) do
  if redis.call('SISMEMBER', online_key, user) == 1 then
    redis.call('ZADD', leaving, now + ARGV[2], user)
  end
end
return settle_each(users)
"""
)

# ARGV: prefix, user, socket, 1 (idle) or 0 (active). Returns {before, after}.
_IDLE = (
    _PRELUDE
    + """
local user, socket = ARGV[2], ARGV[3]
if redis.call('ZSCORE', prefix .. 'sockets:' .. user, socket) then
  if ARGV[4] == '1' then
    redis.call('SADD', prefix .. 'idle:' .. user, socket)
  else
    redis.call('SREM', prefix .. 'idle:' .. user, socket)
  end
end
local before, after = settle(user)
return {before, after}
"""
)

# ARGV: prefix, ttl, then user, socket, idle (1 or 0) triples: this process's sockets.
# Returns user, before, after triples of the users whose status changed: back after
# a sweep or a Redis restart, or their idle marks restored.
_REFRESH = (
    _PRELUDE
    + """
local users, seen = {}, {}
for i = 3, #ARGV, 3 do
  local user, socket = ARGV[i], ARGV[i + 1]
  redis.call('ZADD', prefix .. 'sockets:' .. user, now + ARGV[2], socket)
  redis.call('ZADD', expiries, now + ARGV[2], user .. '\\n' .. socket)
  if ARGV[i + 2] == '1' then
    redis.call('SADD', prefix .. 'idle:' .. user, socket)
  else
    redis.call('SREM', prefix .. 'idle:' .. user, socket)
  end
  if not seen[user] then
    seen[user] = true
    table.insert(users, user)
  end
end
return settle_each(users)
"""
)

# ARGV: prefix, batch size. Removes expired sockets, and ends the grace of handed-off
# users whose deadline passed; returns user, before, after, expiry quadruples of the
# users whose status changed (offline, or away when their last active socket
# expired), with the expiry of the socket that went (or the deadline).
_SWEEP = (
    _PRELUDE
    + """
local changed = {}
local expired = redis.call(
  'ZRANGEBYSCORE', expiries, '-inf', now, 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #expired, 2 do
  local entry, expiry = expired[i], expired[i + 1]
  redis.call('ZREM', expiries, entry)
  local cut = string.find(entry, '\\n', 1, true)
  local before, after = settle(string.sub(entry, 1, cut - 1))
  if before ~= after then
    table.insert(changed, string.sub(entry, 1, cut - 1))
    table.insert(changed, before)
    table.insert(changed, after)
    table.insert(changed, expiry)
  end
end
local late = redis.call('ZRANGEBYSCORE', leaving, '-inf', now, 'WITHSCORES', 'LIMIT', 0, ARGV[2])
for i = 1, #late, 2 do
  local user, deadline = late[i], late[i + 1]
  local before, after = settle(user)
  if before ~= after then
    table.insert(changed, user)
    table.insert(changed, before)
    table.insert(changed, after)
    table.insert(changed, deadline)
  end
end
return changed
"""
)


class RedisPresence:
    """Presence shared by every process on one Redis, with expiring socket entries.

    Each process refreshes the entries (and idle marks) of its own sockets every
    heartbeat and sweeps everyone's expired entries, so a killed process's users go
    offline within about TTL + heartbeat seconds, and a Redis that restarted empty
    is refilled within one heartbeat.
    """

    PREFIX = "chat:presence:"

    def __init__(self, url: str, *, ttl: float, heartbeat: float) -> None:
        self.ttl = ttl
        self.heartbeat = heartbeat
        self.redis = aioredis.Redis(
            connection_pool=bounded_pool(
                url,
                decode_responses=True,
                socket_timeout=5,
                socket_connect_timeout=5,
                health_check_interval=30,
            )
        )
        self._online = self.PREFIX + "online"
        self._away = self.PREFIX + "away"
        self._add = self.redis.register_script(_ADD)
        self._adds: Rounds[tuple[str, str, asyncio.Future]] = Rounds(self._add_round)
        self._remove = self.redis.register_script(_REMOVE)
        self._hand_off = self.redis.register_script(_HAND_OFF)
        self._idle = self.redis.register_script(_IDLE)
        self._refresh = self.redis.register_script(_REFRESH)
        self._sweep = self.redis.register_script(_SWEEP)
        self._local: dict[str, str] = {}  # this process's sockets: socket -> user
        self._idle_sockets: set[str] = set()  # those of them that are idle
        self._maintenance: asyncio.Task | None = None
        self._unannounced: list[Change] = []
        # The shared read of the lists (see `statuses`): the one under way (its task,
        # also kept so that it is not collected), and the next one, which callers
        # that came after it started wait for.
        self._next_read: asyncio.Future | None = None
        self._read_task: asyncio.Task | None = None

    async def add(self, *, user: str, socket: str) -> Joined:
        """Registers an open, active socket of `user`; answers with the lists of
        users online and away right after.

        Handshakes that arrive together share one script call (`_add_round`), where
        each cost Redis a call, a connection check-out and a round trip of its own;
        the same call reads the lists that their `hello` frames carry.
        """
        self._start_maintenance()
        joined = asyncio.get_running_loop().create_future()
        await self._adds.submit([(user, socket, joined)])
        self._local[socket] = user
        return joined.result()

    async def _add_round(self, items: list[tuple[str, str, asyncio.Future]]) -> None:
        args: list = [self.PREFIX, self.ttl]
        for user, socket, _ in items:
            args += [user, socket]
        *answers, online, away = await self._add(args=args)
        online, away = sorted(online), sorted(away)  # shared by the round's sockets
        for i, (user, _, joined) in enumerate(items):
            before, after, count = answers[3 * i : 3 * i + 3]
            change = Change(user, before, after)
            joined.set_result(Joined(change, int(count), online=online, away=away))

    async def remove(self, *, user: str, socket: str) -> Change:
        """Forgets a socket."""
        self._local.pop(socket, None)
        self._idle_sockets.discard(socket)
        before, after = await self._remove(args=[self.PREFIX, user, socket])
        return Change(user, before, after)

    async def hand_off(self, sockets: list[tuple[str, str]]) -> list[Change]:
        """Forgets the sockets of this stopping process; a user they leave without one stays
        as they were for one TTL (the restarted server usually has them back by then), then
        a sweep announces them offline, last seen when they were handed off."""
        args: list = [self.PREFIX, self.ttl]
        for user, socket in sockets:
            self._local.pop(socket, None)
            self._idle_sockets.discard(socket)
            args += [user, socket]
        found = await self._hand_off(args=args)
        return [Change(*found[i : i + 3]) for i in range(0, len(found), 3)]

    async def set_idle(self, *, user: str, socket: str, idle: bool) -> Change:
        """Marks one registered socket idle or active."""
        if socket in self._local:
            # Kept here too: the heartbeat restores it after a Redis restart.
            (self._idle_sockets.add if idle else self._idle_sockets.discard)(socket)
        before, after = await self._idle(args=[self.PREFIX, user, socket, int(idle)])
        return Change(user, before, after)

    async def online(self) -> list[str]:
        """Lists the online users (away ones included), sorted."""
        return sorted(await self.redis.smembers(self._online))

    async def statuses(self) -> tuple[list[str], list[str]]:
        """Lists the online users and, among them, the away ones; both sorted.

        Concurrent callers share one read (a storm of handshakes would otherwise
        read the whole list once each), but only a read that started after they
        asked: every change made before the call is in the answer.
        """
        answer = self._next_read
        if answer is None:
            answer = self._next_read = asyncio.get_running_loop().create_future()
            if self._read_task is None or self._read_task.done():
                self._start_read()
        return await asyncio.shield(answer)

    def _start_read(self) -> None:
        self._read_task = asyncio.ensure_future(self._read_for_callers())

    async def _read_for_callers(self) -> None:
        """Reads the lists for every caller waiting when the read starts (not before)."""
        answer, self._next_read = self._next_read, None
        try:
            answer.set_result(await self._read_statuses())
        except asyncio.CancelledError:
            answer.cancel()
            raise
        except Exception as exc:
            answer.set_exception(exc)
        finally:
            # Nothing awaits from here to the task's end, so a caller that comes later
            # finds the task done and starts the next read itself.
            if self._next_read is not None:
                self._start_read()

    async def _read_statuses(self) -> tuple[list[str], list[str]]:
        async with self.redis.pipeline(transaction=True) as pipe:
            online, away = await pipe.smembers(self._online).smembers(self._away).execute()
        return sorted(online), sorted(away)

    async def status(self, user: str) -> str:
        """Tells one user's status: online, away or offline."""
        async with self.redis.pipeline(transaction=True) as pipe:
            online, away = (
                await pipe.sismember(self._online, user).sismember(self._away, user).execute()
            )
        if not online:
            return OFFLINE
        return AWAY if away else ONLINE

    def local_users(self) -> set[str]:
        """The users with a socket on this process."""
        return set(self._local.values())

    async def maintain(self) -> list[Change]:
        """Refreshes this process's sockets and sweeps expired ones; returns the changes found."""
        changes: list[Change] = []
        if self._local:
            args: list = [self.PREFIX, self.ttl]
            for socket, user in list(self._local.items()):
                args += [user, socket, int(socket in self._idle_sockets)]
            found = await self._refresh(args=args)
            changes += [Change(*found[i : i + 3]) for i in range(0, len(found), 3)]
        found = await self._sweep(args=[self.PREFIX, 1000])
        for i in range(0, len(found), 4):
            user, before, after, expiry = found[i : i + 4]
            # The socket was last refreshed one TTL before it expired (a handed-off
            # user's deadline is one TTL after the hand-off).
            seen = datetime.fromtimestamp(float(expiry) - self.ttl, UTC)
            changes.append(Change(user, before, after, last_seen=seen))
        return changes

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
        changes = await self.maintain()
        if _listener is None:
            return
        # Announcements that failed last time go first: the sweep that found them
        # will not find them again.
        changes = self._unannounced + changes
        self._unannounced = []
        failed = None
        for change in changes:
            try:
                await _listener(change.user, change.after, change.last_seen)
            except (RedisError, OSError) as exc:
                # One lost announcement must not cost the others (or the heartbeat).
                self._unannounced.append(change)
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
_keeper: asyncio.Task | None = None
_hand_offs: "Rounds[tuple[str, str]] | None" = None
# Users going offline, each with the time to record and the future of its answer.
_last_seen_rounds: "Rounds[tuple[str, datetime, asyncio.Future]] | None" = None


def on_presence_change(listener: Listener) -> None:
    """Sets who hears the changes found by heartbeats and sweeps (Redis mode)."""
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
    global _store, _keeper, _hand_offs, _last_seen_rounds
    tasks = [_keeper]
    if isinstance(_store, RedisPresence):
        tasks.append(_store._maintenance)
    for task in tasks:
        if task is not None and not task.done():
            # A task of an event loop already closed (a finished test) cannot be told.
            with contextlib.suppress(RuntimeError):
                task.cancel()
    _store = None
    _keeper = None
    _hand_offs = None
    _last_seen_rounds = None


# --- Last seen -------------------------------------------------------------------


def _keep_last_seen_fresh() -> None:
    """Starts this process's periodic "last seen now" for its users, once."""
    global _keeper
    if _keeper is None or _keeper.done():
        _keeper = asyncio.create_task(
            repeat(
                _touch_last_seen,
                every=LAST_SEEN_EVERY_SECONDS,
                name="last seen",
                expected=(DatabaseError, OSError),
            )
        )


async def _touch_last_seen() -> None:
    """Records "last seen now" for every user with a socket on this process."""
    users = get_presence().local_users()
    if users:
        await db_call(last_seen_touch)(usernames=sorted(users), at=timezone.now())


async def _record_last_seen(user: str, at: datetime) -> datetime:
    """Records when a user going offline was last seen; the time to announce.

    Users going offline together share one write (`_last_seen_round`).
    """
    global _last_seen_rounds
    if _last_seen_rounds is None:
        _last_seen_rounds = Rounds(_last_seen_round)
    recorded = asyncio.get_running_loop().create_future()
    try:
        await _last_seen_rounds.submit([(user, at, recorded)])
    except DatabaseError as exc:
        # The announcement matters more than the record: the next one catches up.
        logger.warning("last seen not recorded: %s", exc.__class__.__name__)
        return at
    return recorded.result()


async def _last_seen_round(items: list[tuple[str, datetime, asyncio.Future]]) -> None:
    recorded = await db_call(last_seen_record_many)(seen=[(user, at) for user, at, _ in items])
    for user, at, answer in items:
        answer.set_result(recorded.get(user, at))


# --- Announcements -------------------------------------------------------------


async def presence_join(*, user: str, socket: str) -> Joined:
    """Registers a socket; announces the user when that makes them online (or back from away)."""
    _keep_last_seen_fresh()
    joined = await get_presence().add(user=user, socket=socket)
    if joined.change.changed:
        await announce(user, joined.change.after)
    return joined


async def presence_leave(*, user: str, socket: str) -> None:
    """Forgets a socket; announces the user offline (or away) when that changes them."""
    change = await get_presence().remove(user=user, socket=socket)
    if change.changed:
        await announce(user, change.after)


async def presence_hand_off(*, user: str, socket: str) -> None:
    """Gives back a socket of a stopping server without announcing its user offline.

    A deploy or a restart closes every socket at once, and the pages come back within
    seconds: saying goodbye to each user, and hello again a moment later, would make
    every list flicker and cost a write and a frame to everyone per user, twice.
    Sockets handed off at once go to the store together (one Redis call, one write).
    """
    global _hand_offs
    if _hand_offs is None:
        _hand_offs = Rounds(_hand_off_round)
    await _hand_offs.submit([(user, socket)])


async def _hand_off_round(sockets: list[tuple[str, str]]) -> None:
    changes = await get_presence().hand_off(sockets)
    # Offline only in the one-process mode, whose sockets are all closing: nobody is
    # left to tell, and when they were last seen is one write for all of them.
    gone = sorted({change.user for change in changes if change.after == OFFLINE})
    if gone:
        try:
            await db_call(last_seen_touch)(usernames=gone, at=timezone.now())
        except DatabaseError as exc:
            logger.warning("last seen not recorded: %s", exc.__class__.__name__)
    for change in changes:
        if change.changed and change.after != OFFLINE:
            await announce(change.user, change.after)


async def presence_idle(*, user: str, socket: str, idle: bool) -> None:
    """Marks a socket idle or active; announces the user away or online when that changes them."""
    change = await get_presence().set_idle(user=user, socket=socket, idle=idle)
    if change.changed:
        await announce(user, change.after)


async def presence_profile(*, user: str, last_seen: datetime | None) -> tuple[str, datetime | None]:
    """A user's status, and when they were last seen if offline (given: the stored time)."""
    status = await get_presence().status(user)
    return status, (last_seen if status == OFFLINE else None)


async def announce(user: str, status: str, last_seen: datetime | None = None) -> None:
    """Publishes a user's new status (online, away, offline) to every socket.

    Going offline records when the user was last seen (now, unless a sweep found
    an earlier time). Not to the user's own sockets (`hello` told them); as part of
    the "presence" burst, which each process gathers for CHAT_PRESENCE_WINDOW_SECONDS.
    """
    if status == OFFLINE:
        last_seen = await _record_last_seen(user, last_seen or timezone.now())
    frame = presence_frame(user=user, status=status, last_seen=last_seen)
    await publish([groups.EVERYONE], frame, except_user=user, burst=PRESENCE_BURST)


async def online_list_text() -> str | None:
    """The summary of a presence burst: one `users` frame with the whole online list.

    None (send the changes one by one after all) when the list cannot be read.
    """
    try:
        online, away = await get_presence().statuses()
    except (RedisError, OSError) as exc:
        logger.warning("presence list unavailable: %s", exc.__class__.__name__)
        return None
    return encode(users_frame(online=online, away=away))


def presence_batch(texts: list[str]) -> str:
    """One `presence_batch` frame for a window's `presence` frames (their texts, in order).

    Only each user's last status is kept, so the frame says where applying every
    change would end, in a few characters per user rather than a frame each.
    """
    final: dict[str, dict] = {}
    for text in texts:
        frame = json.loads(text)
        final[frame["user"]] = frame
    by_status: dict[str, list[str]] = {ONLINE: [], AWAY: [], OFFLINE: []}
    last_seen: dict[str, str | None] = {}
    for user, frame in final.items():
        by_status[frame["status"]].append(user)
        if frame["status"] == OFFLINE:
            last_seen[user] = frame.get("last_seen")
    return encode(
        presence_batch_frame(
            online=by_status[ONLINE],
            away=by_status[AWAY],
            offline=by_status[OFFLINE],
            last_seen=last_seen,
        )
    )
