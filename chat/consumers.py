"""The chat socket: authenticates, routes client frames to services, forwards events.

It only translates between frames and the service and selector functions; the
rules live in those modules.
"""

import asyncio
import contextlib
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from chat import groups, selectors, services
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
from chat.ratelimit import message_rate_check

logger = logging.getLogger(__name__)


class ChatConsumer(AsyncWebsocketConsumer):
    """One browser tab's socket, carrying its user's rooms and direct messages."""

    user = None
    registered = False

    async def connect(self) -> None:
        """Refuses anonymous handshakes; joins the groups and greets with `hello`."""
        user = self.scope["user"]
        if not user.is_authenticated:
            logger.info("socket refused: not logged in")
            await self.close()  # before accept(): the handshake is refused with 403
            return
        self.user = user
        self.username = user.get_username()
        self.session_key = self.scope["session"].session_key
        self.rooms = await database_sync_to_async(selectors.room_names)()
        self.member_of = {
            groups.EVERYONE,
            groups.user_group(user.pk),
            groups.session_group(self.session_key),
            *(groups.room_group(name) for name in self.rooms),
        }
        # Join before reading `last_id`, so every later message arrives live.
        for group in self.member_of:
            await self.channel_layer.group_add(group, self.channel_name)
        joined = await services.presence_join(user=self.username, socket=self.channel_name)
        self.registered = True
        await self.accept()

        if joined.sockets > settings.CHAT_MAX_SOCKETS:
            logger.info("socket refused: user=%s has too many sockets", self.username)
            await self._close(CloseCode.TOO_MANY_SOCKETS)
            return
        direct, last_id = await database_sync_to_async(_greeting_reads)(user.pk)
        online = await get_presence().online()
        await self._send(
            hello_frame(
                user=self.username, online=online, rooms=self.rooms, direct=direct, last_id=last_id
            )
        )
        self.session_watch = asyncio.create_task(self._watch_session())
        logger.info("socket opened: user=%s sockets=%d", self.username, joined.sockets)

    async def disconnect(self, code: int) -> None:
        """Leaves the groups and announces the user offline if this was their last socket."""
        if self.user is None:
            return
        watch = getattr(self, "session_watch", None)
        if watch is not None:
            watch.cancel()
        for group in self.member_of:
            await self.channel_layer.group_discard(group, self.channel_name)
        if self.registered:
            self.registered = False
            await services.presence_leave(user=self.username, socket=self.channel_name)
        logger.info("socket closed: user=%s code=%s", self.username, code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """Parses one client frame and answers it; a refused frame gets one `error` frame."""
        if text_data is not None and len(text_data) > MAX_FRAME_BYTES:
            # The server normally refuses such frames itself; this covers other ASGI servers.
            await self._close(CloseCode.TOO_BIG)
            return
        try:
            frame = parse_client_frame(text_data)
            await self._handlers[type(frame)](self, frame)
        except ProtocolError as error:
            await self._send(error_frame(error))

    # --- Client frames ----------------------------------------------------------

    async def _on_send(self, frame: Send) -> None:
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
            posted = await services.message_send(sender=self.user, send=frame)
        except DatabaseError:
            logger.exception("storing a message failed")
            raise ProtocolError(
                ErrorCode.UNAVAILABLE,
                "the message could not be stored; retry later",
                client_id=frame.client_id,
            ) from None
        await self._send(ack_frame(posted.message))

    async def _on_history(self, frame: History) -> None:
        messages, has_more = await self._read(
            selectors.history_for_user,
            user_id=self.user.pk,
            room=frame.room,
            with_=frame.with_,
            before=frame.before,
            after=frame.after,
            limit=frame.limit,
        )
        await self._send(
            history_frame(room=frame.room, with_=frame.with_, messages=messages, has_more=has_more)
        )

    async def _on_sync(self, frame: Sync) -> None:
        messages, has_more = await self._read(
            selectors.message_sync_page, user_id=self.user.pk, after=frame.after
        )
        await self._send(sync_frame(messages=messages, has_more=has_more, after=frame.after))

    async def _on_users(self, frame: Users) -> None:
        await self._send(users_frame(online=await get_presence().online()))

    async def _on_ping(self, frame: Ping) -> None:
        await self._send(pong_frame())

    _handlers = {
        Send: _on_send,
        History: _on_history,
        Sync: _on_sync,
        Users: _on_users,
        Ping: _on_ping,
    }

    # --- Channel-layer events ---------------------------------------------------

    async def chat_message(self, event: dict) -> None:
        """Forwards a published message frame, encoded once by the publisher."""
        await self.send(text_data=event["text"])

    async def chat_presence(self, event: dict) -> None:
        """Forwards another user's presence frame (hello already told me I am online)."""
        if event["user"] != self.username:
            await self.send(text_data=event["text"])

    async def session_ended(self, event: dict) -> None:
        """Closes the socket because its login session ended."""
        await self._close(CloseCode.SESSION_ENDED)

    async def rooms_changed(self, event: dict) -> None:
        """Follows a change of the room list: joins new rooms, leaves removed ones."""
        rooms = await database_sync_to_async(selectors.room_names)()
        wanted = {groups.room_group(name) for name in rooms}
        current = {group for group in self.member_of if group.startswith("room.")}
        for group in wanted - current:
            await self.channel_layer.group_add(group, self.channel_name)
        for group in current - wanted:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.member_of = (self.member_of - current) | wanted
        self.rooms = rooms
        await self._send(rooms_frame(rooms=rooms))

    # --- Helpers ------------------------------------------------------------------

    async def _send(self, frame: dict) -> None:
        await self.send(text_data=encode(frame))

    async def _close(self, code: CloseCode) -> None:
        # daphne's websocket layer accepts only a plain int, not an IntEnum.
        await self.close(code=int(code))

    async def _read(self, selector, **kwargs):
        """Runs a selector off the event loop; a database outage becomes `unavailable`."""
        try:
            return await database_sync_to_async(selector)(**kwargs)
        except DatabaseError:
            logger.exception("a read failed")
            raise ProtocolError(
                ErrorCode.UNAVAILABLE, "the history is unavailable; retry later"
            ) from None

    async def _watch_session(self) -> None:
        """Closes the socket once its session has expired or was ended elsewhere."""
        while True:
            await asyncio.sleep(settings.CHAT_SESSION_CHECK_SECONDS)
            with contextlib.suppress(DatabaseError):
                valid = await database_sync_to_async(selectors.session_is_valid)(
                    session_key=self.session_key, user_id=self.user.pk
                )
                if not valid:
                    logger.info("session ended: user=%s", self.username)
                    await self._close(CloseCode.SESSION_ENDED)
                    return


def _greeting_reads(user_id: int) -> tuple[list[str], int]:
    return (
        selectors.direct_partners(user_id=user_id),
        selectors.message_last_id(user_id=user_id),
    )
