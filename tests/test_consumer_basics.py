"""The socket's first moments: handshake rules, hello, ping, users."""

import pytest

from tests.conftest import open_socket

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


async def test_hello_is_the_first_frame(make_user, connect):
    alice = await _user(make_user, "alice")
    socket = await connect(alice)
    assert socket.hello == {
        "type": "hello",
        "user": "alice",
        "online": ["alice"],
        "rooms": ["general"],
        "direct": [],
        "last_id": 0,
        "rev": 0,
        "unread": [{"room": "general", "read_seq": 0, "last_seq": 0, "unread": 0, "mentions": 0}],
        "staff": False,
        "levels": [],
        "away": [],
        "last_seen": {},
    }


async def test_ping_gets_pong(make_user, connect):
    socket = await connect(await _user(make_user, "alice"))
    assert await socket.ask({"type": "ping"}, "pong") == {"type": "pong"}


async def test_anonymous_handshake_is_refused(make_user):
    connected, _code, _ = await open_socket(None)
    # Closed before accept: daphne answers such a handshake with HTTP 403
    # (tests/test_server.py checks that over a real connection).
    assert not connected


async def test_foreign_origin_is_refused(make_user):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from chatsite.asgi import application
    from tests.conftest import login_client

    alice = await _user(make_user, "alice")
    client = await sync_to_async(login_client)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    for origin in (b"http://evil.example", None):
        headers = [(b"cookie", cookie)] + ([(b"origin", origin)] if origin else [])
        communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
        connected, _code = await communicator.connect()
        assert not connected


async def _user(make_user, name):
    from asgiref.sync import sync_to_async

    return await sync_to_async(make_user)(name)


async def test_a_database_failure_while_greeting_asks_to_reconnect_and_leaves_nobody_online(
    make_user,
):
    from chat.models import NotificationLevel
    from chat.presence import get_presence
    from tests.db_faults import table_away

    alice = await _user(make_user, "alice")
    # A real failure of one of the greeting's reads: its table is gone.
    async with table_away(NotificationLevel):
        connected, _code, socket = await open_socket(alice)
        # Presence registered beside the failing read; the socket opens, then is
        # asked to come back, as for any outage while greeting.
        assert connected
        assert await socket.communicator.receive_output(timeout=10) == {
            "type": "websocket.close",
            "code": 4012,
        }
    await socket.communicator.wait(timeout=10)
    online, _away = await get_presence().statuses()
    assert "alice" not in online
