"""Per-process fan-out: one channel-layer subscription per group per process.

Channels' usual shape gives every socket its own channel and task: a room message
to 100 sockets of one process is queued 100 times, dispatched 100 times, and each
dispatch hops to a thread to close old database connections. Here the process has
one channel; it joins a group when its first local socket does, and hands each
event's frame, encoded once by the publisher, to the outbox of every local socket
of that group (chat/realtime/outbox.py): it never waits on a socket, and it never
learns what a frame means. Frames published as a named burst are gathered for a
short window: sockets that take batches get the window's frames as one combined
frame, the others get them one by one or, for a burst too large, one summary frame.
Memberships are renewed for as long as they have members, since channel layers
expire them.
"""

import asyncio
import logging
import weakref
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.conf import settings

from chat import metrics
from chat.groups import EVERYONE
from chat.realtime.background import repeat
from chat.realtime.layers import group_add_many, group_discard_many, layer_ready
from chat.realtime.publish import CLOSE, FRAME, ROOMS_CHANGED, SESSION_RENAMED
from chat.realtime.rounds import Rounds

logger = logging.getLogger(__name__)

# Up to this many frames of one burst in one window are sent one by one; more are
# replaced by the burst's summary, when it has one.
FRAMES_PER_BURST_WINDOW = 5

# Set at start-up (chat.apps): what reads the room list, and the summary of each
# named burst (a frame's text, or None to send the frames one by one after all).
# The room list is each room's name with its member ids (None: open to everyone);
# the fan-out only keeps it, and each socket picks its own rooms from it.
RoomList = list[tuple[str, frozenset[int] | None]]
_room_reader: Callable[[], Awaitable[RoomList]] | None = None
_summaries: dict[str, Callable[[], Awaitable[str | None]]] = {}
# What combines the frames of one window of a named burst into one frame's text,
# for sockets that take batches.
_combiners: dict[str, Callable[[list[str]], str]] = {}


def set_room_reader(reader: Callable[[], Awaitable[RoomList]]) -> None:
    """Sets the function that reads the room list (cached per process by the fan-out)."""
    global _room_reader
    _room_reader = reader


def on_burst(
    name: str,
    summarise: Callable[[], Awaitable[str | None]],
    combine: Callable[[list[str]], str] | None = None,
) -> None:
    """Sets the summary that replaces a burst of frames published with `burst=name`.

    `combine`, if given, makes one frame of a window's frames (in order) for the
    sockets that take batches.
    """
    _summaries[name] = summarise
    if combine is not None:
        _combiners[name] = combine


class Socket(Protocol):
    """What the fan-out needs of a socket (ChatConsumer implements it)."""

    username: str
    # Whether the socket takes a window of burst frames as one combined frame.
    takes_batches: bool

    def push(self, text: str) -> None:
        """Queues one text frame (or keeps it until the socket has sent `hello`); never waits."""
        ...

    def resync(self) -> None:
        """Asks the client to reconnect and sync: live frames may have been lost."""
        ...

    def end(self, code: int) -> None:
        """Closes the socket with `code` (its session or account ended)."""
        ...

    def rooms_changed(self) -> None:
        """Follows a change of the room list."""
        ...

    def session_renamed(self, key: str) -> None:
        """Follows its login session to a new key (a password change cycles it)."""
        ...


