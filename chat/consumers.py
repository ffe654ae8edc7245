"""The chat socket: authenticates the handshake, greets, hands client frames to their
handlers (chat/handlers.py), and writes what the fan-out delivers.

It holds no rules of its own; every frame it writes goes through its outbox
(chat/realtime/outbox.py), so nothing here ever waits on the client.
"""

import asyncio
import logging
import uuid

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import groups, handlers, logcontext, loop_db
from chat.errors import OUTAGES
from chat.handshake_limit import handshake_done
from chat.messaging.greeting import greeting_steps
from chat.presence import presence_hand_off, presence_join, presence_leave
from chat.protocol import (
    MAX_FRAME_BYTES,
    CloseCode,
    encode,
    encode_hello,
    hello_frame,
    rooms_frame,
    takes_presence_batches,
)
from chat.ratelimit import connect_rate_check
from chat.realtime import sockets
from chat.realtime.fanout import get_fanout
from chat.realtime.layers import layer_generation
from chat.realtime.outbox import Outbox, abort_transport, run_eagerly
from chat.rooms import room_names_of

logger = logging.getLogger(__name__)

# After a socket is given up as too slow and sent its close frame, how long the
# client has to read it before the connection is dropped anyway.
CLOSE_GRACE_SECONDS = 1.0


