"""What a socket does with each client frame: one small handler per frame type, in one table.

A new client frame is its parser in chat/protocol.py, one handler here, and the
service it calls. Services and selectors refuse with `ChatError`; `handle` answers
every refusal with one `error` frame, in one place.
"""

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from chat import loop_db
from chat.db import db_call
from chat.errors import OUTAGES, AccountEnded, ChatError, ErrorCode
from chat.last_seen import last_seen_of
from chat.messaging import reads
from chat.messaging.batch import message_send
from chat.messaging.changes import message_delete, message_edit, message_react
from chat.messaging.notify_levels import notify_level_set
from chat.messaging.read_state import read_mark
from chat.messaging.search import message_search
from chat.messaging.store import Posted
from chat.messaging.typing import typing_announce, typing_recipient
from chat.moderation import mute_set, user_deactivate
from chat.presence import get_presence, presence_idle, presence_profile
from chat.protocol import (
    CloseCode,
    Deactivate,
    Delete,
    Edit,
    History,
    Idle,
    Mute,
    Notify,
    Ping,
    Profile,
    React,
    Read,
    Search,
    Send,
    Sync,
    Typing,
    Users,
    ack_frame,
    deactivate_frame,
    error_frame,
    history_frame,
    message_frame,
    mute_frame,
    notify_frame,
    parse_client_frame,
    pong_frame,
    profile_frame,
    search_frame,
    sync_frame,
    users_frame,
)
from chat.ratelimit import message_rate_check, read_rate_check

logger = logging.getLogger(__name__)


# A socket's `typing` frames beyond one in this many seconds are dropped, silently.
TYPING_EVERY_SECONDS = 2.0


class Socket(Protocol):
    """What a handler needs of the socket it answers (ChatConsumer implements it)."""

    user: Any
    username: str
    socket_id: str
    rooms: list[str]
    typing_at: float

    def send_frame(self, frame: dict[str, Any]) -> None:
        """Queues one frame on the socket; never waits."""
        ...

    def end(self, code: int) -> None:
        """Closes the socket with `code`."""
        ...


Handler = Callable[[Socket, Any], Awaitable[None]]
HANDLERS: dict[type, Handler] = {}


def handles(frame_type: type) -> Callable[[Handler], Handler]:
    """Registers the decorated function as the handler of one client frame type."""

    def register(handler: Handler) -> Handler:
        HANDLERS[frame_type] = handler
        return handler

    return register


async def handle(socket: Socket, text: str | None) -> None:
    """Parses one client frame and runs its handler; a refusal becomes one `error` frame."""
    try:
        frame = parse_client_frame(text)
        await HANDLERS[type(frame)](socket, frame)
    except ChatError as error:
        socket.send_frame(error_frame(error))
    except AccountEnded:
        # Deactivated or deleted meanwhile, maybe on another process: nothing was stored.
        logger.info("account ended: user=%s", socket.username)
        socket.end(CloseCode.SESSION_ENDED)


@contextlib.contextmanager
def unavailable_on_outage(
    what: str, client_id: str | None = None, *, message_id: int | None = None
):
    """Turns a database or Redis outage into an `unavailable` refusal."""
    try:
        yield
    except OUTAGES as exc:
        logger.warning("%s failed: %s", what, exc.__class__.__name__)
        raise ChatError(
            ErrorCode.UNAVAILABLE,
            f"{what} is unavailable; retry later",
            client_id=client_id,
            message_id=message_id,
        ) from None


async def count_against(
    check,
    socket: Socket,
    what: str,
    client_id: str | None = None,
    *,
    message_id: int | None = None,
) -> None:
    """Counts one action against a rate limit; refuses it with `rate_limited` when over."""
    with unavailable_on_outage(what, client_id, message_id=message_id):
        retry_after = await check(user_id=socket.user.pk)
    if retry_after is not None:
        logger.info("rate limited: user=%s %s", socket.username, what)
        raise ChatError(
            ErrorCode.RATE_LIMITED,
            f"you are {what} too fast",
            client_id=client_id,
            retry_after=retry_after,
            message_id=message_id,
        )


