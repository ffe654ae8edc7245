"""Typing through the socket: to the others of a room or the one recipient, never to the
typist's own sockets or a third user, at most once per 2 s per socket, never stored.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chat.handlers import TYPING_EVERY_SECONDS
from chat.models import Message
from tests.conversation import not_presence, post

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
async def people(make_user):
    """Three users: alice, bob and carol."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]


def _typing(frames: list[dict]) -> list[dict]:
    return [frame for frame in frames if frame["type"] == "typing"]


async def test_typing_in_a_room_reaches_the_others_and_never_the_typists_sockets(people, connect):
    alice, alice_tab2 = await connect(people[0]), await connect(people[0])
    bob, carol = await connect(people[1]), await connect(people[2])
    await alice.send({"type": "typing", "room": "general"})
    for socket in (bob, carol):
        frame = await socket.receive_type("typing")
        assert frame == {"type": "typing", "user": "alice", "room": "general"}
    # bob types after alice's frame went out, in the same room: alice's tabs get his
    # frame after any frame of her own would have come.
    await bob.send({"type": "typing", "room": "general"})
    for socket in (alice, alice_tab2):
        earlier, frame = await socket.receive_until("typing", lambda f: f["user"] == "bob")
        assert frame == {"type": "typing", "user": "bob", "room": "general"}
        assert not_presence(earlier) == []
    # Typing is never stored, and never in `sync`.
    synced = await alice.ask({"type": "sync", "since": 0}, "sync")
    assert synced["messages"] == [] and synced["last_rev"] == 0
    assert await sync_to_async(Message.objects.count)() == 0


async def test_typing_to_a_user_reaches_that_user_only(people, connect):
    alice, alice_tab2 = await connect(people[0]), await connect(people[0])
    bob, bob_tab2, carol = (
        await connect(people[1]),
        await connect(people[1]),
        await connect(people[2]),
    )
    await alice.send({"type": "typing", "to": "bob"})
    # `with` names the typist: the conversation as bob sees it.
    for socket in (bob, bob_tab2):
        frame = await socket.receive_type("typing")
        assert frame == {"type": "typing", "user": "alice", "with": "alice"}
    # A later room message reaches everyone after the typing frame would have.
    later = await post(alice, "later", "r1", room="general")
    for socket in (alice_tab2, carol):
        earlier, _ = await socket.receive_until("message", lambda m: m["id"] == later["id"])
        assert not_presence(earlier) == []


async def test_a_second_typing_frame_within_two_seconds_is_dropped(people, connect):
    alice, alice_tab2, bob = (
        await connect(people[0]),
        await connect(people[0]),
        await connect(people[1]),
    )
    await alice.send({"type": "typing", "room": "general"})
    await alice.send({"type": "typing", "room": "general"})
    await alice.send({"type": "typing", "to": "bob"})
    # A socket's frames are handled in order: once pong is back, all three were.
    assert await alice.ask({"type": "ping"}, "pong") == {"type": "pong"}
    first = await bob.receive_type("typing")
    assert first == {"type": "typing", "user": "alice", "room": "general"}
    # The limit is per socket: another tab's first frame passes.
    await alice_tab2.send({"type": "typing", "to": "bob"})
    earlier, frame = await bob.receive_until("typing")
    assert frame == {"type": "typing", "user": "alice", "with": "alice"}
    assert not_presence(earlier) == []
    # Once the 2 s are over, the first tab's next frame passes again, and it is the
    # next typing frame bob gets: the two dropped ones never come.
    await asyncio.sleep(TYPING_EVERY_SECONDS)
    await alice.send({"type": "typing", "room": "general"})
    earlier, frame = await bob.receive_until("typing")
    assert frame == {"type": "typing", "user": "alice", "room": "general"}
    assert not_presence(earlier) == []


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "typing", "room": "nowhere"}, "unknown_room"),
        ({"type": "typing", "to": "nobody"}, "unknown_user"),
        ({"type": "typing"}, "bad_frame"),
        ({"type": "typing", "room": "general", "to": "bob"}, "bad_frame"),
        ({"type": "typing", "room": 5}, "bad_frame"),
    ],
)
async def test_refused_typing_gets_an_error(people, connect, frame, code):
    alice = await connect(people[0])
    assert (await alice.ask(frame, "error"))["code"] == code
