"""Presence batches: a socket that asks for them gets a window's changes as one frame.

A storm of arrivals costs each such socket a frame per window listing only the
users who changed, not a frame per arrival nor the whole online list; its list
ends exact.
"""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chat.models import LastSeen
from chat.protocol import format_time
from chat.realtime.fanout import burst_window
from tests.conftest import HOST, ORIGIN, Socket, login_client

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
async def batched():
    """Opens logged-in sockets that ask for `presence_batch` frames (hello already read)."""
    from chatsite.asgi import application

    opened: list[Socket] = []

    async def _open(user) -> Socket:
        client = await sync_to_async(login_client)(user)
        session = client.cookies["sessionid"].value
        cookie = f"sessionid={session}".encode()
        headers = [(b"host", HOST), (b"origin", ORIGIN), (b"cookie", cookie)]
        communicator = WebsocketCommunicator(
            application, "/ws/chat/?presence=batch", headers=headers
        )
        connected, code = await communicator.connect(timeout=5)
        assert connected, f"handshake refused ({code})"
        socket = Socket(communicator, client)
        opened.append(socket)
        socket.hello = await socket.receive_type("hello")
        return socket

    yield _open
    for socket in opened:
        await socket.close()


class _Observer:
    """Applies presence frames as the page does, counting frames and characters."""

    def __init__(self, socket: Socket) -> None:
        self.socket = socket
        self.online = set(socket.hello["online"])
        self.frames = 0
        self.chars = 0
        self.kinds: set[str] = set()
        self.last_seen: dict[str, str | None] = {}  # as announced, for those gone offline

    def _apply(self, change: dict) -> None:
        assert change["type"] == "presence", change
        (self.online.add if change["online"] else self.online.discard)(change["user"])
        if not change["online"]:
            self.last_seen[change["user"]] = change["last_seen"]

    async def until(self, online: set[str]) -> None:
        """Receives frames until the online list is `online`."""
        while self.online != online:
            text = await self.socket.communicator.receive_from(timeout=10)
            frame = json.loads(text)
            self.frames += 1
            self.chars += len(text)
            self.kinds.add(frame["type"])
            if frame["type"] == "presence_batch":
                self.online |= set(frame["online"]) | set(frame["away"])
                self.online -= set(frame["offline"])
                assert set(frame["last_seen"]) == set(frame["offline"]), frame
                self.last_seen.update(frame["last_seen"])
            elif frame["type"] == "users":
                self.online = set(frame["online"])
            else:
                self._apply(frame)


async def _storm(make_user, connect, names: list[str]) -> list:
    """Logs every user in first, then opens all their sockets at once."""
    users = [await sync_to_async(make_user)(name) for name in names]
    clients = [await sync_to_async(login_client)(user) for user in users]
    return await asyncio.gather(*(connect(client=client) for client in clients))


async def test_a_crowd_leaving_at_once_is_announced_with_the_times_recorded_for_it(
    batched, connect, make_user, settings
):
    settings.CHAT_PRESENCE_WINDOW_SECONDS = 1
    observer = _Observer(await batched(await sync_to_async(make_user)("ann")))
    names = [f"guest{n}" for n in range(12)]
    arrivals = await _storm(make_user, connect, names)
    await observer.until({"ann", *names})

    # They go offline together, so their last-seen times are written together; each
    # is announced with the time stored for that user.
    await asyncio.gather(*(socket.close() for socket in arrivals))
    await observer.until({"ann"})
    stored = await sync_to_async(
        lambda: {
            user: format_time(at)
            for user, at in LastSeen.objects.values_list("user__username", "last_seen")
        }
    )()
    assert observer.last_seen == stored
    assert set(stored) == set(names)


async def test_a_storm_of_arrivals_costs_each_socket_a_few_batches(
    batched, connect, make_user, settings
):
    # A window far longer than the storm's handshakes on a busy machine.
    settings.CHAT_PRESENCE_WINDOW_SECONDS = 1
    observers = [
        _Observer(await batched(await sync_to_async(make_user)(name))) for name in ("ann", "ben")
    ]
    names = [f"guest{n}" for n in range(12)]
    arrivals = await _storm(make_user, connect, names)
    everyone = {"ann", "ben", *names}
    for observer in observers:
        await observer.until(everyone)
        assert observer.kinds <= {"presence", "presence_batch"}, observer.kinds
        assert observer.frames <= len(names) // 3, observer.frames

    # Everyone leaves at once: the list ends exact again, in a few frames.
    await asyncio.gather(*(socket.close() for socket in arrivals))
    for observer in observers:
        observer.frames = 0
        await observer.until({"ann", "ben"})
        assert observer.frames <= len(names) // 3, observer.frames

    # What a batch holds is settled: a later lone arrival is one `presence` frame.
    settings.CHAT_PRESENCE_WINDOW_SECONDS = 0.05
    await connect(await sync_to_async(make_user)("late"))
    for observer in observers:
        assert await observer.socket.receive() == {
            "type": "presence",
            "user": "late",
            "online": True,
            "status": "online",
        }


async def test_batches_and_online_lists_go_to_the_sockets_that_asked_for_each(
    batched, connect, make_user, settings
):
    settings.CHAT_PRESENCE_WINDOW_SECONDS = 1
    new = _Observer(await batched(await sync_to_async(make_user)("ann")))
    old = _Observer(await connect(await sync_to_async(make_user)("ben")))
    names = [f"guest{n}" for n in range(8)]
    await _storm(make_user, connect, names)
    everyone = {"ann", "ben", *names}
    await new.until(everyone)
    await old.until(everyone)
    assert "presence_batch" in new.kinds and "users" not in new.kinds
    assert "presence_batch" not in old.kinds


def test_the_window_grows_with_the_sockets_beyond_the_frame_budget(settings):
    settings.CHAT_PRESENCE_WINDOW_SECONDS = 0.25
    settings.CHAT_PRESENCE_FRAMES_PER_SECOND = 10_000
    assert burst_window(0) == burst_window(2_500) == 0.25
    assert burst_window(10_000) == 1.0
    assert burst_window(40_000) == 4.0


async def test_a_storm_into_a_crowded_process_costs_each_socket_fewer_batches(
    batched, connect, make_user, settings
):
    # A window far too short to gather a storm, but a budget of 4 frames a second:
    # with a few sockets open the window is already about a second.
    settings.CHAT_PRESENCE_WINDOW_SECONDS = 0.001
    settings.CHAT_PRESENCE_FRAMES_PER_SECOND = 4
    observers = [
        _Observer(await batched(await sync_to_async(make_user)(name))) for name in ("ann", "ben")
    ]
    names = [f"guest{n}" for n in range(12)]
    await _storm(make_user, connect, names)
    for observer in observers:
        await observer.until({"ann", "ben", *names})
        assert observer.kinds <= {"presence", "presence_batch"}, observer.kinds
        assert observer.frames <= len(names) // 3, observer.frames
