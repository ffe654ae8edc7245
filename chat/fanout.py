"""Per-process fan-out: one channel-layer subscription per group per process.

Channels' usual shape gives every socket its own channel and task: a room message
to 100 sockets of one process is queued 100 times, dispatched 100 times, and each
dispatch hops to a thread to close old database connections. Here the process has
one channel; it joins a group when its first local socket does, and hands each
event's frame, encoded once by the publisher, to the outbox of every local socket
of that group (chat/outbox.py): it never waits on a socket. Presence changes are
coalesced: a burst becomes one `users` frame per socket. Memberships are renewed
for as long as they have members, since channel layers expire them.
"""

import asyncio
import logging
import weakref
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from chat import groups, selectors
from chat.background import repeat
from chat.db import db_call
from chat.groups import EVERYONE
from chat.layers import layer_ready
from chat.presence import get_presence
from chat.protocol import encode, users_frame

logger = logging.getLogger(__name__)

# Up to this many presence changes in one window are sent one frame each; more
# become a single `users` frame with the whole list.
PRESENCE_FRAMES_PER_WINDOW = 5


class Socket(Protocol):
    """What the fan-out needs of a socket (ChatConsumer implements it)."""

    username: str

    def push(self, text: str) -> None:
        """Queues one text frame (or keeps it until the socket has sent `hello`); never waits."""
        ...

    def resync(self) -> None:
        """Asks the client to reconnect and sync: live frames may have been lost."""
        ...

    def session_ended(self) -> None:
        """Closes the socket because its login session ended."""
        ...

    def rooms_changed(self) -> None:
        """Follows a change of the room list."""
        ...


