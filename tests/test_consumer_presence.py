"""Presence across tabs, the online list, the socket cap, logout and session expiry."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chat.models import Room
from tests.conftest import login_client, open_socket

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _timeless(frame: dict) -> dict:
    """The frame without its `last_seen` time (an offline presence frame has one)."""
    assert frame.get("status") != "offline" or isinstance(frame.get("last_seen"), str), frame
    return {key: value for key, value in frame.items() if key != "last_seen"}


@pytest.fixture
async def people(make_user):
    """Two users: alice and bob."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob")]


async def test_first_tab_announces_online_to_others(people, connect):
    alice = await connect(people[0])
    await connect(people[1])
    assert await alice.receive() == {
        "type": "presence",
        "user": "bob",
        "online": True,
        "status": "online",
    }


async def test_hello_lists_everyone_online(people, connect):
    await connect(people[0])
    bob = await connect(people[1])
    assert bob.hello["online"] == ["alice", "bob"]


async def _frames_before_carol_arrives(socket, connect, make_user) -> list[dict]:
    """Brings carol online; returns what `socket` received before hearing so.

    Presence frames reach a socket in the order the changes happened (a client
    applying them in any other order would end with a wrong list), so whatever an
    earlier change caused arrives before carol's frame.
    """
    await connect(await sync_to_async(make_user)("carol"))
    earlier, arrival = await socket.receive_until("presence", lambda f: f["user"] == "carol")
    assert arrival == {"type": "presence", "user": "carol", "online": True, "status": "online"}
    return earlier


async def test_second_tab_announces_nothing(people, connect, make_user):
    alice = await connect(people[0])
    await connect(people[1])
    await alice.receive_type("presence")
    await connect(people[1])
    assert await _frames_before_carol_arrives(alice, connect, make_user) == []


async def test_closing_one_of_two_tabs_announces_nothing(people, connect, make_user):
    alice = await connect(people[0])
    bob_tab1 = await connect(people[1])
    await connect(people[1])
    await alice.receive_type("presence")
    await bob_tab1.close()
    assert await _frames_before_carol_arrives(alice, connect, make_user) == []


async def test_closing_the_last_tab_announces_offline(people, connect):
    alice = await connect(people[0])
    bob_tab1, bob_tab2 = await connect(people[1]), await connect(people[1])
    assert (await alice.receive())["online"] is True
    await bob_tab1.close()
    await bob_tab2.close()
    assert _timeless(await alice.receive()) == {
        "type": "presence",
        "user": "bob",
        "online": False,
        "status": "offline",
    }
    assert await alice.ask({"type": "users"}) == {"type": "users", "online": ["alice"], "away": []}


async def test_users_answers_the_online_list(people, connect):
    alice = await connect(people[0])
    await connect(people[1])
    answer = await alice.ask({"type": "users"})
    assert answer == {"type": "users", "online": ["alice", "bob"], "away": []}


async def test_socket_over_the_cap_is_closed_with_4029(people, connect, settings):
    settings.CHAT_MAX_SOCKETS = 2
    alice = people[0]
    client = await sync_to_async(login_client)(alice)
    await connect(client=client)
    await connect(client=client)
    connected, _, extra = await open_socket(client=client)
    assert connected
    assert await extra.communicator.receive_output(timeout=3) == {
        "type": "websocket.close",
        "code": 4029,
    }
    await extra.close()
    # The refused socket did not count: closing it leaves alice online.
    bob = await connect(people[1])
    assert "alice" in bob.hello["online"]


async def test_logout_closes_every_socket_of_that_session(people, connect):
    client = await sync_to_async(login_client)(people[0])
    other_session = await sync_to_async(login_client)(people[0])
    tab1, tab2 = await connect(client=client), await connect(client=client)
    elsewhere = await connect(client=other_session)
    response = await sync_to_async(client.post)("/accounts/logout/")
    assert response.status_code == 302
    for tab in (tab1, tab2):
        closed = await tab.communicator.receive_output(timeout=2)
        assert closed == {"type": "websocket.close", "code": 4001}
    # A session on another device stays connected.
    assert await elsewhere.ask({"type": "ping"}, "pong") == {"type": "pong"}


