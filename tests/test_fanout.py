"""The process fan-out writes every frame to every local member, whatever one socket does."""

import json

import pytest
from channels.layers import InMemoryChannelLayer

from chat.realtime.fanout import Fanout


class _Socket:
    def __init__(self, username: str, *, broken: bool = False) -> None:
        self.username = username
        self.broken = broken
        self.frames: list[str] = []
        self.takes_batches = False

    def push(self, text: str) -> None:
        if self.broken:
            raise RuntimeError("this socket's write failed")
        self.frames.append(text)

    def end(self, code: int) -> None: ...

    def resync(self) -> None: ...

    def rooms_changed(self) -> None: ...


@pytest.mark.parametrize("position", [0, 1, 2])
async def test_one_failing_socket_does_not_keep_a_frame_from_the_others(position):
    fanout = Fanout(InMemoryChannelLayer())
    sockets = [_Socket(f"user{n}") for n in range(3)]
    sockets[position].broken = True
    await fanout.join(sockets[0], {"room.general"})
    await fanout.join(sockets[1], {"room.general"})
    await fanout.join(sockets[2], {"room.general"})
    await fanout._deliver({"type": "chat.frame", "group": "room.general", "text": "frame"})
    for index, socket in enumerate(sockets):
        assert socket.frames == ([] if index == position else ["frame"])


async def test_a_burst_window_is_one_batch_for_sockets_that_take_batches(settings):
    from chat import presence
    from chat.protocol import encode, presence_frame

    settings.CHAT_PRESENCE_WINDOW_SECONDS = 0.01
    fanout = Fanout(InMemoryChannelLayer())
    new, old = _Socket("ann"), _Socket("ben")
    new.takes_batches, old.takes_batches = True, False
    await fanout.join(new, {"everyone"})
    await fanout.join(old, {"everyone"})
    changes = [("carol", "online"), ("dave", "online"), ("carol", "away"), ("erin", "offline")]
    for user, status in changes:
        text = encode(presence_frame(user=user, status=status))
        event = {"type": "chat.frame", "group": "everyone", "text": text, "burst": "presence"}
        await fanout._deliver(dict(event, except_user=user))
    await fanout._burst_flushes["presence"]
    assert [json.loads(text) for text in new.frames] == [
        {
            "type": "presence_batch",
            "online": ["dave"],
            "away": ["carol"],
            "offline": ["erin"],
            "last_seen": {"erin": None},
        }
    ]
    assert presence.PRESENCE_BURST == "presence"
    # A socket that did not ask gets the frames one by one (a few) as before.
    assert [json.loads(text)["user"] for text in old.frames] == ["carol", "dave", "carol", "erin"]


class _CountingLayer(InMemoryChannelLayer):
    """The in-memory layer, noting each group it is asked to leave."""

    def __init__(self) -> None:
        super().__init__()
        self.discarded: list[str] = []

    async def group_discard(self, group: str, channel: str) -> None:
        self.discarded.append(group)
        await super().group_discard(group, channel)


async def test_a_socket_dropped_by_a_stopping_server_gets_nothing_more_and_costs_no_unsubscribe():
    layer = _CountingLayer()
    fanout = Fanout(layer)
    leaving, dropped, staying = _Socket("ann"), _Socket("ben"), _Socket("cat")
    await fanout.join(leaving, {"room.general", "user.1"})
    await fanout.join(dropped, {"room.general", "user.2"})
    await fanout.join(staying, {"room.general"})
    # A user leaving: the group only they were in is given back to the layer.
    await fanout.leave(leaving, {"room.general", "user.1"})
    assert layer.discarded == ["user.1"]
    # A server stopping: nothing is given back (the subscriptions end with the process).
    fanout.drop(dropped, {"room.general", "user.2"})
    assert layer.discarded == ["user.1"]
    for group in ("room.general", "user.2"):
        await fanout._deliver({"type": "chat.frame", "group": group, "text": group})
    assert dropped.frames == []
    assert staying.frames == ["room.general"]
