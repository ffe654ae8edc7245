"""Hostile clients on /ws/chat/: a flood from many sockets, arbitrary frames, and what
the logs keep of it all. Every abuse gets a bounded answer and the socket stays open.
"""

import asyncio
import json
import logging
import re

import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from chat.models import Message, Room
from tests.conftest import login_client

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

# The contract's vocabulary (docs/protocol.md), written out rather than imported from
# chat.protocol: these tests check the implementation against the contract.
CLIENT_TYPES = ["send", "history", "sync", "users", "ping"]
ANSWER_TO = {"send": "ack", "history": "history", "sync": "sync", "users": "users", "ping": "pong"}
ERROR_CODES = {
    "bad_frame",
    "empty",
    "too_long",
    "unknown_user",
    "unknown_room",
    "rate_limited",
    "unavailable",
}
# Frames a socket may receive at any time, not as an answer to what it sent.
UNSOLICITED = {"message", "presence", "users", "rooms"}


@pytest.fixture
async def people(make_user):
    """Two users: alice and bob."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob")]


async def _messages(**filters) -> list[Message]:
    query = Message.objects.filter(**filters).select_related("room").order_by("id")
    return await sync_to_async(list)(query)


async def _count() -> int:
    return await sync_to_async(Message.objects.count)()


async def answers(socket, expected: int, timeout: float = 10) -> list[dict]:
    """Reads frames until `expected` answers (`ack` or `error`) came; skips broadcasts."""
    got = []
    while len(got) < expected:
        frame = await socket.receive(timeout)
        if frame["type"] in ("ack", "error"):
            got.append(frame)
        else:
            assert frame["type"] in UNSOLICITED, frame
    return got


# --- Flood ---------------------------------------------------------------------


async def test_flood_from_three_sockets_stores_exactly_the_limit_and_refuses_the_rest(
    people, connect, settings
):
    limit, per_socket = 5, 40
    settings.CHAT_RATE_LIMIT = (limit, 60)
    alice_user, bob_user = people
    client = await sync_to_async(login_client)(alice_user)
    tabs = [await connect(client=client) for _ in range(3)]

    # Every tab fires its whole burst at once, without waiting for answers.
    frames = [
        [
            {"type": "send", "room": "general", "body": f"flood {t}-{n}", "client_id": f"f{t}-{n}"}
            for n in range(per_socket)
        ]
        for t in range(len(tabs))
    ]
    await asyncio.gather(
        *(tab.send(frame) for tab, burst in zip(tabs, frames, strict=True) for frame in burst)
    )
    replies = [await answers(tab, per_socket) for tab in tabs]

    acks = [r for tab in replies for r in tab if r["type"] == "ack"]
    refusals = [r for tab in replies for r in tab if r["type"] == "error"]
    assert len(acks) == limit
    assert len(refusals) == len(tabs) * per_socket - limit
    for refusal in refusals:
        assert refusal["code"] == "rate_limited"
        assert refusal["client_id"].startswith("f")
        assert 0 < refusal["retry_after"] <= 60
    # Each socket got one answer per frame, for its own frames.
    for burst, tab_replies in zip(frames, replies, strict=True):
        assert sorted(r["client_id"] for r in tab_replies) == sorted(f["client_id"] for f in burst)

    # Exactly the acknowledged messages are stored, whole, with seq 1..limit and no gaps.
    stored = await _messages()
    assert sorted(m.client_id for m in stored) == sorted(a["client_id"] for a in acks)
    assert [m.seq for m in stored] == list(range(1, limit + 1))
    for message in stored:
        assert message.body == "flood " + message.client_id[1:]
        assert message.room.name == "general" and message.sender_id == alice_user.pk
    general = await sync_to_async(Room.objects.get)(name="general")
    assert general.last_seq == limit

    # The sockets stay open and usable; the limit is alice's, not bob's.
    for tab in tabs:
        # The stored messages' own frames may still be on their way (acks go first).
        await tab.send({"type": "ping"})
        assert await tab.receive_type("pong", skip=tuple(UNSOLICITED)) == {"type": "pong"}
    bob = await connect(bob_user)
    await bob.send({"type": "send", "room": "general", "body": "still works", "client_id": "b1"})
    # Sends are stored in the order they arrive: bob's seq shows that no refused
    # send of the flood was stored before his, so nothing is left to wait for.
    assert (await bob.receive_type("ack", skip=tuple(UNSOLICITED)))["seq"] == limit + 1
    assert await _count() == limit + 1


# --- Arbitrary frames (property-based) ---------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=8,
)
# Values that sit on or next to the contract's edges.
edge_values = st.sampled_from(
    [
        "general",
        "no-such-room",
        "alice",
        "bob",
        "nobody",
        "",
        " ",
        "k1",
        "a" * 64,
        "a" * 65,
        "bad id!",
        "x" * 4000,
        "x" * 4001,
        " \n\t ",
        "<img src=x onerror=alert(1)>",
        0,
        -1,
        1,
        50,
        100,
        101,
        2**63 - 1,
        2**63,
        1.5,
        True,
        False,
        None,
        [],
        {},
    ]
)
field_values = edge_values | json_values
frame_shaped = st.fixed_dictionaries(
    {"type": st.sampled_from([*CLIENT_TYPES, "shout", "", "SEND"]) | json_values},
    optional={
        key: field_values
        for key in ("room", "to", "with", "body", "client_id", "before", "after", "limit")
    },
)
# Valid frames of every type, so that storing and reading are exercised too.
client_ids = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
cursors = st.integers(min_value=0, max_value=2**63 - 1)
valid_frames = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("send"),
            "body": st.text(min_size=1, max_size=200),
            "client_id": client_ids,
        },
    ).flatmap(lambda send: st.sampled_from([{**send, "room": "general"}, {**send, "to": "bob"}])),
    st.fixed_dictionaries(
        {"type": st.just("history"), "room": st.just("general")},
        optional={"before": cursors, "limit": st.integers(1, 100)},
    ),
    st.fixed_dictionaries(
        {"type": st.just("history"), "with": st.just("bob")},
        optional={"after": cursors, "limit": st.integers(1, 100)},
    ),
    st.fixed_dictionaries({"type": st.just("sync"), "after": cursors}),
    st.just({"type": "users"}),
    st.just({"type": "ping"}),
)
FIELDS = ["type", "room", "to", "with", "body", "client_id", "before", "after", "limit"]


@st.composite
def mutated_frames(draw) -> dict:
    """A valid frame with one or two fields removed or given a random value."""
    frame = dict(draw(valid_frames))
    for key in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=2, unique=True)):
        if key in frame and draw(st.booleans()):
            del frame[key]
        else:
            frame[key] = draw(field_values)
    return frame


PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
async def fuzz_socket(people, connect, settings):
    """Alice's one socket for every example of a test, with the rate limit off."""
    settings.CHAT_RATE_LIMIT = None
    socket = await connect(people[0])
    # Nothing but news of who is online may be waiting before the examples start.
    await socket.send({"type": "ping"})
    earlier, _ = await socket.receive_until("pong")
    assert {frame["type"] for frame in earlier} <= {"presence", "users"}
    return socket


