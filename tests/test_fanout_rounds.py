"""A crowd of handshakes joins its groups in a few subscribe requests, not one per group,
and every group then delivers; the crowd's leaves unsubscribe every group it alone held;
a crowd of publishers is delivered in order. On a real Redis, with the site's layer.
"""

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from channels.layers import InMemoryChannelLayer
from pytest_redis import factories

from chat.realtime.fanout import Fanout
from chat.realtime.layers import ChatPubSubLayer, group_send_many
from chat.realtime.publish import FRAME
from tests.conftest import redis_url_of

rounds_redis = factories.redis_proc(port=None)

CROWD = 200


class _Socket:
    def __init__(self, username: str) -> None:
        self.username = username
        self.takes_batches = False
        self.frames: list[str] = []

    def push(self, text: str) -> None:
        self.frames.append(text)

    def end(self, code: int) -> None: ...

    def resync(self) -> None: ...

    def rooms_changed(self) -> None: ...


def _frame(group: str, text: str) -> dict:
    return {"type": FRAME, "group": group, "text": text}


async def _until(condition, what: str, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.02)


async def _subscribe_calls(client) -> int:
    return (await client.info("commandstats")).get("cmdstat_subscribe", {}).get("calls", 0)


@pytest.fixture
async def redis_fanout(rounds_redis):
    url = redis_url_of(rounds_redis)
    layer = ChatPubSubLayer(hosts=[{"address": url, "socket_timeout": 30}])
    fanout = Fanout(layer)
    client = aioredis.Redis.from_url(url)
    yield fanout, layer, client
    for task in (fanout._receiver, fanout._renewal):
        if task is not None:
            task.cancel()
    await layer.flush()
    await client.aclose()


async def test_a_crowd_of_joins_subscribes_in_a_few_requests_and_every_group_delivers(
    redis_fanout,
):
    fanout, layer, client = redis_fanout
    before = await _subscribe_calls(client)
    sockets = [_Socket(f"user{n}") for n in range(CROWD)]
    personal = [{"everyone", f"user.{n}", f"session.{n}"} for n in range(CROWD)]
    await asyncio.gather(*(fanout.join(s, g) for s, g in zip(sockets, personal, strict=True)))
    # One group at a time this took 2 * CROWD + 1 requests; in rounds, the first
    # joiner's and then everyone else's.
    assert await _subscribe_calls(client) - before <= 3
    events = [(f"user.{n}", _frame(f"user.{n}", f"to {n}")) for n in range(CROWD)]
    await group_send_many(layer, events)
    await _until(lambda: all(s.frames for s in sockets), "every socket got its frame")
    assert [s.frames for s in sockets] == [[f"to {n}"] for n in range(CROWD)]

    await asyncio.gather(*(fanout.leave(s, g) for s, g in zip(sockets, personal, strict=True)))
    channels = [layer._get_layer()._get_group_channel_name(g) for g in set().union(*personal)]
    assert all(count == 0 for _, count in await client.pubsub_numsub(*channels))
    assert not fanout.members


async def test_a_crowd_of_publishers_is_delivered_in_the_order_it_published(redis_fanout):
    fanout, layer, _ = redis_fanout
    listener = _Socket("ann")
    await fanout.join(listener, {"room.general"})
    texts = [f"message {n}" for n in range(CROWD)]
    await asyncio.gather(
        *(group_send_many(layer, [("room.general", _frame("room.general", t))]) for t in texts)
    )
    await _until(lambda: len(listener.frames) == CROWD, "every message arrived")
    assert listener.frames == texts


class _FailingLayer(InMemoryChannelLayer):
    """Refuses its next subscription, as Redis would while down."""

    failures = 1

    async def group_add(self, group, channel):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis is down")
        await super().group_add(group, channel)


async def test_a_join_that_failed_leaves_no_member_behind_and_a_later_one_works():
    layer = _FailingLayer()
    fanout = Fanout(layer)
    socket = _Socket("ann")
    with pytest.raises(ConnectionError):
        await fanout.join(socket, {"room.general"})
    assert "room.general" not in fanout.members
    await fanout.join(socket, {"room.general"})
    await layer.group_send("room.general", _frame("room.general", "back"))
    await _until(lambda: socket.frames == ["back"], "the frame arrived")
    fanout._receiver.cancel()
    fanout._renewal.cancel()