class Fanout:
    """The process's subscription to the channel layer, shared by all its sockets."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.members: dict[str, set[Socket]] = defaultdict(set)
        self._channel: str | None = None
        self._receiver: asyncio.Task | None = None
        # join/leave await the layer; the lock keeps "first in, subscribe" and
        # "last out, unsubscribe" from interleaving.
        self._lock = asyncio.Lock()
        self._presence: list[tuple[str, bool, str]] = []
        self._presence_flush: asyncio.Task | None = None
        self._rooms: asyncio.Future | None = None
        self._renewal: asyncio.Task | None = None

    async def room_names(self) -> list[str]:
        """The room list, read once while this process hears of its changes.

        Valid only while the process is subscribed to the everyone group, which
        carries `rooms.changed`: a socket must join that group before asking.
        Concurrent callers share one read.
        """
        rooms = self._rooms
        if rooms is None or (rooms.done() and (rooms.cancelled() or rooms.exception())):
            read = db_call(selectors.room_names, concurrent=True)()
            rooms = self._rooms = asyncio.ensure_future(read)
        return list(await asyncio.shield(rooms))

    async def ready(self) -> None:
        """Waits until the layer can deliver (its subscription is up after an outage)."""
        await layer_ready(self.layer)

    async def join(self, socket: Socket, groups: Iterable[str]) -> None:
        """Adds a local socket to groups, subscribing the process where it is the first."""
        async with self._lock:
            if self._channel is None:
                self._channel = await self.layer.new_channel(prefix="chat.process.")
            if self._receiver is None or self._receiver.done():
                self._receiver = asyncio.create_task(self._receive_forever())
            if self._renewal is None or self._renewal.done():
                self._renewal = asyncio.create_task(self._renew_forever())
            for group in groups:
                members = self.members[group]
                if not members:
                    await self.layer.group_add(group, self._channel)
                members.add(socket)

    async def leave(self, socket: Socket, groups: Iterable[str]) -> None:
        """Removes a local socket from groups, unsubscribing where it was the last."""
        async with self._lock:
            for group in groups:
                members = self.members.get(group)
                if members is None:
                    continue
                members.discard(socket)
                if not members:
                    del self.members[group]
                    if group == EVERYONE:
                        self._rooms = None  # no longer told of changes
                    await self.layer.group_discard(group, self._channel)

    async def _receive_forever(self) -> None:
        while True:
            try:
                event = await self.layer.receive(self._channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("receiving from the channel layer failed")
                await asyncio.sleep(1.0)
                continue
            try:
                await self._deliver(event)
            except Exception:
                # One bad event or socket must not stop delivery to every other socket.
                logger.exception("delivering a %s event failed", event.get("type"))

    async def _renew_forever(self) -> None:
        """Renews the process's memberships well within the layer's group expiry."""
        expiry = getattr(self.layer, "group_expiry", None) or 86400
        every = min(max(expiry / 4, 0.1), 3600.0)
        await repeat(self.renew, every=every, name="renewing group memberships")

    async def renew(self) -> None:
        """Re-adds the process channel to every group it has members in.

        The in-memory layer forgets a membership after `group_expiry` seconds, and
        drops the channel from every group when one of its queued events expires;
        a group found dropped may have lost events, so its sockets resync.
        """
        async with self._lock:
            if self._channel is None:
                return
            # Only the in-memory layer can be asked who is in a group; the pub/sub
            # layer's memberships are subscriptions, which do not expire.
            local = isinstance(self.layer, InMemoryChannelLayer)
            dropped = []
            for group in list(self.members):
                if local and self._channel not in self.layer.groups.get(group, {}):
                    dropped.append(group)
                await self.layer.group_add(group, self._channel)
        for group in dropped:
            logger.warning("the channel layer had dropped group %s: its sockets resync", group)
            for socket in list(self.members.get(group, ())):
                socket.resync()

    async def _deliver(self, event: dict) -> None:
        kind = event["type"]
        members = list(self.members.get(event.get("group", ""), ()))
        if kind == "chat.message":
            _push_all(members, event["text"])
        elif kind == "chat.presence":
            self._presence.append((event["user"], event["online"], event["text"]))
            if self._presence_flush is None or self._presence_flush.done():
                self._presence_flush = asyncio.create_task(self._flush_presence())
        elif kind == "session.ended":
            for socket in members:
                socket.session_ended()
        elif kind == "rooms.changed":
            self._rooms = None
            for socket in members:
                socket.rooms_changed()
        else:
            logger.warning("unknown event type %r", kind)

    async def _flush_presence(self) -> None:
        """Sends the presence changes of each window to every local socket, until none are left.

        Changes that arrive while a window is being sent (the online list is read
        from Redis for a burst) make the next window rather than wait for a later event.
        """
        while self._presence:
            await self._flush_presence_window()

    async def _flush_presence_window(self) -> None:
        await asyncio.sleep(settings.CHAT_PRESENCE_WINDOW_SECONDS)
        changes, self._presence = self._presence, []
        sockets = list(self.members.get(groups.EVERYONE, ()))
        online = None
        if len(changes) > PRESENCE_FRAMES_PER_WINDOW:
            try:
                online = await get_presence().online()
            except (RedisError, OSError) as exc:
                logger.warning("presence list unavailable: %s", exc.__class__.__name__)
        if online is None:
            for user, _, text in changes:
                # hello already told a socket that its own user is online.
                _push_all([s for s in sockets if s.username != user], text)
            return
        _push_all(sockets, encode(users_frame(online=online)))


def _push_all(sockets: Iterable[Socket], text: str) -> None:
    """Queues a frame on each socket; one socket's failure does not keep it from the others."""
    for socket in sockets:
        try:
            socket.push(text)
        except Exception:
            logger.exception("queuing a frame on a socket of %s failed", socket.username)


_fanouts: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Fanout]" = (
    weakref.WeakKeyDictionary()
)


def get_fanout() -> Fanout:
    """Returns this process's fan-out for the running event loop and current layer."""
    loop = asyncio.get_running_loop()
    layer = get_channel_layer()
    fanout = _fanouts.get(loop)
    if fanout is None or fanout.layer is not layer:
        fanout = _fanouts[loop] = Fanout(layer)
    return fanout