async def read(selector, **kwargs):
    """Runs a selector off the event loop; a database outage becomes `unavailable`."""
    with unavailable_on_outage("the history"):
        return await db_call(selector, concurrent=True)(**kwargs)


async def read_steps(make_steps, **kwargs):
    """Runs a read written as steps (on PostgreSQL, on the event loop itself: every
    returning client asks for a `sync` page at once); an outage becomes `unavailable`."""
    with unavailable_on_outage("the history"):
        return await loop_db.read(make_steps, **kwargs)


@handles(Send)
async def on_send(socket: Socket, frame: Send) -> None:
    """Stores and publishes a message; the sender gets its `ack` first."""
    await count_against(message_rate_check, socket, "sending messages", frame.client_id)

    def acknowledge(posted: Posted) -> None:
        socket.send_frame(ack_frame(posted.message))

    with unavailable_on_outage("sending", frame.client_id):
        await message_send(sender=socket.user, send=frame, acknowledge=acknowledge)


@handles(History)
async def on_history(socket: Socket, frame: History) -> None:
    """Answers one page of a room's or a direct conversation's history."""
    await count_against(read_rate_check, socket, "reading")
    if frame.around is not None:
        messages, has_older, has_newer = await read(
            reads.history_around_for_user,
            user_id=socket.user.pk,
            room=frame.room,
            with_=frame.with_,
            around=frame.around,
            limit=frame.limit,
        )
        socket.send_frame(
            history_frame(
                room=frame.room,
                with_=frame.with_,
                messages=messages,
                has_more=has_older,
                around=frame.around,
                has_newer=has_newer,
            )
        )
        return
    messages, has_more = await read(
        reads.history_for_user,
        user_id=socket.user.pk,
        room=frame.room,
        with_=frame.with_,
        before=frame.before,
        after=frame.after,
        limit=frame.limit,
    )
    socket.send_frame(
        history_frame(room=frame.room, with_=frame.with_, messages=messages, has_more=has_more)
    )


@handles(Search)
async def on_search(socket: Socket, frame: Search) -> None:
    """Answers the newest messages I may see that hold every word of the search."""
    await count_against(read_rate_check, socket, "reading")
    messages, has_more = await read(
        message_search,
        user_id=socket.user.pk,
        words=frame.words,
        room=frame.room,
        with_=frame.with_,
        before=frame.before,
        limit=frame.limit,
    )
    socket.send_frame(search_frame(search=frame, messages=messages, has_more=has_more))


@handles(Sync)
async def on_sync(socket: Socket, frame: Sync) -> None:
    """Answers one page of everything visible after the client's cursor (a rev, or an id)."""
    await count_against(read_rate_check, socket, "reading")
    if frame.since is not None:
        messages, has_more = await read_steps(
            reads.message_changes_page_steps, user_id=socket.user.pk, since=frame.since
        )
    else:
        messages, has_more = await read_steps(
            reads.message_sync_page_steps, user_id=socket.user.pk, after=frame.after
        )
    socket.send_frame(
        sync_frame(messages=messages, has_more=has_more, after=frame.after, since=frame.since)
    )


async def change(service, socket: Socket, *, message_id: int, **kwargs) -> None:
    """Runs a change of a message; its new state reaches every socket that may see it.

    A change that changes nothing (the same body, a reaction already there) is
    published to nobody: the asking socket alone gets the message as it stands. So
    does the asking socket of a change stored while Redis could not publish it.
    Every refusal names the message (`id`), so the client knows which one failed.
    """
    await count_against(message_rate_check, socket, "changing messages", message_id=message_id)
    with unavailable_on_outage("changing a message", message_id=message_id):
        result = await db_call(service)(user_id=socket.user.pk, message_id=message_id, **kwargs)
    if not result.published:
        socket.send_frame(message_frame(result.message))


@handles(Edit)
async def on_edit(socket: Socket, frame: Edit) -> None:
    """Edits one of my messages."""
    await change(message_edit, socket, message_id=frame.id, body=frame.body)


@handles(Delete)
async def on_delete(socket: Socket, frame: Delete) -> None:
    """Deletes one of my messages (staff: anyone's)."""
    await change(message_delete, socket, message_id=frame.id, as_staff=socket.user.is_staff)


