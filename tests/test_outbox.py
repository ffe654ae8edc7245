"""A socket's outbox writes in order, never makes its caller wait, and gives up a stalled client.

The send here is an ASGI send with the same back-pressure as uvicorn's: it waits
while the "transport" is paused. The real server and a real stalled TCP client
are in tests/test_slow_reader.py.
"""

import asyncio
import socket

import pytest

from chat.realtime.outbox import Outbox, run_eagerly


class _Transport:
    """An ASGI send that records messages and waits while paused, as a full TCP buffer does."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.writable = asyncio.Event()
        self.writable.set()

    async def send(self, message: dict) -> None:
        await self.writable.wait()
        self.sent.append(message)

    def texts(self) -> list[str]:
        return [m["text"] for m in self.sent if m["type"] == "websocket.send"]


def _outbox(transport: _Transport, *, max_queued: int = 1000, stall: float = 30.0):
    given_up: list[str] = []
    done = asyncio.Event()

    def too_slow(reason: str) -> None:
        given_up.append(reason)
        done.set()

    outbox = Outbox(
        transport.send, max_queued=max_queued, stall_seconds=stall, on_too_slow=too_slow
    )
    return outbox, given_up, done


async def test_a_writable_socket_gets_each_frame_at_once_without_a_task():
    transport = _Transport()
    outbox, _, _ = _outbox(transport)
    tasks_before = len(asyncio.all_tasks())
    for n in range(5):
        outbox.put(f"frame {n}")
    assert transport.texts() == [f"frame {n}" for n in range(5)]
    assert len(asyncio.all_tasks()) == tasks_before
    assert not outbox.busy


async def test_frames_queued_behind_a_paused_write_go_out_in_order_once_it_drains():
    transport = _Transport()
    outbox, given_up, _ = _outbox(transport)
    outbox.put("first")
    transport.writable.clear()
    for text in ("second", "third", "fourth"):
        outbox.put(text)  # returns at once although nothing can be written
    assert transport.texts() == ["first"]
    assert outbox.busy
    writer = outbox._writer
    transport.writable.set()
    await asyncio.wait_for(writer, timeout=10)
    assert not outbox.busy
    assert transport.texts() == ["first", "second", "third", "fourth"]
    assert given_up == []


async def test_a_close_goes_out_after_the_frames_queued_before_it():
    transport = _Transport()
    outbox, _, _ = _outbox(transport)
    transport.writable.clear()
    outbox.put("last words")
    outbox.close(4001)
    outbox.put("never sent: after the close")
    writer = outbox._writer
    transport.writable.set()
    await asyncio.wait_for(writer, timeout=10)
    assert transport.sent == [
        {"type": "websocket.send", "text": "last words"},
        {"type": "websocket.close", "code": 4001},
    ]


async def test_a_socket_whose_queue_overflows_is_given_up_once_and_its_queue_dropped():
    transport = _Transport()
    outbox, given_up, _ = _outbox(transport, max_queued=10)
    transport.writable.clear()
    outbox.put("waits")
    outbox.put("12345")
    outbox.put("67890")
    assert given_up == []
    outbox.put("x")  # 11 characters queued
    outbox.put("more")
    assert len(given_up) == 1 and "queued" in given_up[0]
    assert outbox.closed and not outbox.busy
    transport.writable.set()
    await asyncio.sleep(0)
    assert transport.texts() == []


async def test_a_write_that_stalls_past_the_limit_gives_the_socket_up():
    transport = _Transport()
    outbox, given_up, done = _outbox(transport, stall=0.2)
    transport.writable.clear()
    outbox.put("never read")
    await asyncio.wait_for(done.wait(), timeout=30)
    assert len(given_up) == 1 and "waited" in given_up[0]
    assert outbox.closed


async def test_a_send_that_raises_at_once_propagates_from_run_eagerly():
    async def broken(message):
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        run_eagerly(broken({}))


async def test_run_eagerly_hands_back_the_rest_of_a_waiting_coroutine():
    gate = asyncio.Event()
    steps = []

    async def two_steps():
        steps.append("before")
        await gate.wait()
        steps.append("after")
        return "result"

    rest = run_eagerly(two_steps())
    assert steps == ["before"] and rest is not None
    gate.set()
    assert await rest == "result"
    assert steps == ["before", "after"]


async def test_a_client_gone_as_its_socket_was_accepted_is_not_written_to():
    # uvicorn's own protocol on a real socket pair: the client's connection closes
    # while the application is about to accept, and the accept comes first.
    from uvicorn.config import Config
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from uvicorn.server import ServerState

    connected, release = asyncio.Event(), asyncio.Event()
    seen: dict = {}

    async def app(scope, receive, send):
        await receive()  # websocket.connect
        connected.set()
        await release.wait()
        await send({"type": "websocket.accept"})  # passes without a word
        outbox, _, _ = _outbox(_Transport())
        outbox._send = send
        seen["opened"] = outbox.opened()
        outbox.put("hello")  # dropped, not raised
        try:
            await send({"type": "websocket.send", "text": "hello"})
        except RuntimeError as exc:  # what the outbox spared the socket
            seen["uvicorn"] = str(exc)

    config = Config(app=app, ws="websockets-sansio", lifespan="off", log_level="warning")
    config.load()
    server_end, client_end = socket.socketpair()
    with client_end:
        _, protocol = await asyncio.get_running_loop().connect_accepted_socket(
            lambda: WebSocketsSansIOProtocol(config, ServerState(), {}), server_end
        )
        client_end.sendall(
            b"GET /ws/chat/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await connected.wait()
        release.set()  # the application's next step runs before the loss is reported
        protocol.transport.close()
        await asyncio.gather(*protocol.tasks)
    assert seen["opened"] is False
    assert "Expected ASGI message 'websocket.accept'" in seen["uvicorn"]
