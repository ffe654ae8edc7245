"""The chat socket: authenticates, routes client frames to services, forwards events.

It only translates between frames and the service and selector functions; the
rules live in those modules.
"""

import asyncio
import contextlib
import logging
import uuid
import weakref

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import groups, selectors, services
from chat.background import repeat
from chat.db import db_call
from chat.fanout import get_fanout
from chat.layers import layer_generation, on_layer_reconnect
from chat.outbox import Outbox, abort_transport, run_eagerly
from chat.presence import get_presence
from chat.protocol import (
    MAX_FRAME_BYTES,
    CloseCode,
    ErrorCode,
    History,
    Ping,
    ProtocolError,
    Send,
    Sync,
    Users,
    ack_frame,
    encode,
    error_frame,
    hello_frame,
    history_frame,
    parse_client_frame,
    pong_frame,
    rooms_frame,
    sync_frame,
    users_frame,
)
from chat.ratelimit import connect_rate_check, message_rate_check, read_rate_check

logger = logging.getLogger(__name__)

# This process's open sockets, so a layer reconnect can ask them all to resync.
_open_sockets: "weakref.WeakSet[ChatConsumer]" = weakref.WeakSet()

# After a socket is given up as too slow and sent its close frame, how long the
# client has to read it before the connection is dropped anyway.
CLOSE_GRACE_SECONDS = 1.0


@contextlib.contextmanager
def _unavailable_on_outage(what: str, client_id: str | None = None):
    """Turns a database or Redis outage into an `unavailable` error frame."""
    try:
        yield
    except services.OUTAGES as exc:
        logger.warning("%s failed: %s", what, exc.__class__.__name__)
        raise ProtocolError(
            ErrorCode.UNAVAILABLE, f"{what} is unavailable; retry later", client_id=client_id
        ) from None


