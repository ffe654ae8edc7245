"""A lean websocket client for the load generator: handshake, text frames, ping, close.

The `websockets` client spends about 30 µs of Python per received frame (measured
on this machine), so one load-generator process could not take in more than about
30,000 frames/s: it, not the server under test, would be the bottleneck. This
client parses the server's (unmasked) frames in bulk from each TCP read, a few µs
each, and reuses `websockets` for the handshake key and frame masking.
"""

import asyncio
import base64
import os
import struct
from collections.abc import Callable

from websockets.utils import accept_key

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the wheels ship the C speedups
    from websockets.utils import apply_mask

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
CLOSE_NORMAL = 1000


class HandshakeRefused(Exception):
    """The server answered the upgrade request with something other than 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"handshake refused with HTTP {status}")
        self.status = status


def _frame(opcode: int, payload: bytes) -> bytes:
    """Builds one masked client frame (clients must mask, RFC 6455 section 5.3)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return head + mask + apply_mask(payload, mask)


class Socket(asyncio.Protocol):
    """One client websocket. Text frames go to `on_text` (bytes), or to `recv()` by default."""

    def __init__(self, request: bytes, key: str) -> None:
        self._request = request
        self._expected_accept = accept_key(key)
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._handshaking = True
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future = loop.create_future()
        self.closed: asyncio.Future = loop.create_future()
        self.close_code: int | None = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.on_text: Callable[[bytes], None] = self._queue.put_nowait

    # --- asyncio.Protocol -------------------------------------------------------

    def connection_made(self, transport) -> None:
        """Sends the upgrade request."""
        self.transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        """Completes the handshake, then hands every complete frame on."""
        buffer = self._buffer
        buffer += data
        if self._handshaking and not self._read_handshake():
            return
        position, size = 0, len(buffer)
        while size - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            length, head = second & 0x7F, 2
            if length == 126:
                if size - position < 4:
                    break
                length, head = int.from_bytes(buffer[position + 2 : position + 4], "big"), 4
            elif length == 127:
                if size - position < 10:
                    break
                length, head = int.from_bytes(buffer[position + 2 : position + 10], "big"), 10
            end = position + head + length
            if end > size:
                break
            self._on_frame(first, bytes(buffer[position + head : end]))
            position = end
        del buffer[:position]

    def connection_lost(self, exc) -> None:
        """Marks the socket closed (and the handshake failed, if it had not finished)."""
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    # --- Frames -------------------------------------------------------------------

    def _read_handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        self._handshaking = False
        status = int(head.split(" ", 2)[1])
        accepted = f"sec-websocket-accept: {self._expected_accept}".lower() in head.lower()
        if status != 101 or not accepted:
            self.opened.set_exception(HandshakeRefused(status))
            self.transport.close()
            return False
        self.opened.set_result(None)
        return True

    def _on_frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        final = first & 0x80
        if opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
            if not final or self._fragments:
                self._fragments.append(payload)
                if not final:
                    return
                payload = b"".join(self._fragments)
                self._fragments.clear()
            self.on_text(payload)
        elif opcode == OP_PING:
            self.transport.write(_frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            if len(payload) >= 2:
                self.close_code = int.from_bytes(payload[:2], "big")
            if not self.transport.is_closing():
                self.transport.write(_frame(OP_CLOSE, payload[:2]))
                self.transport.close()

    # --- API ----------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        """Queues one text frame for sending."""
        if not self.transport.is_closing():
            self.transport.write(_frame(OP_TEXT, text.encode()))

    async def recv(self) -> bytes:
        """Returns the next text frame (only while `on_text` is left at its default)."""
        return await self._queue.get()

    def close(self) -> None:
        """Sends a normal close frame and drops the connection without waiting."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_frame(OP_CLOSE, CLOSE_NORMAL.to_bytes(2, "big")))
            self.transport.close()

    @property
    def is_open(self) -> bool:
        """Tells whether the connection is still up."""
        return not self.closed.done()


async def connect(
    host: str,
    port: int,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    on_text: Callable[[bytes], None] | None = None,
    open_timeout: float = 10,
) -> Socket:
    """Opens a websocket to ws://host:port/path; raises HandshakeRefused on a non-101 answer.

    `on_text` receives every text frame from the first one on (otherwise use `recv()`).
    """
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    loop = asyncio.get_running_loop()

    def protocol() -> Socket:
        socket = Socket(request, key)
        if on_text is not None:
            socket.on_text = on_text
        return socket

    _, socket = await asyncio.wait_for(loop.create_connection(protocol, host, port), open_timeout)
    try:
        await asyncio.wait_for(asyncio.shield(socket.opened), open_timeout)
    except BaseException:
        socket.transport.close()
        raise
    return socket
