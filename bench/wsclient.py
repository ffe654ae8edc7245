"""A lean websocket client for the load generator: handshake, text frames, ping, close.

The `websockets` client spends about 30 µs of Python per received frame (measured
on this machine), so one load-generator process could not take in more than about
30,000 frames/s: it, not the server under test, would be the bottleneck. This
client parses the server's (unmasked) frames in bulk from each TCP read, a few µs
each, and reuses `websockets` for the handshake key and frame masking. A
`StalledReader` is the opposite: a client that asks for much and never reads.
"""

import asyncio
import base64
import os
import select
import socket
import struct
from collections.abc import Callable, Sequence

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


def _upgrade_request(
    host: str, port: int, path: str, headers: dict[str, str] | None
) -> tuple[bytes, str]:
    """Builds the HTTP upgrade request; returns it and its Sec-WebSocket-Key."""
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
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


def _check_upgrade(head: bytes, expected_accept: str) -> None:
    """Raises HandshakeRefused unless the response head is a 101 that accepted our key."""
    text = head.decode("latin-1")
    status = int(text.split(" ", 2)[1])
    accepted = f"sec-websocket-accept: {expected_accept}".lower() in text.lower()
    if status != 101 or not accepted:
        raise HandshakeRefused(status)


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
        # A handshake given up (timed out) may fail later, with nobody left waiting:
        # mark its exception as retrieved, or asyncio logs it.
        self.opened.add_done_callback(lambda done: done.cancelled() or done.exception())
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
        head = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        self._handshaking = False
        try:
            _check_upgrade(head, self._expected_accept)
        except HandshakeRefused as refused:
            self.opened.set_exception(refused)
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
    request, key = _upgrade_request(host, port, path, headers)
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


class StalledReader:
    """A websocket whose client sent its requests and never reads what comes back.

    The receive buffer is set as small as the kernel allows before connecting, so
    the TCP window it advertises stays shut: once the answers outgrow the server's
    kernel send buffer (a megabyte or two on loopback), the server's writes to this
    socket stall until it gives the socket up.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._poll = select.poll()
        self._poll.register(sock, select.POLLERR | select.POLLHUP)
        self._dropped = False

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        path: str,
        *,
        headers: dict[str, str],
        requests: Sequence[str],
        open_timeout: float = 10,
    ) -> "StalledReader":
        """Opens the websocket, sends `requests` as text frames, and reads nothing more."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Before connecting, so the window advertised in the handshake is small too.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        sock.setblocking(False)
        request, key = _upgrade_request(host, port, path, headers)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(open_timeout):
                await loop.sock_connect(sock, (host, port))
                await loop.sock_sendall(sock, request)
                # Byte by byte: nothing after the response head may be read.
                head = bytearray()
                while not head.endswith(b"\r\n\r\n"):
                    byte = await loop.sock_recv(sock, 1)
                    if not byte:
                        raise ConnectionError("closed during the handshake")
                    head += byte
            _check_upgrade(bytes(head[:-4]), accept_key(key))
            await loop.sock_sendall(sock, b"".join(_frame(OP_TEXT, r.encode()) for r in requests))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def dropped(self) -> bool:
        """Tells whether the server has dropped the connection, without reading from it.

        It sends a ping: a live server takes it in (only its writes are stuck), while
        a connection the server has dropped answers with a reset.
        """
        if not self._dropped:
            try:
                self._sock.send(_frame(OP_PING, b""))
            except BlockingIOError:
                pass  # our own send buffer is full: still connected
            except OSError:
                self._dropped = True
            else:
                self._dropped = bool(self._poll.poll(0))
        return self._dropped

    def close(self) -> None:
        """Drops the connection (unread data makes it a reset, as a vanished client's)."""
        self._dropped = True
        self._sock.close()