async def test_expired_session_closes_the_socket_with_4001(people, connect, settings):
    settings.CHAT_SESSION_CHECK_SECONDS = 0.2
    client = await sync_to_async(login_client)(people[0])
    socket = await connect(client=client)
    # The session disappears behind the socket's back (expiry, or a flush elsewhere).
    await sync_to_async(client.session.delete)()
    closed = await socket.communicator.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": 4001}


async def test_password_change_ends_older_sessions(people, connect, settings):
    settings.CHAT_SESSION_CHECK_SECONDS = 0.2
    alice = people[0]
    socket = await connect(alice)
    alice.set_password("another-long-passphrase-77")
    await sync_to_async(alice.save)()
    closed = await socket.communicator.receive_output(timeout=3)
    assert closed == {"type": "websocket.close", "code": 4001}


async def test_new_room_reaches_open_sockets_and_carries_messages(people, connect):
    alice, bob = await connect(people[0]), await connect(people[1])
    await sync_to_async(Room.objects.create)(name="random")
    for socket in (alice, bob):
        assert await socket.receive_type("rooms") == {
            "type": "rooms",
            "rooms": ["general", "random"],
        }
    await alice.send({"type": "send", "room": "random", "body": "new here", "client_id": "r1"})
    message = await bob.receive_type("message")
    assert (message["room"], message["body"]) == ("random", "new here")


async def test_a_burst_of_arrivals_reaches_observers_as_one_online_list(
    connect, make_user, settings
):
    # Eight handshakes take under 0.1 s on a quiet 2-core machine; a window twenty
    # times that keeps the burst inside one window on a busy machine too.
    settings.CHAT_PRESENCE_WINDOW_SECONDS = 2
    names = [f"guest{n}" for n in range(8)]
    # Users and logins first, so that only the handshakes make the burst, right
    # after the observer's own arrival opened the window.
    clients = [await sync_to_async(login_client)(await sync_to_async(make_user)(n)) for n in names]
    observer = await connect(await sync_to_async(make_user)("observer"))
    await asyncio.gather(*(connect(client=client) for client in clients))

    # The observer applies what it gets, as the page does, until its list is whole.
    online, frames = {"observer"}, 0
    while online != {"observer", *names}:
        frame = await observer.receive(timeout=10)
        frames += 1
        if frame["type"] == "users":
            assert frame["online"] == sorted(frame["online"])
            online = set(frame["online"])
        else:
            assert frame["type"] == "presence" and frame["online"], frame
            online.add(frame["user"])
    assert frames < len(names), "the burst was not gathered into an online list"

    # Nothing more comes of the burst: the next frame is a later, lone arrival's own.
    settings.CHAT_PRESENCE_WINDOW_SECONDS = 0.1
    await connect(await sync_to_async(make_user)("late"))
    assert await observer.receive() == {
        "type": "presence",
        "user": "late",
        "online": True,
        "status": "online",
    }


async def test_a_few_changes_still_arrive_as_presence_frames(connect, people, settings):
    settings.CHAT_PRESENCE_WINDOW_SECONDS = 0.3
    alice = await connect(people[0])
    bob = await connect(people[1])
    assert await alice.receive() == {
        "type": "presence",
        "user": "bob",
        "online": True,
        "status": "online",
    }
    await bob.close()
    assert _timeless(await alice.receive()) == {
        "type": "presence",
        "user": "bob",
        "online": False,
        "status": "offline",
    }


async def test_a_socket_that_fails_leaves_no_ghost_online(people, connect, monkeypatch):
    from chat.handlers import HANDLERS
    from chat.protocol import Ping

    async def broken(socket, frame):
        raise RuntimeError("a bug in a handler")

    monkeypatch.setitem(HANDLERS, Ping, broken)
    alice = await connect(people[0])
    _, _, bob = await open_socket(people[1])  # not `connect`: it would close it again
    assert (await bob.receive())["type"] == "hello"
    assert (await alice.receive())["online"] is True
    await bob.send({"type": "ping"})
    with pytest.raises(RuntimeError, match="a bug in a handler"):
        while True:
            await bob.receive()
    # The consumer died without a websocket.disconnect event; its user still went offline.
    assert _timeless(await alice.receive()) == {
        "type": "presence",
        "user": "bob",
        "online": False,
        "status": "offline",
    }
    assert await alice.ask({"type": "users"}) == {"type": "users", "online": ["alice"], "away": []}
