"""Reading back: history pages, sync after missed messages, and who may read what."""

import pytest
from asgiref.sync import sync_to_async

from chat.messaging.store import message_store
from chat.protocol import Send

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
async def people(make_user):
    """Three users: alice, bob and carol."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]


@sync_to_async
def _post(sender, count: int, *, room: str | None = None, to: str | None = None, tag: str = "m"):
    """Stores `count` messages from `sender`, numbered from 1; returns their ids."""
    ids = []
    for number in range(1, count + 1):
        send = Send(body=f"{tag}{number}", client_id=f"{tag}-{number}", room=room, to=to)
        ids.append(message_store(sender=sender, send=send).message.id)
    return ids


def _bodies(frame: dict) -> list[str]:
    return [message["body"] for message in frame["messages"]]


async def test_history_without_cursor_gives_the_newest_page_oldest_first(people, connect):
    await _post(people[0], 60, room="general")
    alice = await connect(people[0])
    page = await alice.ask({"type": "history", "room": "general"})
    assert page["room"] == "general" and page["has_more"] is True
    assert _bodies(page) == [f"m{n}" for n in range(11, 61)]
    assert [m["seq"] for m in page["messages"]] == list(range(11, 61))


async def test_history_pages_back_with_before_until_the_start(people, connect):
    await _post(people[0], 25, room="general")
    alice = await connect(people[0])
    seen, before = [], None
    while True:
        frame = {"type": "history", "room": "general", "limit": 10}
        if before is not None:
            frame["before"] = before
        page = await alice.ask(frame)
        seen = _bodies(page) + seen
        before = page["messages"][0]["seq"]
        if not page["has_more"]:
            break
    assert seen == [f"m{n}" for n in range(1, 26)]


async def test_history_after_fills_a_gap_oldest_first(people, connect):
    await _post(people[0], 30, room="general")
    alice = await connect(people[0])
    page = await alice.ask({"type": "history", "room": "general", "after": 5, "limit": 10})
    assert _bodies(page) == [f"m{n}" for n in range(6, 16)] and page["has_more"] is True
    last = await alice.ask({"type": "history", "room": "general", "after": 25, "limit": 10})
    assert _bodies(last) == [f"m{n}" for n in range(26, 31)] and last["has_more"] is False


async def test_history_of_an_empty_room_is_empty(people, connect):
    alice = await connect(people[0])
    page = await alice.ask({"type": "history", "room": "general"})
    assert page == {"type": "history", "room": "general", "messages": [], "has_more": False}


async def test_direct_history_is_shared_by_both_parties_only(people, connect):
    alice, bob, carol = people
    await _post(alice, 3, to="bob", tag="a")
    await _post(bob, 2, to="alice", tag="b")
    await _post(carol, 1, to="bob", tag="c")
    for user, other in ((alice, "bob"), (bob, "alice")):
        socket = await connect(user)
        page = await socket.ask({"type": "history", "with": other})
        assert page["with"] == other
        assert _bodies(page) == ["a1", "a2", "a3", "b1", "b2"]
        assert [m["seq"] for m in page["messages"]] == [1, 2, 3, 4, 5]
    # carol asking for "her conversation with alice" sees nothing of alice and bob's.
    carol_socket = await connect(carol)
    page = await carol_socket.ask({"type": "history", "with": "alice"})
    assert page["messages"] == []
    page = await carol_socket.ask({"type": "history", "with": "bob"})
    assert _bodies(page) == ["c1"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "history", "room": "nowhere"}, "unknown_room"),
        ({"type": "history", "with": "nobody"}, "unknown_user"),
        ({"type": "history", "room": "general", "limit": 101}, "bad_frame"),
        ({"type": "history", "room": "general", "before": 5, "after": 1}, "bad_frame"),
        ({"type": "history"}, "bad_frame"),
    ],
)
async def test_bad_history_requests_get_errors(people, connect, frame, code):
    alice = await connect(people[0])
    assert (await alice.ask(frame, "error"))["code"] == code


async def test_sync_returns_missed_messages_in_id_order_in_pages(people, connect):
    alice, bob, _ = people
    socket = await connect(alice)
    start = socket.hello["last_id"]
    await socket.close()
    ids = await _post(bob, 120, room="general")
    ids += await _post(bob, 30, to="alice", tag="d")
    socket = await connect(alice)
    got, after = [], start
    while True:
        page = await socket.ask({"type": "sync", "after": after})
        got += [m["id"] for m in page["messages"]]
        after = page["last_id"]
        if not page["has_more"]:
            break
    assert got == ids
    assert after == ids[-1] == socket.hello["last_id"]


async def test_sync_never_includes_other_pairs_direct_messages(people, connect):
    alice, _, carol = people
    await _post(alice, 5, to="bob", tag="secret")
    visible = await _post(alice, 2, room="general")
    visible += await _post(alice, 1, to="carol", tag="hi")
    socket = await connect(carol)
    page = await socket.ask({"type": "sync", "after": 0})
    assert [m["id"] for m in page["messages"]] == visible
    assert not any(m["body"].startswith("secret") for m in page["messages"])
    assert socket.hello["last_id"] == visible[-1]


async def test_sync_with_nothing_new_is_empty_and_keeps_the_cursor(people, connect):
    ids = await _post(people[1], 2, room="general")
    alice = await connect(people[0])
    page = await alice.ask({"type": "sync", "after": ids[-1]})
    assert page == {"type": "sync", "messages": [], "has_more": False, "last_id": ids[-1]}


async def test_sync_catches_up_a_socket_that_was_closed_while_others_talked(people, connect):
    alice, bob, _ = people
    alice_socket, bob_socket = await connect(alice), await connect(bob)
    await bob_socket.send({"type": "send", "room": "general", "body": "one", "client_id": "s1"})
    seen = await alice_socket.receive_type("message")
    await alice_socket.close()
    for number in (2, 3):
        await bob_socket.send(
            {"type": "send", "room": "general", "body": f"n{number}", "client_id": f"s{number}"}
        )
    # Stored once acknowledged; the first ack waiting is the one of "one" (s1), so
    # wait for s3's by name, not for the second ack to come.
    while True:
        ack = await bob_socket.receive_type("ack", skip=("presence", "users", "message"))
        if ack["client_id"] == "s3":
            break
    back = await connect(alice)
    await back.send({"type": "sync", "after": seen["id"]})
    # n3 may also arrive live if its publish comes after this socket joined the room.
    page = await back.receive_type("sync", skip=("presence", "users", "message"))
    assert _bodies(page) == ["n2", "n3"]


async def test_a_sync_that_meets_a_database_failure_gets_unavailable_and_the_next_works(
    people, connect
):
    from chat.models import Message
    from tests.db_faults import table_away

    await _post(people[1], 2, room="general")
    alice = await connect(people[0])
    async with table_away(Message):  # the page's read fails
        error = await alice.ask({"type": "sync", "after": 0}, "error")
    assert error["code"] == "unavailable"
    page = await alice.ask({"type": "sync", "after": 0})
    assert _bodies(page) == ["m1", "m2"]
