"""Taking connections off the listening socket: many waiting connections a turn, not
libuv's one, and no more than the handshake limit has room for."""

import asyncio
import socket
import threading

import pytest
import uvloop

from chat.handshake_limit import HandshakeLimit
from chatsite.accept import BATCH, take_over

WAITING = BATCH * 3


def _turns_taking_connections(*, taken_over: bool, waiting: int = WAITING) -> list[int]:
    """Fills a uvloop server's queue while its loop is blocked; returns how many
    connections each turn of the loop then took, in order, until all were taken."""
    made: list[int] = []
    turns = [0]
    all_taken = asyncio.Event()

    class Counted(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            made.append(turns[0])
            if len(made) == waiting:
                all_taken.set()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Counted, "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        acceptors = take_over(loop, [server], Counted) if taken_over else []
        clients: list[socket.socket] = []
        connecting = threading.Thread(
            target=lambda: clients.extend(
                socket.create_connection(("127.0.0.1", port)) for _ in range(waiting)
            )
        )
        connecting.start()
        connecting.join()  # the loop does not run meanwhile: they all wait in the queue

        def count_turn() -> None:
            turns[0] += 1
            loop.call_soon(count_turn)

        count_turn()
        await asyncio.wait_for(all_taken.wait(), 30)
        for acceptor in acceptors:
            acceptor.stop()
        server.close()
        for client in clients:
            client.close()

    uvloop.run(main())
    return [made.count(turn) for turn in sorted(set(made))]


def test_libuv_alone_takes_one_waiting_connection_a_turn():
    # What the acceptor is for: if this changes, the acceptor may no longer be needed.
    assert max(_turns_taking_connections(taken_over=False)) == 1


def test_the_acceptor_takes_a_batch_of_waiting_connections_a_turn(settings):
    settings.CHAT_MAX_HANDSHAKES = None
    per_turn = _turns_taking_connections(taken_over=True)
    assert max(per_turn) == BATCH
    assert sum(per_turn) == WAITING


@pytest.mark.parametrize("under_way", [0, 95])
def test_the_acceptor_takes_no_more_than_the_handshake_limit_has_room_for(settings, under_way):
    settings.CHAT_MAX_HANDSHAKES = 100
    limit = HandshakeLimit(app=None)
    limit.under_way = under_way  # handshakes in progress in this process
    per_turn = _turns_taking_connections(taken_over=True)
    assert max(per_turn) == min(BATCH, 100 - under_way)
    # Connections that never reach the limit (these speak no HTTP) free their room
    # once they are past their turns in transit, so every one is taken in the end.
    assert sum(per_turn) == WAITING
