"""One sender's bad send fails no one else's: text no database can store, and the sends
of an account that ended, amid many concurrent sends from other people's sockets.
"""

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection

from chat.models import Message, ReadPosition

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CONCURRENT = 20
SESSION_ENDED = 4001
# Frames about who is online arrive at any time; they are not what these tests watch.
ONLINE_FRAMES = ("presence", "users")


async def open_sockets(make_user, connect, names: list[str]) -> list:
    """Creates a user for each name and opens a socket for each (hello already read)."""
    return [await connect(await sync_to_async(make_user)(name)) for name in names]


def send_frame(client_id: str, body: str | None = None) -> dict:
    """A `send` to general."""
    return {"type": "send", "room": "general", "body": body or client_id, "client_id": client_id}


async def read_until(socket, done, frames: list[dict], timeout: float = 20) -> list[dict]:
    """Appends the socket's frames (online lists aside) to `frames` until `done(frames)`."""
    while not done(frames):
        frame = await socket.receive(timeout)
        if frame["type"] not in ONLINE_FRAMES:
            frames.append(frame)
    return frames


def has(kind: str, client_id: str):
    """A `done` for read_until: a frame of `kind` about `client_id` has come."""
    return lambda frames: any(f["type"] == kind and f.get("client_id") == client_id for f in frames)


def message_ids(frames: list[dict]) -> list[str]:
    """The client_ids of the `message` frames, in arrival order."""
    return [f["client_id"] for f in frames if f["type"] == "message"]


async def everyone_sees_exactly(sockets, seen: list[list[dict]], expected: set[str]) -> None:
    """Sends a last message and checks that each socket got every expected message once.

    The last message is published after all the others, so once a socket has it,
    anything else (a refused message, a repeat) would have arrived before it.
    """
    await sockets[0].send(send_frame("last"))
    for socket, frames in zip(sockets, seen, strict=True):
        await read_until(socket, has("message", "last"), frames)
        arrived = message_ids(frames)
        assert sorted(arrived) == sorted(expected | {"last"}), arrived


async def stored_in_general() -> list[tuple[str, str, int]]:
    rows = Message.objects.filter(room__name="general").order_by("seq")
    return await sync_to_async(list)(rows.values_list("sender__username", "client_id", "seq"))


async def close_code(socket, timeout: float = 20) -> int:
    """Reads a socket's frames until it is closed; returns the close code.

    The frames on the way must not answer its own sends (no `ack`, no `error`).
    """
    while True:
        output = await socket.communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            return output.get("code")
        frame = json.loads(output["text"])
        assert frame["type"] not in ("ack", "error"), frame


@pytest.mark.parametrize("escape", ["\\ud800", "\\u0000"], ids=["lone-surrogate", "nul"])
async def test_unstorable_text_amid_20_concurrent_sends_is_refused_alone(
    make_user, connect, settings, escape
):
    settings.CHAT_RATE_LIMIT = None
    sockets = await open_sockets(make_user, connect, [f"user{n:02}" for n in range(CONCURRENT)])
    (mallory,) = await open_sockets(make_user, connect, ["mallory"])
    good = [send_frame(f"good-{n:02}") for n in range(CONCURRENT)]
    # The escape as a client writes it in JSON: it decodes to a character no database
    # stores. The bad send goes out in the middle of everyone else's.
    bad = '{"type": "send", "room": "general", "body": "hi ' + escape + '", "client_id": "bad-1"}'
    half = CONCURRENT // 2
    await asyncio.gather(
        *(socket.send(frame) for socket, frame in zip(sockets[:half], good[:half], strict=True)),
        mallory.send_text(bad),
        *(socket.send(frame) for socket, frame in zip(sockets[half:], good[half:], strict=True)),
    )

    seen = [[] for _ in sockets]
    for socket, frames, frame in zip(sockets, seen, good, strict=True):
        await read_until(socket, has("ack", frame["client_id"]), frames)
    refused = await read_until(mallory, has("error", "bad-1"), [])
    [error] = [f for f in refused if f["type"] == "error"]
    assert (error["code"], error["client_id"]) == ("bad_frame", "bad-1")
    assert not [f for f in refused if f["type"] == "ack"]

    # Everyone, mallory too, gets each of the twenty messages once, and no other.
    good_ids = {frame["client_id"] for frame in good}
    await everyone_sees_exactly([*sockets, mallory], [*seen, refused], good_ids)
    stored = await stored_in_general()
    assert sorted(client_id for _, client_id, _ in stored) == sorted(good_ids | {"last"})
    assert "mallory" not in {sender for sender, _, _ in stored}
    assert [seq for _, _, seq in stored] == list(range(1, CONCURRENT + 2))