@handles(React)
async def on_react(socket: Socket, frame: React) -> None:
    """Adds or removes my reaction on a message."""
    await change(message_react, socket, message_id=frame.id, emoji=frame.emoji, on=frame.on)


@handles(Read)
async def on_read(socket: Socket, frame: Read) -> None:
    """Moves my read position in a conversation (never back)."""
    with unavailable_on_outage("marking read"):
        await db_call(read_mark)(
            user=socket.user, room=frame.room, with_=frame.with_, seq=frame.seq
        )


@handles(Notify)
async def on_notify(socket: Socket, frame: Notify) -> None:
    """Stores how much a conversation notifies me; all my sockets hear of it."""
    await count_against(message_rate_check, socket, "changing notifications")
    with unavailable_on_outage("changing notifications"):
        published = await db_call(notify_level_set)(
            user=socket.user, room=frame.room, with_=frame.with_, level=frame.level
        )
    if not published:
        # Stored, but Redis could not tell the sockets: at least the asking one knows.
        socket.send_frame(notify_frame(frame))


@handles(Typing)
async def on_typing(socket: Socket, frame: Typing) -> None:
    """Tells the others of the conversation that I am typing; at most every 2 s per socket."""
    now = time.monotonic()
    if now - socket.typing_at < TYPING_EVERY_SECONDS:
        return
    socket.typing_at = now
    with unavailable_on_outage("typing"):
        to_user_id = None
        if frame.to is not None:
            to_user_id = await db_call(typing_recipient, concurrent=True)(username=frame.to)
        await typing_announce(
            user=socket.user, rooms=socket.rooms, room=frame.room, to_user_id=to_user_id
        )


@handles(Users)
async def on_users(socket: Socket, frame: Users) -> None:
    """Answers the online list, with who among them is away."""
    with unavailable_on_outage("the online list"):
        online, away = await get_presence().statuses()
    socket.send_frame(users_frame(online=online, away=away))


@handles(Idle)
async def on_idle(socket: Socket, frame: Idle) -> None:
    """Marks this socket idle or active; the user turns away when all theirs are idle.

    Each change may publish a `presence` frame to everyone, so it counts against a
    limit: the read limit, which is roomier than the sending one and leaves a
    person's message allowance alone (every new socket says `idle` once).
    """
    await count_against(read_rate_check, socket, "changing your status")
    with unavailable_on_outage("presence"):
        await presence_idle(user=socket.username, socket=socket.socket_id, idle=frame.idle)


@handles(Profile)
async def on_profile(socket: Socket, frame: Profile) -> None:
    """Answers a user's status and, when offline, when they were last seen."""
    await count_against(read_rate_check, socket, "reading")
    with unavailable_on_outage("the profile"):
        last_seen = await db_call(last_seen_of, concurrent=True)(username=frame.user)
        status, last_seen = await presence_profile(user=frame.user, last_seen=last_seen)
    socket.send_frame(profile_frame(user=frame.user, status=status, last_seen=last_seen))


@handles(Ping)
async def on_ping(socket: Socket, frame: Ping) -> None:
    """Answers `pong`."""
    socket.send_frame(pong_frame())


@handles(Mute)
async def on_mute(socket: Socket, frame: Mute) -> None:
    """Staff: mutes a user in a room or everywhere for a while (0 minutes lifts it)."""
    if not socket.user.is_staff:
        raise ChatError(ErrorCode.FORBIDDEN, "only staff may mute")
    with unavailable_on_outage("muting"):
        until = await db_call(mute_set)(
            actor=socket.user, username=frame.user, minutes=frame.minutes, room=frame.room
        )
    socket.send_frame(mute_frame(user=frame.user, room=frame.room, until=until))


@handles(Deactivate)
async def on_deactivate(socket: Socket, frame: Deactivate) -> None:
    """Staff: deactivates an account; its sockets close on every process."""
    if not socket.user.is_staff:
        raise ChatError(ErrorCode.FORBIDDEN, "only staff may deactivate accounts")
    with unavailable_on_outage("deactivating"):
        await db_call(user_deactivate)(actor=socket.user, username=frame.user)
    socket.send_frame(deactivate_frame(user=frame.user))
