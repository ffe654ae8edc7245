"""Reads and handshakes are rate limited per user, like sends (CHAT_READ_RATE_LIMIT,
CHAT_CONNECT_RATE_LIMIT); one user's flood leaves everyone else alone.
"""

import pytest

from tests.conftest import open_socket

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def people(make_user):
    return make_user("alice"), make_user("bob")


async def test_reads_over_the_limit_get_rate_limited_with_retry_after(people, connect, settings):
    settings.CHAT_READ_RATE_LIMIT = (3, 60)
    alice, bob = people
    socket = await connect(alice)
    reads = [
        {"type": "history", "room": "general"},
        {"type": "sync", "after": 0},
        {"type": "history", "with": "bob"},
    ]
    for frame in reads:
        assert (await socket.ask(frame))["type"] == frame["type"]
    refused = await socket.ask({"type": "sync", "after": 0}, "error")
    assert refused["code"] == "rate_limited" and 0 < refused["retry_after"] <= 60
    # Another tab of the same user shares the count; another user has their own.
    second_tab = await connect(alice)
    assert (await second_tab.ask({"type": "history", "room": "general"}, "error"))[
        "code"
    ] == "rate_limited"
    other = await connect(bob)
    assert (await other.ask({"type": "history", "room": "general"}))["type"] == "history"
    # Sending is limited separately, and still works.
    await socket.send({"type": "send", "room": "general", "body": "hi", "client_id": "k1"})
    assert (await socket.receive_type("ack"))["client_id"] == "k1"


async def test_handshakes_over_the_limit_are_refused_before_the_socket_opens(
    people, connect, settings
):
    settings.CHAT_CONNECT_RATE_LIMIT = (2, 60)
    alice, bob = people
    await connect(alice)
    await connect(alice)
    connected, _, refused = await open_socket(alice)
    assert not connected
    await refused.communicator.wait()
    # Another user is not affected by alice's flood.
    other = await connect(bob)
    assert other.hello["user"] == "bob"