class ChatConsumer(AsyncWebsocketConsumer):
    """One browser tab's socket, carrying its user's rooms and direct messages."""

    # Sockets get their events from the process's fan-out (chat/fanout.py), not from
    # a channel of their own: naming a layer that is not configured makes Channels
    # skip creating one.
    channel_layer_alias = "sockets-use-the-process-fanout"

    user = None
    registered = False
    gone = False  # the client disconnected; nothing more is sent
    member_of: frozenset[str] = frozenset()

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

    async def connect(self) -> None:
        """Refuses anonymous handshakes; joins the groups and greets with `hello`."""
        user = self.scope["user"]
        if not user.is_authenticated:
            logger.info("socket refused: not logged in")
            await self.close()  # before accept(): the handshake is refused with 403
            return
        try:
            retry_after = await connect_rate_check(user_id=user.pk)
        except services.OUTAGES as exc:
            logger.warning("connect limit not counted: %s", exc.__class__.__name__)
            retry_after = None
        if retry_after is not None:
            logger.info("socket refused: user=%s opens sockets too fast", user.get_username())
            await self.close()  # refused before the socket opens: HTTP 403
            return
        self.user = user
        self.username = user.get_username()
        self.session_key = self.scope["session"].session_key
        self.socket_id = uuid.uuid4().hex
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
        except services.OUTAGES as exc:
            # Accept, then ask the client to come back: a refused handshake looks
            # like a lost session to a browser.
            logger.warning("socket open failed: user=%s %s", self.username, exc.__class__.__name__)
            await self.accept()
            self._close(CloseCode.RECONNECT)
            return
        await self.accept()
        if joined.sockets > settings.CHAT_MAX_SOCKETS:
            logger.info("socket refused: user=%s has too many sockets", self.username)
            self._close(CloseCode.TOO_MANY_SOCKETS)
            return
        self._send(hello)
        # Frames the fan-out delivered while `hello` was being prepared go out now,
        # in order; queuing never waits, so nothing can come between.
        for text in self._early:
            self.outbox.put(text)
        self._early = []
        self._live = True
        _open_sockets.add(self)
        if self._generation != layer_generation():
            self.resync()  # the layer reconnected while this socket was joining
        _start_session_watch()
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
        self.rooms = await fanout.room_names()
        rooms = {groups.room_group(name) for name in self.rooms}
        # Join before reading `last_id`, so every later message arrives live.
        self.member_of = personal | rooms
        await fanout.join(self, rooms)
        joined = await services.presence_join(user=self.username, socket=self.socket_id)
        self.registered = True
        direct, last_id = await db_call(_greeting_reads, concurrent=True)(self.user.pk)
        online = await get_presence().online()
        hello = hello_frame(
            user=self.username, online=online, rooms=self.rooms, direct=direct, last_id=last_id
        )
        return joined, hello

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
        _open_sockets.discard(self)
        groups_held, self.member_of = self.member_of, frozenset()
        try:
            if groups_held:
                await get_fanout().leave(self, groups_held)
            if self.registered:
                self.registered = False
                await services.presence_leave(user=self.username, socket=self.socket_id)
        except services.OUTAGES as exc:
            # Redis is away: its entries expire by themselves and the sweep announces them.
            logger.warning("socket cleanup failed: %s", exc.__class__.__name__)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """Parses one client frame and answers it; a refused frame gets one `error` frame."""
        if text_data is not None and len(text_data) > MAX_FRAME_BYTES:
            # The server normally refuses such frames itself; this covers other ASGI servers.
            self._close(CloseCode.TOO_BIG)
            return
        try:
            frame = parse_client_frame(text_data)
            await self._handlers[type(frame)](self, frame)
        except ProtocolError as error:
            self._send(error_frame(error))

    # --- Client frames ----------------------------------------------------------

    async def _on_send(self, frame: Send) -> None:
        with _unavailable_on_outage("sending", frame.client_id):
            retry_after = await message_rate_check(user_id=self.user.pk)
        if retry_after is not None:
            logger.info("rate limited: user=%s", self.username)
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                "you are sending messages too fast",
                client_id=frame.client_id,
                retry_after=retry_after,
            )
        try:
            with _unavailable_on_outage("sending", frame.client_id):
                await services.message_send(sender=self.user, send=frame, acknowledge=self._ack)
        except services.AccountEnded:
            # Deactivated or deleted meanwhile, maybe on another process: nothing was stored.
            logger.info("account ended: user=%s", self.username)
            self._close(CloseCode.SESSION_ENDED)

    def _ack(self, posted: services.Posted) -> None:
        self._send(ack_frame(posted.message))

    async def _on_history(self, frame: History) -> None:
        await self._count_read()
        messages, has_more = await self._read(
            selectors.history_for_user,
            user_id=self.user.pk,
            room=frame.room,
            with_=frame.with_,
            before=frame.before,
            after=frame.after,
            limit=frame.limit,
        )
        self._send(
            history_frame(room=frame.room, with_=frame.with_, messages=messages, has_more=has_more)
        )

    async def _on_sync(self, frame: Sync) -> None:
        await self._count_read()
        messages, has_more = await self._read(
            selectors.message_sync_page, user_id=self.user.pk, after=frame.after
        )
        self._send(sync_frame(messages=messages, has_more=has_more, after=frame.after))

    async def _on_users(self, frame: Users) -> None:
        with _unavailable_on_outage("the online list"):
            online = await get_presence().online()
        self._send(users_frame(online=online))

    async def _on_ping(self, frame: Ping) -> None:
        self._send(pong_frame())

    _handlers = {
        Send: _on_send,
        History: _on_history,
        Sync: _on_sync,
        Users: _on_users,
        Ping: _on_ping,
    }

    # --- Events from the process fan-out ----------------------------------------

    def push(self, text: str) -> None:
        """Queues a frame from the fan-out, or keeps it until `hello` has gone out."""
        if self._live:
            self.outbox.put(text)
        elif not self.gone:
            self._early.append(text)

    def session_ended(self) -> None:
        """Closes the socket because its login session ended."""
        self._close(CloseCode.SESSION_ENDED)

    def rooms_changed(self) -> None:
        """Follows a change of the room list: joins new rooms, leaves removed ones."""
        self._background(self._follow_rooms())

    async def _follow_rooms(self) -> None:
        try:
            fanout = get_fanout()
            rooms = await fanout.room_names()
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
        except services.OUTAGES:
            self._close(CloseCode.RECONNECT)
            return
        self.rooms = rooms
        self._send(rooms_frame(rooms=rooms))

    # --- Helpers ------------------------------------------------------------------

    def _send(self, frame: dict) -> None:
        """Queues one frame on this socket (see chat/outbox.py); never waits."""
        self.outbox.put(encode(frame))

    def _close(self, code: CloseCode) -> None:
        """Closes the socket once the frames queued before are written."""
        # daphne's websocket layer accepts only a plain int, not an IntEnum.
        self.outbox.close(int(code))

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

    async def _count_read(self) -> None:
        """Counts one read (`history`, `sync`) against the user's read limit."""
        with _unavailable_on_outage("reading"):
            retry_after = await read_rate_check(user_id=self.user.pk)
        if retry_after is not None:
            logger.info("read rate limited: user=%s", self.username)
            raise ProtocolError(
                ErrorCode.RATE_LIMITED, "you are reading too fast", retry_after=retry_after
            )

    async def _read(self, selector, **kwargs):
        """Runs a selector off the event loop; a database outage becomes `unavailable`."""
        with _unavailable_on_outage("the history"):
            return await db_call(selector, concurrent=True)(**kwargs)

    def resync(self) -> None:
        """Asks the client to reconnect and sync: live frames may have been lost."""
        self._close(CloseCode.RECONNECT)

    def _background(self, work) -> None:
        # Events arrive on the fan-out's task; socket work must not hold it up.
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _watch_sessions() -> None:
    """Closes this process's sockets whose login session expired or was ended elsewhere.

    One task per process, not per socket: every CHAT_SESSION_CHECK_SECONDS it checks
    each distinct session of its open sockets once. A failed check is retried.
    """
    await repeat(
        _check_sessions,
        every=settings.CHAT_SESSION_CHECK_SECONDS,
        name="session check",
        expected=services.OUTAGES,
    )


async def _check_sessions() -> None:
    sockets = list(_open_sockets)
    sessions = {socket.session_key: socket.user.pk for socket in sockets}
    ended = await db_call(selectors.sessions_ended, concurrent=True)(sessions=sessions)
    for socket in sockets:
        if socket.session_key in ended:
            logger.info("session ended: user=%s", socket.username)
            socket.session_ended()


_session_watches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)


def _start_session_watch() -> None:
    loop = asyncio.get_running_loop()
    task = _session_watches.get(loop)
    if task is None or task.done():
        _session_watches[loop] = loop.create_task(_watch_sessions())


def _resync_all() -> None:
    # Sockets still joining check the generation themselves once live.
    for socket in list(_open_sockets):
        socket.resync()


on_layer_reconnect(_resync_all)


def _greeting_reads(user_id: int) -> tuple[list[str], int]:
    return (
        selectors.direct_partners(user_id=user_id),
        selectors.message_last_id(user_id=user_id),
    )
