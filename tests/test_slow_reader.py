"""A client that never reads its socket cannot delay anyone else's frames (real server).

The slow client is a raw TCP socket with a tiny receive buffer that asks for
several megabytes of history and then reads nothing: the server's writes to it
stall. Meanwhile another user must receive every room message and direct
message, and the server must give the slow socket up (4008, connection dropped),
which everyone sees as the slow user going offline. Runs in the embedded mode
and in Redis mode.
"""

import asyncio
import json
import os
import socket
import time
import uuid

import pytest
from pytest_redis import factories

from tests.conftest import redis_url_of
from tests.server import Browser, ChatClient, ServerProcess, raw_chat_socket

pytestmark = pytest.mark.server

STALL_SECONDS = 2
LONG_BODY = "x" * 4000
slow_redis = factories.redis_proc(port=None)


@pytest.fixture(scope="module", params=["embedded", "redis"])
def server(request, database):
    """A server with a short stall limit, in the embedded mode or in Redis mode."""
    env = {"CHAT_SEND_STALL_SECONDS": str(STALL_SECONDS), "CHAT_READ_RATE_LIMIT": "off"}
    if request.param == "redis":
        env["REDIS_URL"] = redis_url_of(request.getfixturevalue("slow_redis"))
    server = ServerProcess(database, **env).start()
    yield server
    server.stop()


def _masked(text: str) -> bytes:
    """Encodes a client text frame (clients must mask what they send)."""
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _dropped(raw: socket.socket, timeout: float) -> bool:
    """Reads what is left until the server ends the connection; True when it did."""
    raw.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not raw.recv(1 << 20):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return False


async def _next_message(client: ChatClient, body: str, timeout: float, skipped: list) -> dict:
    """Waits for the message frame with `body`; the frames passed over go to `skipped`."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await client.receive(max(deadline - time.monotonic(), 0.01))
        if frame["type"] == "message" and frame["body"] == body:
            return frame
        skipped.append(frame)


def _says_offline(frame: dict, user: str) -> bool:
    return (frame["type"], frame.get("user"), frame.get("online")) == ("presence", user, False) or (
        frame["type"] == "users" and user not in frame["online"]
    )


async def _went_offline(client: ChatClient, user: str, timeout: float, skipped: list) -> None:
    """Waits until `client` hears that `user` went offline (perhaps among `skipped`)."""
    if any(_says_offline(frame, user) for frame in skipped):
        return
    deadline = time.monotonic() + timeout
    while True:
        frame = await client.receive(max(deadline - time.monotonic(), 0.01))
        if _says_offline(frame, user):
            return


async def test_a_socket_that_never_reads_does_not_delay_other_users(server):
    tag = uuid.uuid4().hex[:6]
    names = {role: f"{role}{tag}" for role in ("alice", "bob", "slow")}
    sessions = {role: Browser(server.url).signup(name) for role, name in names.items()}
    alice = await ChatClient(server, sessions["alice"]).open()
    bob = await ChatClient(server, sessions["bob"]).open()
    try:
        # Enough history that a few pages of it are megabytes.
        for n in range(100):
            await alice.send(
                {"type": "send", "room": "general", "body": LONG_BODY, "client_id": f"s{n}"}
            )
        for _ in range(100):
            await alice.receive_type("ack", skip=("presence", "users", "message"))

        slow = raw_chat_socket(server, sessions["slow"], receive_buffer=1)
        await _next_presence_online(bob, names["slow"])
        for _ in range(15):
            slow.sendall(_masked(json.dumps({"type": "history", "room": "general", "limit": 100})))

        # While the slow socket's writes are stuck, bob hears every room message
        # and every direct message alice sends, one after the other.
        latencies = []
        # A fast server gives the slow socket up within these sends: bob hears of it
        # among the frames he passes over on the way to each message.
        skipped: list[dict] = []
        for n in range(20):
            body = f"live {n} {tag}"
            frame = (
                {"type": "send", "room": "general", "body": body, "client_id": f"l{n}"}
                if n % 2
                else {"type": "send", "to": names["bob"], "body": body, "client_id": f"l{n}"}
            )
            start = time.monotonic()
            await alice.send(frame)
            await _next_message(bob, body, timeout=10, skipped=skipped)
            latencies.append(time.monotonic() - start)
        latencies.sort()
        print(f"bob's latency with a stalled reader present: median {latencies[10] * 1000:.1f} ms")

        # The server gives the slow socket up: its user goes offline for everyone,
        # and its connection is dropped.
        await _went_offline(bob, names["slow"], timeout=STALL_SECONDS + 30, skipped=skipped)
        assert _dropped(slow, timeout=30)
        assert "socket too slow" in server.output()
    finally:
        await alice.close()
        await bob.close()


async def _next_presence_online(client: ChatClient, user: str) -> None:
    """Waits until `client` hears that `user` is online."""
    while True:
        frame = await client.receive(10)
        if (frame["type"], frame.get("user"), frame.get("online")) == ("presence", user, True) or (
            frame["type"] == "users" and user in frame["online"]
        ):
            return
        await asyncio.sleep(0)