async def check_one_answer(socket, text: str, frame=None) -> None:
    """Sends `text` and checks the contract: one valid answer; stored only if a valid send."""
    before = await _count()
    # Straight to the application: the test client's send_to refuses an empty text frame.
    await socket.communicator.send_input({"type": "websocket.receive", "text": text})
    # A ping after the frame: everything before its pong answers the frame.
    await socket.send_text('{"type": "ping"}')
    pongs = 2 if isinstance(frame, dict) and frame.get("type") == "ping" else 1
    replies = []
    while pongs:
        output = await socket.communicator.receive_output(timeout=5)
        assert output["type"] == "websocket.send", f"socket closed: {output}"
        reply = json.loads(output["text"])
        assert isinstance(reply, dict) and isinstance(reply.get("type"), str), reply
        pongs -= reply == {"type": "pong"}
        if reply["type"] == "error":
            pongs = min(pongs, 1)  # the frame was refused: only the marker's pong is to come
        if reply["type"] not in ("message", "presence"):  # broadcasts are not answers
            replies.append(reply)
    replies.pop()  # the marker pong
    assert len(replies) == 1, f"{text[:200]!r} got {replies}"
    [reply] = replies
    kind = frame.get("type") if isinstance(frame, dict) else None
    if reply["type"] == "error":
        assert reply["code"] in ERROR_CODES, reply
        assert isinstance(reply["detail"], str) and reply["detail"]
        # "client_id when the frame had one": a refused send names it, nothing else does.
        sent_id = frame.get("client_id") if kind == "send" else None
        if isinstance(sent_id, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", sent_id):
            assert reply.get("client_id") == sent_id, (frame, reply)
        elif "client_id" in reply:
            assert reply["client_id"] == frame.get("client_id")
        if kind not in CLIENT_TYPES:
            assert reply["code"] == "bad_frame"
    else:
        assert kind in CLIENT_TYPES and reply["type"] == ANSWER_TO[kind], (frame, reply)
    # Nothing is stored unless the frame was a valid send, and then at most one message.
    after = await _count()
    if reply["type"] == "ack":
        assert after - before in (0, 1)  # 0: a resent client_id
        if after > before:
            [stored] = await _messages(id=reply["id"])
            assert stored.body == frame["body"].strip()
            assert stored.client_id == frame["client_id"]
    else:
        assert after == before, (frame, reply)


@PROPERTY_SETTINGS
@given(text=st.text(max_size=300))
async def test_arbitrary_text_gets_one_answer_and_stores_nothing(fuzz_socket, text):
    try:
        frame = json.loads(text)
    except ValueError:
        frame = None
    await check_one_answer(fuzz_socket, text, frame)


@PROPERTY_SETTINGS
@given(frame=json_values)
async def test_arbitrary_json_gets_one_answer_from_the_contract(fuzz_socket, frame):
    await check_one_answer(fuzz_socket, json.dumps(frame), frame)


@PROPERTY_SETTINGS
@given(frame=mutated_frames() | frame_shaped | valid_frames)
async def test_frame_shaped_objects_with_random_fields_get_one_answer_and_store_only_valid_sends(
    fuzz_socket, frame
):
    await check_one_answer(fuzz_socket, json.dumps(frame), frame)


# --- Logs -------------------------------------------------------------------------


async def test_logs_record_connects_and_refusals_but_never_a_body(
    people, connect, settings, caplog
):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    settings.CHAT_RATE_LIMIT = (4, 60)  # the unknown room counts; the too-long body does not
    secret = "s3cr3t-body-7f1d"
    alice, bob = await connect(people[0]), await connect(people[1])
    sends = [
        {"type": "send", "room": "general", "body": f"room {secret}", "client_id": "l1"},
        {"type": "send", "to": "bob", "body": f"dm {secret}", "client_id": "l2"},
        {"type": "send", "room": "nowhere", "body": f"lost {secret}", "client_id": "l3"},
        {"type": "send", "room": "general", "body": secret * 300, "client_id": "l4"},
        {"type": "send", "room": "general", "body": f"third {secret}", "client_id": "l5"},
        {"type": "send", "room": "general", "body": f"over the limit {secret}", "client_id": "l6"},
    ]
    for frame in sends:
        await alice.send(frame)
    codes = [r.get("code", r["type"]) for r in await answers(alice, len(sends))]
    assert codes == ["ack", "ack", "unknown_room", "too_long", "ack", "rate_limited"]
    await alice.send_text(f"not json {secret}")
    await alice.receive_type("error", skip=tuple(UNSOLICITED))
    # Her own room messages may still be on their way (acks go before the publish).
    await alice.send({"type": "history", "room": "general"})
    history = await alice.receive_type("history", skip=tuple(UNSOLICITED))
    assert secret in json.dumps(history)  # bodies did travel ...
    await bob.receive_type("message", skip=tuple(UNSOLICITED))
    await alice.close()  # returns once the server has run its disconnect

    logged = "\n".join(
        [r.getMessage() for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    )
    assert secret not in logged  # ... but never into the logs
    assert "socket opened: user=alice" in logged
    assert "rate limited: user=alice" in logged
    assert "socket closed: user=alice" in logged