class Fanout:
    """The process's subscription to the channel layer, shared by all its sockets."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.members: dict[str, set[Socket]] = defaultdict(set)
        self._channel: str | None = None
        self._receiver: asyncio.Task | None = None
        # The groups the process's channel is subscribed to (the request was sent).
        self._subscribed: set[str] = set()
        # Each round brings the subscriptions of the groups given in line with
        # their members (see chat/realtime/rounds.py).
        self._settle = Rounds(self._subscribe_as_wanted)
        # Rounds and renewals await the layer: one at a time.
        self._lock = asyncio.Lock()
        self._bursts: dict[str, list[dict]] = defaultdict(list)
        self._burst_flushes: dict[str, asyncio.Task] = {}
        self._rooms: asyncio.Future | None = None
        self._renewal: asyncio.Task | None = None

    async def rooms(self) -> RoomList:
        """The room list, read once while this process hears of its changes.

        Valid only while the process is subscribed to the everyone group, which
        carries `rooms.changed`: a socket must join that group before asking.
        Concurrent callers share one read.
        """
        rooms = self._rooms
        if rooms is None or (rooms.done() and (rooms.cancelled() or rooms.exception())):
            rooms = self._rooms = asyncio.ensure_future(_room_reader())
        return list(await asyncio.shield(rooms))

    async def ready(self) -> None:
        """Waits until the layer can deliver (its subscription is up after an outage)."""
        await layer_ready(self.layer)

    async def join(self, socket: Socket, groups: Iterable[str]) -> None:
        """Adds a local socket to groups; returns once the process is subscribed to each.

        A group the process already listens to costs nothing. The others are
        subscribed in rounds: the joins and leaves that arrive while one round is under
        way share the next, one request per round. After a restart every handshake
        brings two groups of its own (its user's and its session's); subscribed one by
        one behind a lock, each waited for a turn of a busy event loop, and a crowd of
        handshakes queued for seconds.
        """
        missing = []
        for group in groups:
            self.members[group].add(socket)
            if group not in self._subscribed:
                missing.append(group)
        if not missing:
            return
        try:
            await self._settle.submit(missing)
        except BaseException:
            # Not joined after all: the groups only it wanted go back at the next round.
            self._settle.later(group for group in missing if self._discard(socket, group))
            raise

    async def leave(self, socket: Socket, groups: Iterable[str]) -> None:
        """Removes a local socket from groups; the process unsubscribes where it was the last."""
        emptied = [group for group in groups if self._discard(socket, group)]
        if emptied:
            await self._settle.submit(emptied)

    def drop(self, socket: Socket, groups: Iterable[str]) -> None:
        """Removes a local socket from groups without unsubscribing: for a process that stops.

        Its subscriptions end with its connection to the layer. Unsubscribing group by
        group as its sockets close was most of a stop at 10,000 sockets (20,000
        unsubscribes and their replies, docs/performance.md).
        """
        for group in groups:
            self._discard(socket, group)

    def _discard(self, socket: Socket, group: str) -> bool:
        """Takes a socket out of a group's members; True if that left the group empty."""
        members = self.members.get(group)
        if members is None:
            return False
        members.discard(socket)
        if members:
            return False
        del self.members[group]
        if group == EVERYONE:
            self._rooms = None  # no longer told of changes
        return True

    async def _subscribe_as_wanted(self, given: list[str]) -> None:
        """One round: subscribes the given groups that have members, unsubscribes the others."""
        async with self._lock:
            if self._channel is None:
                self._channel = await self.layer.new_channel(prefix="chat.process.")
            if self._receiver is None or self._receiver.done():
                self._receiver = asyncio.create_task(self._receive_forever())
            if self._renewal is None or self._renewal.done():
                self._renewal = asyncio.create_task(self._renew_forever())
            groups = set(given)
            wanted = {group for group in groups if self.members.get(group)}
            unwanted = (groups - wanted) & self._subscribed
            # Taken out first: a join meanwhile waits for the next round, which
            # subscribes again after this unsubscribes.
            self._subscribed -= unwanted
            await group_discard_many(self.layer, sorted(unwanted), self._channel)
            new = wanted - self._subscribed
            await group_add_many(self.layer, sorted(new), self._channel)
            self._subscribed |= new

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
            subscribed = sorted(self._subscribed)
            dropped = [
                group
                for group in subscribed
                if local and self._channel not in self.layer.groups.get(group, {})
            ]
            await group_add_many(self.layer, subscribed, self._channel)
        for group in dropped:
            logger.warning("the channel layer had dropped group %s: its sockets resync", group)
            for socket in list(self.members.get(group, ())):
                socket.resync()

    async def _deliver(self, event: dict) -> None:
        kind = event["type"]
        members = list(self.members.get(event.get("group", ""), ()))
        if kind == FRAME:
            burst = event.get("burst")
            if burst is None:
                _push_all(members, event["text"], event.get("except_user"))
                return
            self._bursts[burst].append(event)
            flush = self._burst_flushes.get(burst)
            if flush is None or flush.done():
                self._burst_flushes[burst] = asyncio.create_task(self._flush_burst(burst))
        elif kind == CLOSE:
            for socket in members:
                socket.end(event["code"])
        elif kind == SESSION_RENAMED:
            for socket in members:
                socket.session_renamed(event["key"])
        elif kind == ROOMS_CHANGED:
            self._rooms = None
            for socket in members:
                socket.rooms_changed()
        else:
            logger.warning("unknown event type %r", kind)

    async def _flush_burst(self, name: str) -> None:
        """Sends the frames of a burst window by window, until none are left.

        Frames that arrive while a window is being sent (its summary may be read
        from Redis) make the next window rather than wait for a later event.
        """
        while self._bursts[name]:
            await asyncio.sleep(burst_window(len(self.members.get(EVERYONE, ()))))
            events, self._bursts[name] = self._bursts[name], []
            by_group: dict[str, list[dict]] = {}
            for event in events:
                by_group.setdefault(event["group"], []).append(event)
            combine = _combiners.get(name)
            # Members are split once per window: those that take a combined frame
            # and the others, which get the frames one by one or the summary.
            batched: dict[str, list[Socket]] = {}
            single: dict[str, list[Socket]] = {}
            for group, group_events in by_group.items():
                members = list(self.members.get(group, ()))
                if combine is None or len(group_events) < 2:
                    single[group] = members
                    continue
                batched[group] = [socket for socket in members if socket.takes_batches]
                single[group] = [socket for socket in members if not socket.takes_batches]
            for group, sockets in batched.items():
                if not sockets:
                    continue
                try:
                    text = combine([event["text"] for event in by_group[group]])
                except Exception:
                    # Those sockets get what the others get, rather than nothing.
                    logger.exception("combining a %s burst failed", name)
                    single[group] += sockets
                    continue
                _push_all(sockets, text)
            summary = None
            summarise = _summaries.get(name)
            if (
                len(events) > FRAMES_PER_BURST_WINDOW
                and summarise is not None
                and any(single.values())
            ):
                summary = await summarise()
            for group, sockets in single.items():
                if summary is not None:
                    _push_all(sockets, summary)
                    continue
                for event in by_group[group]:
                    _push_all(sockets, event["text"], event.get("except_user"))


def burst_window(sockets: int) -> float:
    """How long a process gathers a burst's frames, with `sockets` open.

    CHAT_PRESENCE_WINDOW_SECONDS, or longer once a frame to every socket every window
    would write more than CHAT_PRESENCE_FRAMES_PER_SECOND frames a second: the
    window grows with the process's sockets, so what a storm of arrivals costs the
    process in writes per second stays bounded however many are connected, instead
    of growing with the square of the crowd. Each list still ends exact: only the
    delay of a presence change grows (1 s at 10,000 sockets by default).
    """
    return max(
        settings.CHAT_PRESENCE_WINDOW_SECONDS, sockets / settings.CHAT_PRESENCE_FRAMES_PER_SECOND
    )


def _push_all(sockets: Iterable[Socket], text: str, except_user: str | None = None) -> None:
    """Queues a frame on each socket; one socket's failure does not keep it from the others."""
    delivered = 0
    for socket in sockets:
        if socket.username == except_user:
            continue
        try:
            socket.push(text)
            delivered += 1
        except Exception:
            logger.exception("queuing a frame on a socket of %s failed", socket.username)
    # Counted once per frame, not per socket: the counter takes a lock on every call.
    metrics.DELIVERIES.inc(delivered)


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
