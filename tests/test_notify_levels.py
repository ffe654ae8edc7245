"""Notification levels through the socket: `notify` stores how much a conversation
notifies me, tells all my sockets (and nobody else), and `hello.levels` brings the
levels that differ from the default back after a reconnect.
"""

import pytest
from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction

from chat.models import NotificationLevel, Room
from chat.protocol import Notify, ProtocolError, parse_client_frame
from tests.conversation import not_presence, post

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
async def people(make_user):
    """Three users: alice, bob and carol."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]


@sync_to_async
def _stored_levels(user) -> list[tuple[str | None, str | None, str]]:
    """The rows kept for `user`: (room name, peer name, level)."""
    return sorted(
        NotificationLevel.objects.filter(user=user).values_list(
            "room__name", "peer__username", "level"
        ),
        key=str,
    )


async def test_a_new_user_has_no_levels_but_the_default(people, connect):
    bob = await connect(people[1])
    assert bob.hello["levels"] == []


async def test_notify_reaches_all_my_sockets_and_not_another_user(people, connect):
    alice, carol = await connect(people[0]), await connect(people[2])
    bob, bob_tab2 = await connect(people[1]), await connect(people[1])

    await bob.send({"type": "notify", "room": "general", "level": "none"})
    for socket in (bob, bob_tab2):
        _, frame = await socket.receive_until("notify")
        assert frame == {"type": "notify", "room": "general", "level": "none"}

    # A notify frame for carol would reach her before this later message.
    marker = await post(alice, "after the level", "m1", room="general")
    earlier, _ = await carol.receive_until("message", lambda m: m["id"] == marker["id"])
    assert not_presence(earlier) == []
    assert await _stored_levels(people[1]) == [("general", None, "none")]
    assert await _stored_levels(people[2]) == []


async def test_levels_come_back_in_hello_after_a_reconnect(people, connect):
    await sync_to_async(Room.objects.create)(name="random")
    bob = await connect(people[1])
    await bob.ask({"type": "notify", "with": "alice", "level": "all"})
    await bob.ask({"type": "notify", "room": "random", "level": "all"})
    await bob.ask({"type": "notify", "room": "general", "level": "none"})
    await bob.ask({"type": "notify", "with": "bob", "level": "none"})
    await bob.close()

    again = await connect(people[1])
    # Rooms by name, then people by name.
    assert again.hello["levels"] == [
        {"room": "general", "level": "none"},
        {"room": "random", "level": "all"},
        {"with": "alice", "level": "all"},
        {"with": "bob", "level": "none"},
    ]
    # Nobody else's hello carries them.
    alice = await connect(people[0])
    assert alice.hello["levels"] == []


async def test_changing_a_level_replaces_it_and_the_default_is_not_stored(people, connect):
    bob = await connect(people[1])
    await bob.ask({"type": "notify", "with": "alice", "level": "none"})
    answer = await bob.ask({"type": "notify", "with": "alice", "level": "all"})
    assert answer == {"type": "notify", "with": "alice", "level": "all"}
    assert await _stored_levels(people[1]) == [(None, "alice", "all")]

    answer = await bob.ask({"type": "notify", "with": "alice", "level": "mentions"})
    assert answer == {"type": "notify", "with": "alice", "level": "mentions"}
    assert await _stored_levels(people[1]) == []
    await bob.close()
    assert (await connect(people[1])).hello["levels"] == []


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "notify", "room": "general", "level": "loud"},
        {"type": "notify", "room": "general", "level": None},
        {"type": "notify", "room": "general", "level": 1},
        {"type": "notify", "room": "general"},
        {"type": "notify", "room": "general", "with": "alice", "level": "all"},
        {"type": "notify", "level": "all"},
        {"type": "notify", "room": 5, "level": "all"},
    ],
)
async def test_a_bad_notify_frame_is_refused_and_stores_nothing(people, connect, frame):
    bob = await connect(people[1])
    error = await bob.ask(frame, "error")
    assert error["code"] == "bad_frame"
    assert await _stored_levels(people[1]) == []


@pytest.mark.parametrize(
    ("target", "named"),
    [({"room": "nowhere"}, "no room named 'nowhere'"), ({"with": "nobody"}, "no user named")],
)
async def test_an_unknown_room_or_user_is_not_found(people, connect, target, named):
    bob = await connect(people[1])
    error = await bob.ask({"type": "notify", **target, "level": "none"}, "error")
    assert error["code"] == "not_found"
    assert named in error["detail"]
    assert await _stored_levels(people[1]) == []


async def test_a_level_follows_its_room_when_renamed(people, connect):
    bob = await connect(people[1])
    await bob.ask({"type": "notify", "room": "general", "level": "none"})
    await sync_to_async(Room.objects.filter(name="general").update)(name="lobby")
    await bob.close()
    again = await connect(people[1])
    assert again.hello["levels"] == [{"room": "lobby", "level": "none"}]


@sync_to_async
def _insert(**fields) -> None:
    with transaction.atomic():
        NotificationLevel.objects.create(**fields)


async def test_the_table_takes_one_level_per_conversation_and_one_conversation_per_row(people):
    alice, bob = people[0], people[1]
    general = await sync_to_async(Room.objects.get)(name="general")
    await _insert(user=bob, room=general, level="none")
    with pytest.raises(IntegrityError):
        await _insert(user=bob, room=general, level="all")
    with pytest.raises(IntegrityError):
        await _insert(user=bob, room=general, peer=alice, level="all")
    with pytest.raises(IntegrityError):
        await _insert(user=bob, level="all")
    with pytest.raises(IntegrityError):
        await _insert(user=bob, peer=alice, level="loud")


def test_notify_frames_parse_to_their_conversation_and_level():
    assert parse_client_frame('{"type":"notify","room":"general","level":"none"}') == Notify(
        room="general", with_=None, level="none"
    )
    assert parse_client_frame('{"type":"notify","with":"alice","level":"all"}') == Notify(
        room=None, with_="alice", level="all"
    )
    with pytest.raises(ProtocolError):
        parse_client_frame('{"type":"notify","with":"alice","level":"ALL"}')
