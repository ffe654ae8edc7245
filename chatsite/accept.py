"""Taking connections off the listening socket: in batches, and no faster than the
handshakes in progress leave room for.

libuv, under uvloop, takes one connection from the kernel's queue per turn of the
event loop (libuv's "don't accept() connections in a loop", 2022). That suits a
quiet server; in a reconnect storm each turn also carries the writes and frames of
thousands of open sockets, so the server took in about as many connections a second
as it had turns, and its handshakes waited in the kernel's queue, up to 20 s each,
while the process had work to spare (docs/performance.md). Taking them all at once
is no better: ten thousand handshakes under way at once each took longer than a
client waits, and refusing those over CHAT_MAX_HANDSHAKES with 503 sent the crowd
into its back-off.

So the server's listening socket is taken over from libuv (`take_over`): up to
`BATCH` connections a turn, and only while fewer than CHAT_MAX_HANDSHAKES are under
way (`chat.handshake_limit.room`). The rest wait their turn in the kernel's queue,
in the order they came, costing nothing.
"""

import asyncio
import collections
import contextlib
import logging
import os
import socket
from collections.abc import Callable

from chat import handshake_limit

logger = logging.getLogger("chat.server")

# Connections taken from the kernel's queue per turn of the loop, at most.
BATCH = 64
# Turns a taken connection may need to reach the handshake limit's count: until
# then it is counted as under way here.
IN_TRANSIT_TURNS = 2
# With no room for another handshake, how long to wait before looking again.
FULL_PAUSE_SECONDS = 0.01


class BatchAcceptor:
    """Takes waiting connections off a listening socket for `protocol_factory`'s
    protocols: up to `BATCH` a turn, within the handshake limit's room."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listening_fd: int,
        protocol_factory: Callable[[], asyncio.Protocol],
    ) -> None:
        self._loop = loop
        self._socket = socket.socket(fileno=os.dup(listening_fd))
        self._socket.setblocking(False)
        self._factory = protocol_factory
        self._in_transit: collections.deque[int] = collections.deque(maxlen=IN_TRANSIT_TURNS)
        self._handing: set[asyncio.Task] = set()
        self._stopped = False
        self._watch()

    def _watch(self) -> None:
        if not self._stopped:
            self._loop.add_reader(self._socket.fileno(), self._accept)

    def _accept(self) -> None:
        free = handshake_limit.room()
        budget = BATCH if free is None else min(BATCH, free - sum(self._in_transit))
        if budget <= 0:
            # Full: stop watching (the socket stays readable, which would wake every
            # turn) and look again shortly.
            self._loop.remove_reader(self._socket.fileno())
            self._in_transit.append(0)
            self._loop.call_later(FULL_PAUSE_SECONDS, self._watch)
            return
        taken = 0
        for _ in range(budget):
            try:
                connection, _ = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                break  # nothing more waits
            except ConnectionAbortedError:
                continue  # the client gave up while it waited
            except OSError as error:
                # Out of descriptors, say: the next turn tries again.
                logger.warning("accepting a connection failed: %s", error)
                break
            connection.setblocking(False)
            taken += 1
            task = self._loop.create_task(self._hand_over(connection))
            self._handing.add(task)
            task.add_done_callback(self._handing.discard)
        self._in_transit.append(taken)

    async def _hand_over(self, connection: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, connection)
        except OSError:
            connection.close()  # gone before its transport opened

    def stop(self) -> None:
        """Stops taking connections and closes the listening socket; the connections
        already taken stay with the server."""
        self._stopped = True
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._socket.fileno())
        self._socket.close()


def take_over(
    loop: asyncio.AbstractEventLoop,
    servers: list[asyncio.Server],
    protocol_factory: Callable[[], asyncio.Protocol],
) -> list[BatchAcceptor]:
    """Moves accepting on the servers' listening sockets to batch acceptors: each
    acceptor holds a descriptor of its own for the socket, then the server lets go
    of its one, so the port stays open and only the acceptor takes connections."""
    acceptors = [
        BatchAcceptor(loop, listening.fileno(), protocol_factory)
        for server in servers
        for listening in server.sockets
    ]
    for server in servers:
        server.close()
    return acceptors
