"""Presence with away and last seen: idle sockets, the away status, `profile`, and
last seen surviving Redis and server restarts, on one process and across two."""

import asyncio
import time
import uuid
from datetime import datetime

import pytest
import redis
from asgiref.sync import sync_to_async
from pytest_redis import factories

from tests.conftest import redis_url_of
from tests.server import Browser, ChatClient, ServerProcess

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

presence_redis = factories.redis_proc(port=None)


def _presence(user: str, status: str) -> dict:
    return {"type": "presence", "user": user, "online": status != "offline", "status": status}


def _is_time(value) -> bool:
    """Tells whether `value` is an ISO time in UTC with a Z, as every time on the wire."""
    return isinstance(value, str) and value.endswith("Z") and bool(datetime.fromisoformat(value))


@pytest.fixture
async def people(make_user):
    """Three users: alice, bob and carol."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]


async def _idle(socket, idle: bool) -> None:
    """Sends `idle` and waits until the server has handled it (frames are handled in order)."""
    await socket.send({"type": "idle", "idle": idle})
    await socket.ask({"type": "ping"}, "pong")


async def _frames_before_carol_arrives(socket, connect, carol) -> list[dict]:
    """Brings carol online; returns what `socket` received before hearing so."""
    await connect(carol)
    earlier, _ = await socket.receive_until("presence", lambda f: f["user"] == "carol")
    return earlier


# --- One process ------------------------------------------------------------------


async def test_an_idle_socket_makes_its_user_away_and_input_brings_them_back(people, connect):
    alice = await connect(people[0])
    bob = await connect(people[1])
    assert await alice.receive() == _presence("bob", "online")

    await bob.send({"type": "idle", "idle": True})
    assert await alice.receive() == _presence("bob", "away")
    users = await alice.ask({"type": "users"})
    assert users == {"type": "users", "online": ["alice", "bob"], "away": ["bob"]}

    await bob.send({"type": "idle", "idle": False})
    assert await alice.receive() == _presence("bob", "online")
    assert (await alice.ask({"type": "users"}))["away"] == []


async def test_hello_lists_the_away_users(people, connect):
    await connect(people[0])
    bob = await connect(people[1])
    await _idle(bob, True)
    carol = await connect(people[2])
    assert carol.hello["online"] == ["alice", "bob", "carol"]
    assert carol.hello["away"] == ["bob"]


async def test_a_user_is_away_only_when_every_socket_is_idle(people, connect):
    alice = await connect(people[0])
    bob_tab1 = await connect(people[1])
    bob_tab2 = await connect(people[1])
    assert await alice.receive() == _presence("bob", "online")

    # One tab idle, the other active: bob stays online, and nobody hears of it.
    await _idle(bob_tab1, True)
    await _idle(bob_tab1, True)  # saying it twice changes nothing either
    assert await _frames_before_carol_arrives(alice, connect, people[2]) == []

    await bob_tab2.send({"type": "idle", "idle": True})
    assert await alice.receive() == _presence("bob", "away")


async def test_closing_the_last_active_tab_leaves_the_user_away(people, connect):
    alice = await connect(people[0])
    bob_idle = await connect(people[1])
    bob_active = await connect(people[1])
    assert await alice.receive() == _presence("bob", "online")
    await _idle(bob_idle, True)
    await bob_active.close()
    assert await alice.receive() == _presence("bob", "away")


async def test_a_new_tab_of_an_away_user_brings_them_back_online(people, connect):
    alice = await connect(people[0])
    bob = await connect(people[1])
    assert await alice.receive() == _presence("bob", "online")
    await bob.send({"type": "idle", "idle": True})
    assert await alice.receive() == _presence("bob", "away")
    await connect(people[1])
    assert await alice.receive() == _presence("bob", "online")


async def test_going_offline_tells_when_the_user_was_last_seen(people, connect):
    alice = await connect(people[0])
    bob = await connect(people[1])
    assert await alice.receive() == _presence("bob", "online")
    await bob.close()
    offline = await alice.receive()
    assert {k: v for k, v in offline.items() if k != "last_seen"} == _presence("bob", "offline")
    assert _is_time(offline["last_seen"])

    profile = await alice.ask({"type": "profile", "user": "bob"})
    assert profile == {
        "type": "profile",
        "user": "bob",
        "status": "offline",
        "last_seen": offline["last_seen"],
    }


async def test_hello_tells_when_each_offline_direct_partner_was_last_seen(people, connect):
    alice = await connect(people[0])
    bob = await connect(people[1])
    await bob.ask(
        {"type": "send", "to": "alice", "body": "hi", "client_id": "c1"},
        "ack",
    )
    await bob.close()
    _, offline = await alice.receive_until("presence", lambda f: f["status"] == "offline")
    carol = await connect(people[2])
    await carol.ask({"type": "send", "to": "alice", "body": "hi", "client_id": "c2"}, "ack")

    again = await connect(people[0])
    hello = again.hello
    # bob is offline: his time is there; carol is online: hers is not needed.
    assert hello["last_seen"] == {"bob": offline["last_seen"]}


async def test_an_idle_then_closed_socket_goes_offline_with_last_seen(people, connect):
    alice = await connect(people[0])
    bob = await connect(people[1])
    await _idle(bob, True)
    await bob.close()
    _, offline = await alice.receive_until("presence", lambda f: f["status"] == "offline")
    assert offline["user"] == "bob" and _is_time(offline["last_seen"])


async def test_profile_of_someone_here_and_of_someone_never_seen(people, connect):
    alice = await connect(people[0])
    bob = await connect(people[1])
    await _idle(bob, True)
    assert await alice.ask({"type": "profile", "user": "bob"}) == {
        "type": "profile",
        "user": "bob",
        "status": "away",
    }
    assert await alice.ask({"type": "profile", "user": "alice"}) == {
        "type": "profile",
        "user": "alice",
        "status": "online",
    }
    assert await alice.ask({"type": "profile", "user": "carol"}) == {
        "type": "profile",
        "user": "carol",
        "status": "offline",
        "last_seen": None,
    }


async def test_profile_of_an_unknown_user_is_not_found(people, connect):
    alice = await connect(people[0])
    answer = await alice.ask({"type": "profile", "user": "nobody"}, "error")
    assert answer["code"] == "not_found"


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "idle"},
        {"type": "idle", "idle": "yes"},
        {"type": "idle", "idle": 1},
        {"type": "idle", "idle": None},
        {"type": "profile"},
        {"type": "profile", "user": 7},
        {"type": "profile", "user": ""},
    ],
)
async def test_bad_idle_and_profile_frames_are_refused(people, connect, frame):
    alice = await connect(people[0])
    answer = await alice.ask(frame, "error")
    assert answer["code"] == "bad_frame"
    # The socket stays open, and alice is still online, not away.
    assert (await alice.ask({"type": "users"}))["away"] == []


async def test_the_heartbeat_keeps_last_seen_fresh_for_users_still_online(people, connect):
    from chat import presence
    from chat.models import LastSeen

    await connect(people[1])
    before = await sync_to_async(LastSeen.objects.filter(user=people[1]).exists)()
    # What the process does every LAST_SEEN_EVERY_SECONDS, run here by hand.
    await presence._touch_last_seen()
    stored = await sync_to_async(LastSeen.objects.get)(user=people[1])
    assert not before and stored.last_seen is not None
    # Nobody else: alice and carol have no socket.
    assert await sync_to_async(LastSeen.objects.count)() == 1


# --- Real server processes ---------------------------------------------------------

TTL, HEARTBEAT = 3.0, 0.5


def _server(database, redis_executor) -> ServerProcess:
    env = {
        "REDIS_URL": redis_url_of(redis_executor),
        "CHAT_PRESENCE_TTL_SECONDS": str(TTL),
        "CHAT_HEARTBEAT_SECONDS": str(HEARTBEAT),
    }
    return ServerProcess(database, **env).start()


def _signup(server: ServerProcess, prefix: str) -> tuple[str, str]:
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    return name, Browser(server.url).signup(name)


async def _until_status(client: ChatClient, user: str, status: str, timeout: float = 10) -> dict:
    """Receives frames until `user`'s presence frame with `status` arrives; returns it.

    Returns (as the frame) a `users` summary that shows the status, too.
    """
    deadline = time.monotonic() + timeout
    while True:
        frame = await client.receive(max(deadline - time.monotonic(), 0.01))
        if frame["type"] == "presence" and (frame["user"], frame["status"]) == (user, status):
            return frame
        if frame["type"] == "users":
            shown = "away" if user in frame["away"] else "online"
            if (shown if user in frame["online"] else "offline") == status:
                return frame


async def _ask(client: ChatClient, frame: dict, kind: str | None = None) -> dict:
    await client.send(frame)
    return await client.receive_type(kind or frame["type"], skip=("presence", "users", "message"))


@pytest.mark.server
def test_away_is_shared_across_two_processes(database, presence_redis):
    a, b = _server(database, presence_redis), _server(database, presence_redis)
    try:
        alice, alice_session = _signup(a, "alice")
        bob, bob_session = _signup(a, "bob")
        _, carol_session = _signup(b, "carol")

        async def scenario():
            alice_ws = await ChatClient(a, alice_session).open()
            bob_on_a = await ChatClient(a, bob_session).open()
            bob_on_b = await ChatClient(b, bob_session).open()
            await _until_status(alice_ws, bob, "online")

            # Idle on one process, active on the other: still online for everyone.
            await bob_on_a.send({"type": "idle", "idle": True})
            await _ask(bob_on_a, {"type": "ping"}, "pong")
            assert (await _ask(alice_ws, {"type": "users"}))["away"] == []
            # Idle on both: away, heard on both processes.
            await bob_on_b.send({"type": "idle", "idle": True})
            assert (await _until_status(alice_ws, bob, "away"))["type"] in ("presence", "users")
            carol_ws = await ChatClient(b, carol_session).open()
            assert bob in carol_ws.hello["away"]
            assert alice not in carol_ws.hello["away"]
            # Active again on process b: online again, heard on process a.
            await bob_on_b.send({"type": "idle", "idle": False})
            await _until_status(alice_ws, bob, "online")
            await _until_status(carol_ws, bob, "online")
            for client in (alice_ws, bob_on_a, bob_on_b, carol_ws):
                await client.close()

        asyncio.run(scenario())
    finally:
        a.stop()
        b.stop()


@pytest.mark.server
def test_last_seen_survives_a_redis_and_a_server_restart(database, presence_redis):
    server = _server(database, presence_redis)
    try:
        _, alice_session = _signup(server, "alice")
        bob, bob_session = _signup(server, "bob")

        async def bob_comes_and_goes() -> str:
            alice_ws = await ChatClient(server, alice_session).open()
            bob_ws = await ChatClient(server, bob_session).open()
            await _until_status(alice_ws, bob, "online")
            await bob_ws.close()
            offline = await _until_status(alice_ws, bob, "offline")
            await alice_ws.close()
            return offline["last_seen"]

        last_seen = asyncio.run(bob_comes_and_goes())
        assert _is_time(last_seen)

        # Every process stops and Redis loses everything (a restart without persistence).
        server.stop()
        redis.Redis.from_url(redis_url_of(presence_redis)).flushall()
        server = _server(database, presence_redis)

        async def ask_profile() -> dict:
            alice_ws = await ChatClient(server, alice_session).open()
            profile = await _ask(alice_ws, {"type": "profile", "user": bob})
            await alice_ws.close()
            return profile

        assert asyncio.run(ask_profile()) == {
            "type": "profile",
            "user": bob,
            "status": "offline",
            "last_seen": last_seen,
        }
    finally:
        server.stop()