@pytest.mark.parametrize("escape", ["\\ud800", "\\u0000"], ids=["lone-surrogate", "nul"])
async def test_unstorable_text_in_room_to_or_history_gets_bad_frame_and_the_socket_stays_open(
    make_user, connect, escape
):
    (alice,) = await open_sockets(make_user, connect, ["alice"])
    frames = [
        '{"type": "send", "room": "gen' + escape + '", "body": "hi", "client_id": "r1"}',
        '{"type": "send", "to": "alice' + escape + '", "body": "hi", "client_id": "t1"}',
        '{"type": "history", "room": "general' + escape + '"}',
        '{"type": "history", "with": "' + escape + 'alice"}',
    ]
    for text in frames:
        await alice.send_text(text)
    answers = [await alice.receive_type("error") for _ in frames]
    assert [(a["code"], a.get("client_id")) for a in answers] == [
        ("bad_frame", "r1"),
        ("bad_frame", "t1"),
        ("bad_frame", None),
        ("bad_frame", None),
    ]
    # The socket is open and still works.
    assert (await alice.ask(send_frame("after"), "ack"))["client_id"] == "after"
    await alice.send({"type": "ping"})
    assert await alice.receive_type("pong", skip=(*ONLINE_FRAMES, "message")) == {"type": "pong"}


def end_accounts_elsewhere(*, deleted: int, deactivated: int) -> None:
    """Deletes one user and deactivates another, as another process would.

    Straight in the database, without this process's signals: the close that the
    other process publishes has not reached these sockets yet when they send.
    """
    users = get_user_model()
    users.objects.filter(pk=deactivated).update(is_active=False)  # update() sends no signal
    with connection.cursor() as cursor:
        # The rows that point at the user go first, as the ORM's cascade would do.
        cursor.execute(f"DELETE FROM {ReadPosition._meta.db_table} WHERE user_id = %s", [deleted])
        cursor.execute(f"DELETE FROM {users._meta.db_table} WHERE id = %s", [deleted])


async def test_sends_of_a_deleted_and_a_deactivated_account_store_nothing_and_fail_no_one_else(
    make_user, connect, settings
):
    settings.CHAT_RATE_LIMIT = None
    bystanders = await open_sockets(make_user, connect, [f"user{n:02}" for n in range(10)])
    gone, idle = await open_sockets(make_user, connect, ["gone", "idle"])
    await sync_to_async(end_accounts_elsewhere)(
        deleted=(await sync_to_async(get_user_model().objects.get)(username="gone")).pk,
        deactivated=(await sync_to_async(get_user_model().objects.get)(username="idle")).pk,
    )
    good = [send_frame(f"good-{n:02}") for n in range(len(bystanders))]
    await asyncio.gather(
        *(socket.send(frame) for socket, frame in zip(bystanders[:5], good[:5], strict=True)),
        gone.send(send_frame("gone-1")),
        idle.send(send_frame("idle-1")),
        *(socket.send(frame) for socket, frame in zip(bystanders[5:], good[5:], strict=True)),
    )

    seen = [[] for _ in bystanders]
    for socket, frames, frame in zip(bystanders, seen, good, strict=True):
        await read_until(socket, has("ack", frame["client_id"]), frames)
    # The ended accounts' sockets end as a logout's do: 4001, do not reconnect.
    assert await close_code(gone) == SESSION_ENDED
    assert await close_code(idle) == SESSION_ENDED

    good_ids = {frame["client_id"] for frame in good}
    await everyone_sees_exactly(bystanders, seen, good_ids)
    stored = await stored_in_general()
    assert sorted(client_id for _, client_id, _ in stored) == sorted(good_ids | {"last"})
    assert [seq for _, _, seq in stored] == list(range(1, len(good) + 2))
    idle_messages = Message.objects.filter(sender__username="idle")
    assert not await sync_to_async(idle_messages.exists)()
