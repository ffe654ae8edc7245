"""Sending: room broadcast, direct messages to two parties only, idempotent retries, errors."""

import pytest
from asgiref.sync import sync_to_async

from chat.models import Message

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
async def people(make_user):
    """Three users: alice, bob and carol."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]


async def _count(**filters) -> int:
    return await sync_to_async(Message.objects.filter(**filters).count)()


def _answers_and_messages(frames: list[dict]) -> list[dict]:
    """The frames that are not news of who is online."""
    return [frame for frame in frames if frame["type"] not in ("presence", "users")]


async def test_room_message_is_acked_and_reaches_every_member(people, connect):
    alice, bob, carol = [await connect(user) for user in people]
    await alice.send({"type": "send", "room": "general", "body": "  hi all \n", "client_id": "k1"})
    ack = await alice.receive_type("ack")
    assert ack["client_id"] == "k1" and ack["seq"] == 1 and ack["sent_at"].endswith("Z")
    for socket in (alice, bob, carol):
        message = await socket.receive_type("message")
        assert message == {
            "type": "message",
            "id": ack["id"],
            "seq": 1,
            "room": "general",
            "from": "alice",
            "body": "hi all",
            "sent_at": ack["sent_at"],
            "client_id": "k1",
            "rev": message["rev"],
            "edited_at": None,
            "deleted": False,
            "reactions": [],
            "mentions": [],
            "attachments": [],
        }
        assert message["rev"] >= 1
    assert await _count(room__name="general") == 1


async def test_seq_counts_each_conversation_without_gaps(people, connect):
    alice = await connect(people[0])
    seqs = []
    for index, target in enumerate([{"room": "general"}, {"to": "bob"}, {"room": "general"}]):
        await alice.send({"type": "send", **target, "body": f"m{index}", "client_id": f"c{index}"})
        seqs.append((await alice.receive_type("ack"))["seq"])
        await alice.receive_type("message")
    assert seqs == [1, 1, 2]


async def test_ids_increase_over_time(people, connect):
    alice = await connect(people[0])
    ids = []
    for index in range(5):
        await alice.send({"type": "send", "room": "general", "body": "x", "client_id": f"i{index}"})
        ids.append((await alice.receive_type("ack"))["id"])
        await alice.receive_type("message")
    assert ids == sorted(ids) and len(set(ids)) == 5


async def test_dm_reaches_every_socket_of_both_parties(people, connect):
    alice_tab1 = await connect(people[0])
    alice_tab2 = await connect(people[0])
    bob = await connect(people[1])
    await alice_tab1.send({"type": "send", "to": "bob", "body": "psst", "client_id": "d1"})
    ack = await alice_tab1.receive_type("ack")
    for socket in (alice_tab1, alice_tab2, bob):
        message = await socket.receive_type("message")
        assert (message["id"], message["to"], message["from"]) == (ack["id"], "bob", "alice")
        assert "room" not in message


async def test_dm_is_not_delivered_to_third_user(people, connect):
    alice, bob, carol = [await connect(user) for user in people]
    await alice.send({"type": "send", "to": "bob", "body": "secret", "client_id": "d1"})
    await alice.receive_type("ack")
    await bob.receive_type("message")
    # A later room message reaches carol after the direct one would have: every
    # socket receives live messages in id order.
    await alice.send({"type": "send", "room": "general", "body": "later", "client_id": "r1"})
    earlier, _ = await carol.receive_until("message", lambda m: m["client_id"] == "r1")
    assert _answers_and_messages(earlier) == []


async def test_dm_to_self_is_delivered_once(people, connect):
    alice = await connect(people[0])
    await alice.send({"type": "send", "to": "alice", "body": "note", "client_id": "n1"})
    await alice.receive_type("ack")
    message = await alice.receive_type("message")
    assert (message["from"], message["to"]) == ("alice", "alice")
    # A second copy would come before a later message (live messages arrive in id order).
    await alice.send({"type": "send", "room": "general", "body": "later", "client_id": "n2"})
    earlier, _ = await alice.receive_until("message", lambda m: m["client_id"] == "n2")
    assert [frame["type"] for frame in _answers_and_messages(earlier)] == ["ack"]


async def test_dm_to_offline_user_is_stored_for_later(people, connect):
    alice = await connect(people[0])
    await alice.send({"type": "send", "to": "carol", "body": "when you're back", "client_id": "o1"})
    ack = await alice.receive_type("ack")
    carol = await connect(people[2])
    assert carol.hello["direct"] == ["alice"]
    assert carol.hello["last_id"] == ack["id"]
    history = await carol.ask({"type": "history", "with": "alice"})
    assert [m["body"] for m in history["messages"]] == ["when you're back"]


async def test_resent_client_id_gets_the_first_ack_and_no_second_message(people, connect):
    alice, bob = await connect(people[0]), await connect(people[1])
    frame = {"type": "send", "room": "general", "body": "once", "client_id": "retry-1"}
    await alice.send(frame)
    first = await alice.receive_type("ack")
    await alice.receive_type("message")
    await bob.receive_type("message")
    # The retry (even with another body) answers with the first message's ack.
    await alice.send({**frame, "body": "changed"})
    second = await alice.receive_type("ack")
    assert second == first
    # A second message would be published before a later one, and every socket
    # receives live messages in id order.
    await alice.send({"type": "send", "room": "general", "body": "later", "client_id": "retry-2"})
    earlier, _ = await alice.receive_until("message", lambda m: m["client_id"] == "retry-2")
    assert [(f["type"], f["client_id"]) for f in _answers_and_messages(earlier)] == [
        ("ack", "retry-2")
    ]
    earlier, _ = await bob.receive_until("message", lambda m: m["client_id"] == "retry-2")
    assert _answers_and_messages(earlier) == []
    assert await _count(client_id="retry-1") == 1


async def test_same_client_id_from_two_senders_are_two_messages(people, connect):
    alice, bob = await connect(people[0]), await connect(people[1])
    for socket in (alice, bob):
        await socket.send({"type": "send", "room": "general", "body": "hey", "client_id": "same"})
        await socket.receive_type("ack", skip=("presence", "users", "message"))
    assert await _count(client_id="same") == 2


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "send", "room": "nowhere", "body": "x", "client_id": "e1"}, "unknown_room"),
        ({"type": "send", "to": "nobody", "body": "x", "client_id": "e1"}, "unknown_user"),
        ({"type": "send", "room": "general", "body": " \n\t ", "client_id": "e1"}, "empty"),
        ({"type": "send", "room": "general", "body": "x" * 4001, "client_id": "e1"}, "too_long"),
        (
            {"type": "send", "room": "general", "to": "bob", "body": "x", "client_id": "e1"},
            "bad_frame",
        ),
    ],
)
async def test_refused_send_gets_error_with_client_id_and_stores_nothing(
    people, connect, frame, code
):
    alice = await connect(people[0])
    error = await alice.ask(frame, "error")
    assert error["code"] == code and error["client_id"] == "e1" and error["detail"]
    assert await _count() == 0
    # The socket stays open and usable.
    assert await alice.ask({"type": "ping"}, "pong") == {"type": "pong"}


async def test_dm_to_deactivated_user_is_refused(people, connect, make_user):
    carol = people[2]
    carol.is_active = False
    await sync_to_async(carol.save)()
    alice = await connect(people[0])
    error = await alice.ask({"type": "send", "to": "carol", "body": "x", "client_id": "z"}, "error")
    assert error["code"] == "unknown_user"


@pytest.mark.parametrize(
    "text",
    ["not json", "[1, 2]", '"send"', "{}", '{"type": "shout"}', '{"type": 7}', "NaN", "[" * 50000],
)
async def test_bad_frames_get_bad_frame_and_socket_stays_open(people, connect, text):
    alice = await connect(people[0])
    await alice.send_text(text)
    error = await alice.receive_type("error")
    assert error["code"] == "bad_frame" and "client_id" not in error
    assert await alice.ask({"type": "ping"}, "pong") == {"type": "pong"}


async def test_binary_frame_gets_bad_frame(people, connect):
    alice = await connect(people[0])
    await alice.communicator.send_to(bytes_data=b'{"type": "ping"}')
    assert (await alice.receive_type("error"))["code"] == "bad_frame"


async def test_over_the_rate_limit_send_gets_rate_limited(people, connect, settings):
    settings.CHAT_RATE_LIMIT = (3, 60)
    alice, alice_tab2 = await connect(people[0]), await connect(people[0])
    for index in range(3):
        socket = alice if index % 2 == 0 else alice_tab2
        await socket.send(
            {"type": "send", "room": "general", "body": "x", "client_id": f"r{index}"}
        )
        await socket.receive_type("ack", skip=("presence", "users", "message"))
    # The limit is per user: a second tab does not get a fresh allowance.
    await alice_tab2.send({"type": "send", "room": "general", "body": "x", "client_id": "r9"})
    error = await alice_tab2.receive_type("error", skip=("presence", "users", "message"))
    assert error["code"] == "rate_limited" and error["client_id"] == "r9"
    assert 0 < error["retry_after"] <= 60
    assert await _count(client_id="r9") == 0


async def test_rate_limit_off_lets_a_burst_through(people, connect, settings):
    settings.CHAT_RATE_LIMIT = None
    alice = await connect(people[0])
    for index in range(30):
        await alice.send({"type": "send", "room": "general", "body": "x", "client_id": f"b{index}"})
    acks = [
        await alice.receive_type("ack", skip=("presence", "users", "message")) for _ in range(30)
    ]
    assert len({ack["id"] for ack in acks}) == 30
