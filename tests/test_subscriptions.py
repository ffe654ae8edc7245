"""Subscriptions that last: a room that is never empty keeps delivering across many
expiry periods of the channel layer, and a process whose channel was dropped from
its groups notices, rejoins and asks its sockets to resync.
"""

import asyncio
import time

import pytest
from channels.layers import InMemoryChannelLayer, channel_layers

from chat.realtime.fanout import get_fanout
from tests.conftest import REDIS_MODE

# Memberships of the in-memory layer end after GROUP_EXPIRY seconds (whole
# seconds: the layer compares integer times), queued events after EVENT_EXPIRY.
GROUP_EXPIRY, EVENT_EXPIRY = 2, 1


@pytest.fixture
def short_expiries(settings):
    """The embedded mode's layer with expiries shortened from a day and a minute to seconds."""
    if not REDIS_MODE:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels.layers.InMemoryChannelLayer",
                "CONFIG": {"group_expiry": GROUP_EXPIRY, "expiry": EVENT_EXPIRY},
            }
        }
        channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_a_long_lived_room_keeps_delivering_across_many_expiry_periods(
    short_expiries, make_user, connect
):
    alice, bob = await make_user_async(make_user, "alice"), await make_user_async(make_user, "bob")
    sender = await connect(alice)
    listener = await connect(bob)
    # Five group-expiry periods (the default's equivalent of five days), a message
    # every half period, each one received by the socket that stayed open.
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < 5 * GROUP_EXPIRY:
        body = f"day {n}"
        await sender.send({"type": "send", "room": "general", "body": body, "client_id": f"c{n}"})
        frame = await listener.receive_type("message", timeout=10)
        assert frame["body"] == body
        n += 1
        await asyncio.sleep(GROUP_EXPIRY / 2)
    assert n >= 8
    # Direct messages and new sockets still arrive too.
    await sender.send({"type": "send", "to": "bob", "body": "still here", "client_id": "dm"})
    assert (await listener.receive_type("message", timeout=10))["body"] == "still here"
    late = await connect(bob)
    await sender.send({"type": "send", "room": "general", "body": "late", "client_id": "late"})
    assert (await late.receive_type("message", timeout=10))["body"] == "late"


@pytest.mark.skipif(REDIS_MODE, reason="the in-memory layer's own expiry")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_a_process_dropped_from_its_groups_rejoins_and_resyncs_its_sockets(
    make_user, connect
):
    bob = await make_user_async(make_user, "bob")
    listener = await connect(bob)
    fanout = get_fanout()
    layer = fanout.layer
    assert isinstance(layer, InMemoryChannelLayer)
    # What the layer does when one of the process's queued events expires.
    layer._remove_from_groups(fanout._channel)
    await fanout.renew()
    # Its socket may have missed events, so it is asked to reconnect and sync ...
    assert await listener.communicator.receive_output(timeout=10) == {
        "type": "websocket.close",
        "code": 4012,
    }
    # ... and a new socket receives again.
    alice = await make_user_async(make_user, "alice")
    sender = await connect(alice)
    again = await connect(bob)
    await sender.send({"type": "send", "room": "general", "body": "back", "client_id": "b"})
    assert (await again.receive_type("message", timeout=10))["body"] == "back"


async def make_user_async(make_user, name: str):
    """Creates a user from async code."""
    from asgiref.sync import sync_to_async

    return await sync_to_async(make_user)(name)
