"""Text frames written straight to uvicorn's transport, encoded once, coalesced per socket.

Through ASGI, every frame to every socket is a `websocket.send` message: a dict, a
coroutine, the text encoded and framed again for each socket, and one `send()`
system call per frame. A room message to 100 sockets is the same bytes 100 times
(a server's frames are not masked, and the site negotiates no compression), so
the frame is built once, and the frames one socket gets in one turn of the event
loop (a batch of messages arriving together from Redis) go out in one write.

Only for uvicorn's sans-I/O websocket protocol (`chatsite/server.py` runs it), and
only while the socket is open, writable and without extensions; otherwise the
outbox goes through ASGI `send` as any server expects (daphne, the test server).
"""

import asyncio
import logging
from collections.abc import Callable

from websockets.frames import Frame, Opcode
from websockets.protocol import State

try:
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
except ImportError:  # pragma: no cover - uvicorn is a dependency; daphne works without it
    WebSocketsSansIOProtocol = None

logger = logging.getLogger(__name__)

# The frame of the text encoded last: the fan-out hands one text to every socket
# of a group in a row, so one entry is enough to encode it once.
_last_text: str | None = None
_last_frame = b""


def frame_of(text: str) -> bytes:
    """The bytes of an unmasked, uncompressed, final text frame holding `text`."""
    global _last_text, _last_frame
    if text is not _last_text:
        _last_frame = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
        _last_text = text
    return _last_frame


def protocol_of(send: Callable):
    """uvicorn's sans-I/O protocol behind an ASGI `send`, if it is that and opened plain.

    None for another server, before the handshake is done, or when the client
    negotiated an extension (compression), whose frames must go through the protocol.
    """
    owner = getattr(send, "__self__", None)
    if WebSocketsSansIOProtocol is None or not isinstance(owner, WebSocketsSansIOProtocol):
        return None
    if not owner.handshake_complete or owner.initial_response is not None or owner.conn.extensions:
        return None
    return owner


def accept_took(send: Callable) -> bool:
    """Whether `websocket.accept` through this ASGI `send` opened the socket.

    uvicorn's sans-I/O protocol lets an accept pass without a word when the
    transport is already closing (the client gave up during the handshake, and the
    loss is not yet reported), and then refuses every frame with a RuntimeError.
    """
    owner = getattr(send, "__self__", None)
    if WebSocketsSansIOProtocol is None or not isinstance(owner, WebSocketsSansIOProtocol):
        return True
    return owner.handshake_complete


def still_open(protocol) -> bool:
    """Whether frames written now still reach the client: open, no close sent or begun."""
    return (
        not protocol.close_sent
        and not protocol.disconnected
        and protocol.conn.state is State.OPEN
        and not protocol.transport.is_closing()
    )


def writable(protocol) -> bool:
    """Whether a frame may be written now: open, and the transport's buffer not full."""
    return protocol.writable.is_set() and still_open(protocol)


class Coalescer:
    """Writes each socket's frames of one event-loop turn in one call, at the turn's end."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty: list = []  # outboxes with frames to write, in the order they got them

    def mark(self, outbox) -> None:
        """Schedules `outbox.flush()` for the end of this turn (call once per turn)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._dirty = loop, []
        if not self._dirty:
            loop.call_soon(self._flush_all)
        self._dirty.append(outbox)

    def _flush_all(self) -> None:
        dirty, self._dirty = self._dirty, []
        for outbox in dirty:
            try:
                outbox.flush()
            except Exception:
                # One socket's failure must not keep the turn's frames from the others.
                logger.exception("writing a socket's frames failed")
                outbox.gone()


coalescer = Coalescer()