class ChatConsumer(AsyncWebsocketConsumer):
    """One browser tab's socket, carrying its user's rooms and direct messages."""

    # Sockets get their events from the process's fan-out (chat/realtime/fanout.py),
    # not from a channel of their own: naming a layer that is not configured makes
    # Channels skip creating one.
    channel_layer_alias = "sockets-use-the-process-fanout"

    user = None
    rooms: list[str] = []
    typing_at = 0.0  # when this socket last announced typing (time.monotonic)
    registered = False
    gone = False  # the client disconnected; nothing more is sent
    member_of: frozenset[str] = frozenset()
    takes_batches = False  # asked for `presence_batch` frames (`?presence=batch`)

    async def dispatch(self, message: dict) -> None:
        """Routes one ASGI message to its handler.

        Unlike Channels' dispatch, this does not hop to a thread to close old
        database connections on every frame: every database call here goes
        through `db_call`, which does that itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- Opening and closing ---------------------------------------------------

    async def connect(self) -> None:
        """Refuses anonymous or too many handshakes; joins the groups and greets with `hello`."""
        try:
            await self._open()
        finally:
            # Accepted or refused: the handshake's slot goes to the next one.
            handshake_done(self.scope)

    async def _open(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            logger.info("socket refused: not logged in")
            await self.close()  # before accept(): the handshake is refused with 403
            return
        try:
            retry_after = await connect_rate_check(user_id=user.pk)
        except OUTAGES as exc:
            logger.warning("connect limit not counted: %s", exc.__class__.__name__)
            retry_after = None
        if retry_after is not None:
            logger.info("socket refused: user=%s opens sockets too fast", user.get_username())
            await self.close()  # refused before the socket opens: HTTP 403
            return
        self.user = user
        self.user_id = user.pk
        self.username = user.get_username()
        self.session_key = self.scope["session"].session_key
        self.takes_batches = takes_presence_batches(self.scope.get("query_string", b""))
        self.socket_id = uuid.uuid4().hex
        logcontext.bind_socket(self.socket_id)  # its log lines name it
        self.outbox = Outbox(
            self.base_send,
            max_queued=settings.CHAT_SEND_QUEUE_CHARS,
            stall_seconds=settings.CHAT_SEND_STALL_SECONDS,
            on_too_slow=self._too_slow,
        )
        self._early: list[str] = []
        self._live = False
        self._tasks: set[asyncio.Task] = set()
        try:
            joined, hello = await self._join()
        except OUTAGES as exc:
            # Accept, then ask the client to come back: a refused handshake looks
            # like a lost session to a browser.
            logger.warning("socket open failed: user=%s %s", self.username, exc.__class__.__name__)
            await self.accept()
            self.end(CloseCode.RECONNECT)
            return
        await self.accept()
        if not self.outbox.opened():
            logger.info("socket gone during its handshake: user=%s", self.username)
            return
        if joined.sockets > settings.CHAT_MAX_SOCKETS:
            logger.info("socket refused: user=%s has too many sockets", self.username)
            self.end(CloseCode.TOO_MANY_SOCKETS)
            return
        self.outbox.put(encode_hello(hello))
        # Frames the fan-out delivered while `hello` was being prepared go out now,
        # in order; queuing never waits, so nothing can come between.
        for text in self._early:
            self.outbox.put(text)
        self._early = []
        self._live = True
        sockets.register(self)
        if self._generation != layer_generation():
            self.resync()  # the layer reconnected while this socket was joining
        logger.info("socket opened: user=%s sockets=%d", self.username, joined.sockets)

    async def _join(self):
        """Joins the groups, registers presence and builds `hello`."""
        fanout = get_fanout()
        # After a Redis outage, wait for the layer's subscription to come back: a
        # socket that joins after that has missed nothing. A reconnect from here on
        # may have cost it live frames (checked once it is live).
        await fanout.ready()
        self._generation = layer_generation()
        personal = {
            groups.EVERYONE,
            groups.user_group(self.user.pk),
            groups.session_group(self.session_key),
        }
        self.member_of = personal
        await fanout.join(self, personal)
        # Read once joined to the everyone group, which carries changes of the list.
        self.rooms = room_names_of(await fanout.rooms(), user_id=self.user_id)
        rooms = {groups.room_group(name) for name in self.rooms}
        # Join before reading `last_id`, so every later message arrives live.
        self.member_of = personal | rooms
        await fanout.join(self, rooms)
        # The greeting's reads (PostgreSQL, or a database thread) and presence (Redis)
        # need nothing of each other: run side by side, a handshake waits for the
        # slower, not both.
        # Both finish before an error is raised, so a failure leaves nothing running
        # that could register the socket after it has been released.
        results = await asyncio.gather(
            loop_db.read(greeting_steps, user_id=self.user.pk),
            self._enter_presence(),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        greeting, (joined, online, away) = results
        hello = hello_frame(
            user=self.username,
            online=online,
            rooms=self.rooms,
            direct=greeting.direct,
            last_id=greeting.last_id,
            rev=greeting.rev,
            unread=greeting.unread,
            staff=self.user.is_staff,
            levels=greeting.levels,
            away=away,
            last_seen=greeting.last_seen,
        )
        return joined, hello

    async def _enter_presence(self):
        """Registers the socket's presence; answers with who is online, this user included."""
        joined = await presence_join(user=self.username, socket=self.socket_id)
        self.registered = True
        return joined, joined.online, joined.away

    async def __call__(self, scope, receive, send) -> None:
        """Runs the socket; however it ends, even by a bug, its groups and presence go back.

        Channels runs `disconnect()` only for a `websocket.disconnect` event; a
        consumer that raised would otherwise leave its user online for good (this
        process's heartbeat keeps every registered socket alive).
        """
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()

    async def websocket_disconnect(self, message: dict) -> None:
        """Runs `disconnect` and ends the consumer.

        Channels' version also hops to the database thread to close old connections:
        one hop per closing socket, 10,000 in a row when a server stops. `db_call`
        already tidies connections around every call.
        """
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        """Leaves the groups and announces the user offline if this was their last socket."""
        await self._release()
        if self.user is not None:
            logger.info("socket closed: user=%s code=%s", self.username, code)

    async def _release(self) -> None:
        """Gives back the socket's groups and presence entry; safe to call twice."""
        self.gone = True
        if self.user is None:
            return
        self.outbox.gone()
        sockets.forget(self)
        groups_held, self.member_of = self.member_of, frozenset()
        # When the server is going away, not the user, the page comes back, and the
        # process's subscriptions end with it.
        stopping = sockets.stopping()
        try:
            if stopping:
                get_fanout().drop(self, groups_held)
            elif groups_held:
                await get_fanout().leave(self, groups_held)
            if self.registered:
                self.registered = False
                if stopping:
                    await presence_hand_off(user=self.username, socket=self.socket_id)
                else:
                    await presence_leave(user=self.username, socket=self.socket_id)
        except OUTAGES as exc:
            # Redis is away: its entries expire by themselves and the sweep announces them.
            logger.warning("socket cleanup failed: %s", exc.__class__.__name__)

    # --- Client frames ----------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """Hands one client frame to its handler; a refused frame gets one `error` frame."""
        if text_data is not None and len(text_data) > MAX_FRAME_BYTES:
            # The server normally refuses such frames itself; this covers other ASGI servers.
            self.end(CloseCode.TOO_BIG)
            return
        await handlers.handle(self, text_data)

    # --- Writing ------------------------------------------------------------------

    def send_frame(self, frame: dict) -> None:
        """Queues one frame on this socket (see chat/realtime/outbox.py); never waits."""
        self.outbox.put(encode(frame))

    def push(self, text: str) -> None:
        """Queues a frame from the fan-out, or keeps it until `hello` has gone out."""
        if self._live:
            self.outbox.put(text)
        elif not self.gone:
            self._early.append(text)

    def end(self, code: int) -> None:
        """Closes the socket with `code` once the frames queued before are written."""
        # daphne's websocket layer accepts only a plain int, not an IntEnum.
        self.outbox.close(int(code))

    def resync(self) -> None:
        """Asks the client to reconnect and sync: live frames may have been lost."""
        self.end(CloseCode.RECONNECT)

    def _too_slow(self, reason: str) -> None:
        """Gives up a socket whose client does not read: close 4008, drop the connection."""
        logger.warning("socket too slow: user=%s %s", self.username, reason)
        self.gone = True
        try:
            close = {"type": "websocket.close", "code": int(CloseCode.TOO_SLOW)}
            rest = run_eagerly(self.base_send(close))
        except OSError:
            return  # already disconnected
        loop = asyncio.get_running_loop()
        if rest is None:
            # The close frame is on its way: give the client a moment to read it.
            loop.call_later(CLOSE_GRACE_SECONDS, abort_transport, self.base_send)
        else:
            rest.close()  # the transport is full: the close frame cannot be written
            abort_transport(self.base_send)

    # --- Login session changes ---------------------------------------------------

    def session_renamed(self, key: str) -> None:
        """Follows the login session to its new key: a password change keeps the page open.

        The session watch checks the new key from now on, and a logout of the new
        session reaches this socket through the new key's group.
        """
        if key == self.session_key:
            return  # told twice: by the event and by the session watch
        old_group = groups.session_group(self.session_key)
        self.session_key = key
        task = asyncio.ensure_future(self._follow_session(old_group, groups.session_group(key)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow_session(self, old_group: str, new_group: str) -> None:
        try:
            fanout = get_fanout()
            if self.gone:
                return
            await fanout.join(self, {new_group})
            await fanout.leave(self, {old_group})
            if self.gone:  # released meanwhile: give back what was just joined
                await fanout.leave(self, {new_group})
                return
            self.member_of = (self.member_of - {old_group}) | {new_group}
        except OUTAGES:
            self.end(CloseCode.RECONNECT)

    # --- Room list changes --------------------------------------------------------

    def rooms_changed(self) -> None:
        """Follows a change of the room list: joins rooms new to this user, leaves the others."""
        # Events arrive on the fan-out's task; socket work must not hold it up.
        task = asyncio.ensure_future(self._follow_rooms())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow_rooms(self) -> None:
        try:
            fanout = get_fanout()
            rooms = room_names_of(await fanout.rooms(), user_id=self.user_id)
            wanted = {groups.room_group(name) for name in rooms}
            current = {group for group in self.member_of if group.startswith("room.")}
            if self.gone:
                return
            await fanout.join(self, wanted - current)
            await fanout.leave(self, current - wanted)
            if self.gone:  # released meanwhile: give back what was just joined
                await fanout.leave(self, wanted)
                return
            self.member_of = (self.member_of - current) | wanted
        except OUTAGES:
            self.end(CloseCode.RECONNECT)
            return
        self.rooms = rooms
        self.send_frame(rooms_frame(rooms=rooms))
