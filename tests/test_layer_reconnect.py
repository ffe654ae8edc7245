"""After a Redis restart, only the sockets that may have missed live frames are asked
to reconnect (4012); a socket opened once the layer is back stays open and receives.
"""

import asyncio
import time
import uuid

import pytest
import websockets
from pytest_redis import factories

from tests.conftest import redis_url_of
from tests.server import Browser, ChatClient, ServerProcess

pytestmark = pytest.mark.server

bouncing_redis = factories.redis_proc(port=None)


async def _closed_with(client: ChatClient, timeout: float) -> int:
    """Reads until the server closes the socket; returns the close code."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            await client.receive(max(deadline - time.monotonic(), 0.01))
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else 1006


async def _open_when_back(server, session: str, within: float) -> ChatClient:
    deadline = time.monotonic() + within
    while True:
        try:
            return await ChatClient(server, session).open()
        except (OSError, websockets.WebSocketException, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _logged(server, texts: tuple[str, ...], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while not any(text in server.output() for text in texts):
        assert time.monotonic() < deadline, f"the server never logged any of {texts}"
        await asyncio.sleep(0.05)


def test_only_sockets_open_during_the_outage_are_asked_to_resync(database, bouncing_redis):
    server = ServerProcess(database, REDIS_URL=redis_url_of(bouncing_redis)).start()
    try:
        tag = uuid.uuid4().hex[:6]
        alice = Browser(server.url).signup(f"alice{tag}")
        bob = Browser(server.url).signup(f"bob{tag}")
        asyncio.run(_scenario(server, bouncing_redis, alice, bob))
    finally:
        server.stop()


async def _scenario(server, redis_executor, alice_session, bob_session) -> None:
    before = await ChatClient(server, bob_session).open()
    redis_executor.stop()
    # Wait until the process has noticed (its log says so), then bring Redis back
    # and open new sockets at once, racing the layer's own reconnect.
    await _logged(server, ("lost the layer's subscriber", "Unexpected exception in receive"))
    redis_executor.start()
    after = await _open_when_back(server, bob_session, within=30)
    sender = await _open_when_back(server, alice_session, within=30)
    # The socket that was open across the outage may have missed frames.
    assert await _closed_with(before, timeout=30) == 4012
    # The sockets opened after Redis came back missed nothing: they stay open.
    for n in range(5):
        body = f"after the restart {n}"
        await sender.send({"type": "send", "room": "general", "body": body, "client_id": f"a{n}"})
        await sender.receive_type("ack", skip=("presence", "users", "message"), timeout=15)
        assert (await after.receive_type("message", timeout=15))["body"] == body
        await asyncio.sleep(0.5)  # spread over a few seconds, as a late reconnect would be
    await after.send({"type": "ping"})
    assert (await after.receive_type("pong", skip=("presence", "users", "message")))["type"]
    await after.close()
    await sender.close()
