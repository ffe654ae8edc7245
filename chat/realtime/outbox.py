"""A socket's outbound frames: a bounded queue with a writer of its own.

Nothing that delivers to many sockets (the fan-out, the write batcher) may wait
on one of them: a client that stops reading fills its TCP buffer, and the
server's `send` then waits until it drains. So every frame is handed to the
socket's outbox, which writes it at once when the socket can take it and
otherwise queues it for a writer task of that socket alone. A socket whose queue
outgrows its bound, or whose write waits longer than the stall limit, is given
up: `on_too_slow` is called, and the socket is closed and its connection dropped.
"""

import asyncio
import logging
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from functools import partial
from typing import Any

from chat import metrics
from chat.realtime import direct

logger = logging.getLogger(__name__)

# A queued close: (code,) after the frames queued before it.
_Close = tuple[int]


def run_eagerly(coro: Coroutine) -> Awaitable | None:
    """Runs a coroutine now, up to its first wait.

    Returns None when it finished without waiting (a write the server took at
    once), else an awaitable that finishes it. Exceptions raised before the
    first wait propagate to the caller. Python 3.12's eager tasks do the same;
    this avoids creating a task for every frame of a fan-out.
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return _resume(coro, waiting_on)


@types.coroutine
def _resume(coro: Coroutine, waiting_on: Any) -> Generator[Any, Any, Any]:
    """Continues a coroutine that `run_eagerly` started, from the future it waits on."""
    while True:
        try:
            sent = yield waiting_on
        except BaseException as exc:  # a cancellation or error thrown in by the awaiting task
            try:
                waiting_on = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting_on = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class Outbox:
    """Writes one socket's frames in order without ever making the caller wait.

    `send` is the server's ASGI send; `on_too_slow` is called once when the
    socket is given up. Sizes are counted in characters of queued text (frames
    are shared between sockets, so this bounds what one socket can pin).
    """

    def __init__(
        self,
        send: Callable[[dict], Awaitable[None]],
        *,
        max_queued: int,
        stall_seconds: float,
        on_too_slow: Callable[[str], None],
    ) -> None:
        self._send = send
        self.max_queued = max_queued
        self.stall_seconds = stall_seconds
        self._on_too_slow = on_too_slow
        self._queue: deque[str | _Close] = deque()
        self._queued = 0
        self._writer: asyncio.Task | None = None
        self.accepting = True  # false once a close is asked for: later frames are dropped
        self.closed = False  # nothing more is written: closed, gone or given up
        # uvicorn's protocol, written to directly once the socket is open
        # (chat/realtime/direct.py), and the frames of this turn not yet written.
        self._protocol = None
        self._unwritten: list[bytes] = []

    def opened(self) -> bool:
        """The handshake is done: from now on frames may take the server's direct path.

        False if it is not done after all (the client left as it was accepted, see
        `direct.accept_took`): nothing is written, and the disconnect follows.
        """
        if not direct.accept_took(self._send):
            self.gone()
            return False
        self._protocol = direct.protocol_of(self._send)
        return True

    @property
    def busy(self) -> bool:
        """Whether frames are waiting for the writer."""
        return self._writer is not None

    def put(self, text: str) -> None:
        """Writes a text frame now if the socket takes it, else queues it."""
        if not self.accepting:
            return
        if self._writer is not None:
            self._queue.append(text)
            self._queued += len(text)
            if self._queued > self.max_queued:
                self.give_up(f"more than {self.max_queued} characters queued")
            return
        metrics.FRAMES_SENT.inc()
        protocol = self._protocol
        if protocol is not None and direct.writable(protocol):
            if not self._unwritten:
                direct.coalescer.mark(self)
            self._unwritten.append(direct.frame_of(text))
            return
        self.flush()  # what was written directly goes first
        self._start({"type": "websocket.send", "text": text})

    def flush(self) -> None:
        """Writes the frames this turn put on the direct path, in one call."""
        if not self._unwritten:
            return
        data = b"".join(self._unwritten)
        self._unwritten.clear()
        if not self.closed and direct.still_open(self._protocol):
            # The transport takes it all; a full buffer pauses the protocol, and the
            # frames after it go through ASGI `send`, which waits, as before.
            self._protocol.transport.write(data)

    def close(self, code: int) -> None:
        """Closes the socket with `code` once the frames before it are written."""
        if not self.accepting:
            return
        self.accepting = False
        if self._writer is not None:
            self._queue.append((code,))
            return
        self.flush()
        self._start({"type": "websocket.close", "code": code})

    def give_up(self, reason: str) -> None:
        """Stops writing to a socket that cannot keep up, and tells the owner once."""
        if self.closed:
            return
        metrics.slow_socket_closed()
        self.gone()
        self._on_too_slow(reason)

    def gone(self) -> None:
        """Forgets everything: the client disconnected."""
        self.accepting = False
        self.closed = True
        self._drop_queue()
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None

    def _drop_queue(self) -> None:
        self._queue.clear()
        self._queued = 0
        self._unwritten.clear()

    def _start(self, message: dict) -> None:
        """Sends one ASGI message; if the server makes it wait, a writer finishes the job."""
        try:
            rest = run_eagerly(self._send(message))
        except OSError:
            # The client went away (uvicorn's ClientDisconnected); disconnect follows.
            self.gone()
            return
        if rest is not None:
            self._writer = asyncio.ensure_future(self._write_queued(rest, message))
        elif message["type"] == "websocket.close":
            self.closed = True

    async def _write_queued(self, first: Awaitable, message: dict) -> None:
        """Finishes a waiting write, then writes the queue, each within the stall limit."""
        try:
            async with asyncio.timeout(self.stall_seconds):
                await first
            while message["type"] != "websocket.close" and self._queue:
                item = self._queue.popleft()
                if isinstance(item, tuple):
                    message = {"type": "websocket.close", "code": item[0]}
                else:
                    self._queued -= len(item)
                    message = {"type": "websocket.send", "text": item}
                    metrics.FRAMES_SENT.inc()
                async with asyncio.timeout(self.stall_seconds):
                    await self._send(message)
            if message["type"] == "websocket.close":
                self.closed = True
                self._drop_queue()
        except TimeoutError:
            self._writer = None
            self.give_up(f"a write waited more than {self.stall_seconds:g} s")
            return
        except OSError:
            self._writer = None
            self.gone()
            return
        self._writer = None


def abort_transport(send: Callable) -> bool:
    """Drops the TCP connection behind an ASGI `send` at once, without flushing its buffer.

    A graceful close waits for the client to read what is buffered, which a
    stalled client never does. uvicorn passes a bound method of its protocol,
    daphne a partial of its server's reply handler with the protocol first.
    Returns False when the server is unknown (the in-process test server).
    """
    owner = getattr(send, "__self__", None)
    if owner is None and isinstance(send, partial) and send.args:
        owner = send.args[0]
    transport = getattr(owner, "transport", None)
    abort = getattr(transport, "abort", None) or getattr(transport, "abortConnection", None)
    if abort is None:
        return False
    abort()
    return True
