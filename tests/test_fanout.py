"""The process fan-out writes every frame to every local member, whatever one socket does."""

import pytest
from channels.layers import InMemoryChannelLayer

from chat.realtime.fanout import Fanout


class _Socket:
    def __init__(self, username: str, *, broken: bool = False) -> None:
        self.username = username
        self.broken = broken
        self.frames: list[str] = []

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
