"""Read positions through the socket: `read` never moves back, clears my other tabs,
says "seen" to the other party of a direct conversation, and `hello.unread` counts
what waits for me after a reconnect.
"""

import pytest
from asgiref.sync import sync_to_async

from chat.messaging.store import message_store
from chat.models import ReadPosition, Room
from chat.protocol import Send
from tests.conversation import change, not_presence, post, revision

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
async def people(make_user):
    """Three users: alice, bob and carol."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]


@sync_to_async
def _position(user, **where) -> int | None:
    """The stored read position of `user` in a room (`room__name=`) or direct conversation."""
    return ReadPosition.objects.filter(user=user, **where).values_list("seq", flat=True).first()


def _unread(hello: dict) -> dict:
    """The counts of `hello.unread` keyed by conversation: ("room", name) or ("with", user)."""
    entries = {}
    for entry in hello["unread"]:
        key = ("room", entry["room"]) if "room" in entry else ("with", entry["with"])
        entries[key] = {
            name: entry[name] for name in ("read_seq", "last_seq", "unread", "mentions")
        }
    return entries


def _counts(read_seq: int, last_seq: int, unread: int, mentions: int) -> dict:
    return {"read_seq": read_seq, "last_seq": last_seq, "unread": unread, "mentions": mentions}


async def _posts(socket, count: int, **target) -> list[dict]:
    return [await post(socket, f"m{n}", f"p{n}", **target) for n in range(1, count + 1)]


async def test_read_position_never_moves_back_and_a_lower_seq_publishes_nothing(people, connect):
    alice = await connect(people[0])
    bob, bob_tab2 = await connect(people[1]), await connect(people[1])
    await _posts(alice, 3, room="general")
    await bob.send({"type": "read", "room": "general", "seq": 3})
    for socket in (bob, bob_tab2):
        _, frame = await socket.receive_until("read")
        assert frame == {"type": "read", "user": "bob", "room": "general", "seq": 3}

    await bob.send({"type": "read", "room": "general", "seq": 1})
    await bob.send({"type": "read", "room": "general", "seq": 3})
    # Frames of one socket are handled in order: once pong is back, both reads were.
    await bob.send({"type": "ping"})
    earlier, _ = await bob.receive_until("pong")
    assert [f for f in not_presence(earlier) if f["type"] != "message"] == []
    assert await _position(people[1], room__name="general") == 3

    # Any `read` frame those two published would reach the tab before this one.
    fourth = await post(alice, "m4", "p4", room="general")
    await bob.send({"type": "read", "room": "general", "seq": 4})
    earlier, frame = await bob_tab2.receive_until("read")
    assert frame == {"type": "read", "user": "bob", "room": "general", "seq": 4}
    assert [m["id"] for m in not_presence(earlier)] == [fourth["id"]]
    assert await _position(people[1], room__name="general") == 4


async def test_read_beyond_the_last_message_stops_at_the_last_message(people, connect):
    alice, bob = await connect(people[0]), await connect(people[1])
    await _posts(alice, 2, room="general")
    await bob.send({"type": "read", "room": "general", "seq": 999})
    _, frame = await bob.receive_until("read")
    assert frame["seq"] == 2
    assert await _position(people[1], room__name="general") == 2


async def test_read_position_survives_a_reconnect(people, connect):
    alice, bob = await connect(people[0]), await connect(people[1])
    await _posts(alice, 3, room="general")
    await bob.send({"type": "read", "room": "general", "seq": 2})
    await bob.receive_until("read")
    await bob.close()
    bob = await connect(people[1])
    assert _unread(bob.hello)[("room", "general")] == _counts(2, 3, 1, 0)


async def test_read_clears_the_badge_in_my_other_tabs_and_tells_nobody_else(people, connect):
    alice, carol = await connect(people[0]), await connect(people[2])
    bob, bob_tab2 = await connect(people[1]), await connect(people[1])
    (message,) = await _posts(alice, 1, room="general")
    await bob.send({"type": "read", "room": "general", "seq": 1})
    _, frame = await bob_tab2.receive_until("read")
    assert frame == {"type": "read", "user": "bob", "room": "general", "seq": 1}
    # A later message reaches alice and carol after bob's `read` would have.
    later = await post(bob, "later", "r1", room="general")
    earlier, _ = await alice.receive_until("message", lambda m: m["id"] == later["id"])
    assert not_presence(earlier) == []
    earlier, _ = await carol.receive_until("message", lambda m: m["id"] == later["id"])
    assert [f["id"] for f in not_presence(earlier)] == [message["id"]]


async def test_seen_in_a_direct_conversation_reaches_the_other_party_and_no_third_user(
    people, connect
):
    alice, carol = await connect(people[0]), await connect(people[2])
    bob, bob_tab2 = await connect(people[1]), await connect(people[1])
    await _posts(alice, 2, to="bob")
    await bob.send({"type": "read", "with": "alice", "seq": 2})
    # `with` names the other party from each receiver's side.
    for socket in (bob, bob_tab2):
        _, frame = await socket.receive_until("read")
        assert frame == {"type": "read", "user": "bob", "with": "alice", "seq": 2}
    _, seen = await alice.receive_until("read")
    assert seen == {"type": "read", "user": "bob", "with": "bob", "seq": 2}
    assert await _position(people[1], direct__isnull=False) == 2
    # carol hears nothing of it: a later room message reaches her after it would have.
    later = await post(bob, "later", "r1", room="general")
    earlier, _ = await carol.receive_until("message", lambda m: m["id"] == later["id"])
    assert not_presence(earlier) == []


async def test_reading_notes_to_myself_tells_only_my_own_sockets_once(people, connect):
    alice, alice_tab2 = await connect(people[0]), await connect(people[0])
    await _posts(alice, 1, to="alice")
    await alice.send({"type": "read", "with": "alice", "seq": 1})
    _, frame = await alice_tab2.receive_until("read")
    assert frame == {"type": "read", "user": "alice", "with": "alice", "seq": 1}
    later = await post(alice, "later", "r1", room="general")
    earlier, _ = await alice_tab2.receive_until("message", lambda m: m["id"] == later["id"])
    assert [f["type"] for f in not_presence(earlier)] == []


async def test_hello_unread_counts_others_messages_after_read_seq_not_deleted_and_mentions(
    people, connect
):
    alice, bob, carol = [await connect(user) for user in people]
    await post(alice, "hi", "a1", room="general")
    await post(alice, "@bob look", "a2", room="general")
    gone = await post(alice, "bye @bob", "a3", room="general")
    for_carol = await post(alice, "@carol here", "a4", room="general")
    await post(bob, "my own, @bob", "b1", room="general")
    await change(alice, {"type": "delete", "id": gone["id"]}, gone)
    await post(alice, "psst @bob", "d1", to="bob")
    await post(alice, "again", "d2", to="bob")
    await post(carol, "hey", "c1", to="bob")
    await bob.close()

    bob = await connect(people[1])
    assert _unread(bob.hello) == {
        ("room", "general"): _counts(0, 5, 3, 1),
        ("with", "alice"): _counts(0, 2, 2, 1),
        ("with", "carol"): _counts(0, 1, 1, 0),
    }
    # Editing a mention in counts it; reading moves the count.
    edit = {"type": "edit", "id": for_carol["id"], "body": "@carol and @bob here"}
    await change(alice, edit, for_carol)
    await bob.send({"type": "read", "room": "general", "seq": 1})
    await bob.receive_until("read")
    await bob.send({"type": "read", "with": "alice", "seq": 2})
    await bob.receive_until("read")
    await bob.close()
    bob = await connect(people[1])
    assert _unread(bob.hello) == {
        ("room", "general"): _counts(1, 5, 2, 2),
        ("with", "alice"): _counts(2, 2, 0, 0),
        ("with", "carol"): _counts(0, 1, 1, 0),
    }
    # alice's own messages never count for her: only bob's does.
    alice = await connect(people[0])
    assert _unread(alice.hello)[("room", "general")] == _counts(0, 5, 1, 0)


async def test_a_new_user_starts_with_read_positions_at_the_end_of_every_room(
    people, connect, make_user
):
    alice = await connect(people[0])
    await _posts(alice, 3, room="general")
    await sync_to_async(Room.objects.create)(name="random")
    for number in range(2):
        send = Send(body=f"r{number}", client_id=f"r{number}", room="random")
        await sync_to_async(message_store)(sender=people[1], send=send)

    dave_user = await sync_to_async(make_user)("dave")
    dave = await connect(dave_user)
    assert _unread(dave.hello) == {
        ("room", "general"): _counts(3, 3, 0, 0),
        ("room", "random"): _counts(2, 2, 0, 0),
    }
    # What is said after they joined is unread, and so is a new direct conversation.
    new = await post(alice, "welcome @dave", "w1", room="general")
    await revision(dave, new["id"])
    await post(alice, "hello dave", "w2", to="dave")
    await dave.close()
    dave = await connect(dave_user)
    assert _unread(dave.hello) == {
        ("room", "general"): _counts(3, 4, 1, 1),
        ("room", "random"): _counts(2, 2, 0, 0),
        ("with", "alice"): _counts(0, 1, 1, 0),
    }


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "read", "room": "nowhere", "seq": 1}, "unknown_room"),
        ({"type": "read", "with": "nobody", "seq": 1}, "unknown_user"),
        ({"type": "read", "room": "general"}, "bad_frame"),
        ({"type": "read", "room": "general", "seq": -1}, "bad_frame"),
        ({"type": "read", "room": "general", "seq": "3"}, "bad_frame"),
        ({"type": "read", "room": "general", "with": "bob", "seq": 1}, "bad_frame"),
        ({"type": "read", "seq": 1}, "bad_frame"),
    ],
)
async def test_refused_read_gets_an_error_and_moves_nothing(people, connect, frame, code):
    bob = await connect(people[1])
    assert (await bob.ask(frame, "error"))["code"] == code
    assert await _position(people[1], room__name="general") == 0
