"""Private rooms across two real server processes: staff change a room's members in the
admin of one process, and sockets on the other follow within the contract's 2 s.
"""

import asyncio
import re
import time
import urllib.parse
import urllib.request
import uuid

import pytest
from pytest_redis import factories

from tests.conftest import redis_url_of
from tests.server import Browser, ChatClient, ServerProcess
from tests.test_admin import staff_browser

pytestmark = pytest.mark.server

# The contract: a membership change takes effect on open sockets within this time.
MEMBERSHIP_SECONDS = 2.0

rooms_redis = factories.redis_proc(port=None)


@pytest.fixture
def pair(database, rooms_redis):
    """Two server processes sharing one Redis and one database."""
    env = {"REDIS_URL": redis_url_of(rooms_redis)}
    servers = [ServerProcess(database, **env).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


def _signup(server: ServerProcess, prefix: str) -> tuple[str, str]:
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    return name, Browser(server.url).signup(name)


def admin_user_id(staff: Browser, username: str) -> str:
    """A user's id, read from the admin's user list as staff would find it."""
    _, _, page = staff.get(f"/admin/auth/user/?q={username}")
    [user_id] = set(re.findall(r'href="/admin/auth/user/(\d+)/change/', page))
    return user_id


def admin_room_id(staff: Browser, name: str) -> int:
    """A room's id, read from the admin's room list."""
    _, _, page = staff.get(f"/admin/chat/room/?q={name}")
    [room_id] = set(re.findall(r'href="/admin/chat/room/(\d+)/change/', page))
    return int(room_id)


def admin_room_save(staff: Browser, path: str, name: str, members: list[str]) -> int:
    """Saves the admin's room form (add or change) with these member ids; returns the status."""
    _, _, page = staff.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    fields = {"csrfmiddlewaretoken": token, "name": name, "members": members}
    request = urllib.request.Request(
        staff.base_url + path,
        data=urllib.parse.urlencode(fields, doseq=True).encode(),
        headers={"Referer": staff.base_url + path, "Origin": staff.base_url},
    )
    status, _, _ = staff._open(request)
    return status


async def _rooms_frame(client: ChatClient, wanted, start: float) -> float:
    """Waits for a `rooms` frame `wanted` accepts; returns the seconds since `start`.

    Fails once MEMBERSHIP_SECONDS have passed since `start` (when staff began saving).
    """
    timeout = MEMBERSHIP_SECONDS
    while True:
        remaining = timeout - (time.monotonic() - start)
        frame = await client.receive(max(remaining, 0.01))
        if frame["type"] == "rooms" and wanted(frame["rooms"]):
            return time.monotonic() - start


async def _post(client: ChatClient, room: str, body: str, client_id: str) -> int:
    """Sends a room message; returns its id from the ack (other frames are skipped)."""
    await client.send({"type": "send", "room": room, "body": body, "client_id": client_id})
    while True:
        frame = await client.receive()
        if frame["type"] == "ack" and frame["client_id"] == client_id:
            return frame["id"]


def test_membership_changed_in_the_admin_reaches_sockets_on_the_other_process(pair):
    a, b = pair
    staff = staff_browser(a)
    alice, alice_session = _signup(a, "alice")
    bob, bob_session = _signup(b, "bob")
    _, carol_session = _signup(b, "carol")
    ids = {name: admin_user_id(staff, name) for name in (alice, bob)}
    room = f"secret-{uuid.uuid4().hex[:8]}"

    async def scenario() -> list[float]:
        loop = asyncio.get_running_loop()
        alice_ws = await ChatClient(a, alice_session).open()
        bob_ws = await ChatClient(b, bob_session).open()
        carol_ws = await ChatClient(b, carol_session).open()
        took = []

        # Created private on process a: its members on process b join, carol does not.
        start = time.monotonic()
        status = await loop.run_in_executor(
            None, admin_room_save, staff, "/admin/chat/room/add/", room, [ids[alice], ids[bob]]
        )
        assert status == 302
        took.append(await _rooms_frame(bob_ws, lambda rooms: room in rooms, start))
        await _rooms_frame(alice_ws, lambda rooms: room in rooms, start)
        await _rooms_frame(carol_ws, lambda rooms: room not in rooms, start)
        first = await _post(alice_ws, room, "welcome, bob", "m1")
        await _receive_message(bob_ws, first)

        # bob removed: his socket on process b leaves the room.
        path = f"/admin/chat/room/{admin_room_id(staff, room)}/change/"
        start = time.monotonic()
        status = await loop.run_in_executor(None, admin_room_save, staff, path, room, [ids[alice]])
        assert status == 302
        took.append(await _rooms_frame(bob_ws, lambda rooms: room not in rooms, start))
        await _post(alice_ws, room, "without bob", "m2")
        later = await _post(alice_ws, "general", "hello all", "m3")
        earlier, _ = await _receive_message(bob_ws, later)
        assert [f for f in earlier if f["type"] == "message"] == []
        # carol never saw a frame of the room at all, nor the room in a list.
        earlier, _ = await _receive_message(carol_ws, later)
        assert [f for f in earlier if f["type"] not in ("presence", "users", "rooms")] == []
        assert [f for f in earlier if f["type"] == "rooms" and room in f["rooms"]] == []
        for client in (alice_ws, bob_ws, carol_ws):
            await client.close()
        return took

    joined, left = asyncio.run(scenario())
    print(
        f"\nfigure: from the admin's save, a member added joined in {joined:.2f} s, "
        f"one removed left in {left:.2f} s"
    )


async def _receive_message(client: ChatClient, message_id: int) -> tuple[list[dict], dict]:
    """Receives frames up to the message `message_id`; returns (earlier frames, it)."""
    earlier = []
    while True:
        frame = await client.receive()
        if frame["type"] == "message" and frame["id"] == message_id:
            return earlier, frame
        earlier.append(frame)
