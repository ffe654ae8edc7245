"""Private rooms: a room with members is listed, readable, searchable and writable only by
them; its messages, typing and files reach nobody else; a membership change reaches open
sockets live.
"""

import re

import pytest
from asgiref.sync import sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse

from chat.models import ModerationAction, Room
from tests.conftest import login_client
from tests.conversation import not_presence, post

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """A storage of this test's own."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
async def people(make_user):
    """alice and bob, members of the private room `secret`, and carol, who is not."""
    alice, bob, carol = [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]
    await members_add("secret", alice, bob)
    return alice, bob, carol


@sync_to_async
def members_add(name: str, *users) -> None:
    """Adds members to a room (creating it), in a transaction, as the admin does."""
    with transaction.atomic():
        room, _ = Room.objects.get_or_create(name=name)
        room.members.add(*users)


@sync_to_async
def members_remove(name: str, *users) -> None:
    """Removes members from a room, in a transaction, as the admin does."""
    with transaction.atomic():
        Room.objects.get(name=name).members.remove(*users)


@sync_to_async
def room_create(name: str) -> None:
    Room.objects.create(name=name)


def rooms_of(hello: dict) -> set:
    """The rooms `hello.unread` has an entry for."""
    return {entry["room"] for entry in hello["unread"] if "room" in entry}


async def error_for(socket, frame: dict) -> dict:
    """Sends a frame that must be refused; returns its `error` (no other answer first)."""
    await socket.send(frame)
    earlier, error = await socket.receive_until("error")
    assert not_presence(earlier) == []
    return error


# --- What a non-member can ask about -----------------------------------------------


async def test_hello_lists_a_private_room_only_to_its_members(people, connect):
    alice, _, carol = people
    member, other = await connect(alice), await connect(carol)
    assert member.hello["rooms"] == ["general", "secret"]
    assert rooms_of(member.hello) == {"general", "secret"}
    assert other.hello["rooms"] == ["general"]
    assert rooms_of(other.hello) == {"general"}


async def test_a_non_member_can_neither_read_nor_find_a_private_room(people, connect):
    alice, _, carol = people
    member = await connect(alice)
    public = await post(member, "plans in the open", "c1", room="general")
    hidden = await post(member, "plans in secret", "c2", room="secret")
    other = await connect(carol)
    assert other.hello["last_id"] == public["id"]

    error = await error_for(other, {"type": "history", "room": "secret"})
    assert error["code"] == "unknown_room"
    error = await error_for(other, {"type": "history", "room": "secret", "around": 1})
    assert error["code"] == "unknown_room"
    synced = await other.ask({"type": "sync", "after": 0})
    assert [m["id"] for m in synced["messages"]] == [public["id"]]
    synced = await other.ask({"type": "sync", "since": 0})
    assert [m["id"] for m in synced["messages"]] == [public["id"]]
    found = await other.ask({"type": "search", "q": "plans"})
    assert [m["id"] for m in found["messages"]] == [public["id"]]
    error = await error_for(other, {"type": "search", "q": "plans", "room": "secret"})
    assert error["code"] == "unknown_room"

    # The member sees all of it.
    history = await member.ask({"type": "history", "room": "secret"})
    assert [m["id"] for m in history["messages"]] == [hidden["id"]]
    found = await member.ask({"type": "search", "q": "plans"})
    assert [m["id"] for m in found["messages"]] == [hidden["id"], public["id"]]
    found = await member.ask({"type": "search", "q": "plans", "room": "secret"})
    assert [m["id"] for m in found["messages"]] == [hidden["id"]]


async def test_a_non_member_can_neither_write_nor_mark_nor_change_anything_there(people, connect):
    alice, _, carol = people
    member = await connect(alice)
    hidden = await post(member, "plans in secret", "c1", room="secret")
    other = await connect(carol)

    send = {"type": "send", "room": "secret", "body": "let me in", "client_id": "k1"}
    error = await error_for(other, send)
    assert (error["code"], error["client_id"]) == ("unknown_room", "k1")
    error = await error_for(other, {"type": "read", "room": "secret", "seq": 1})
    assert error["code"] == "unknown_room"
    error = await error_for(other, {"type": "typing", "room": "secret"})
    assert error["code"] == "unknown_room"
    # As for a room that does not exist (docs/protocol.md, notification levels).
    error = await error_for(other, {"type": "notify", "room": "secret", "level": "all"})
    assert error["code"] == "not_found"
    react = {"type": "react", "id": hidden["id"], "emoji": "👍", "on": True}
    error = await error_for(other, react)
    assert (error["code"], error["id"]) == ("not_found", hidden["id"])

    history = await member.ask({"type": "history", "room": "secret"})
    assert [(m["id"], m["reactions"]) for m in history["messages"]] == [(hidden["id"], [])]


async def test_a_non_member_never_receives_a_private_rooms_live_frames(people, connect):
    alice, bob, carol = people
    sender, member, other = await connect(alice), await connect(bob), await connect(carol)
    await sender.send({"type": "typing", "room": "secret"})
    hidden = await post(sender, "plans in secret", "c1", room="secret")
    public = await post(sender, "plans in the open", "c2", room="general")

    earlier, _ = await other.receive_until("message", lambda m: m["id"] == public["id"])
    assert not_presence(earlier) == []
    earlier, _ = await member.receive_until("message", lambda m: m["id"] == public["id"])
    assert [(f["type"], f.get("id")) for f in not_presence(earlier)] == [
        ("typing", None),
        ("message", hidden["id"]),
    ]


async def test_a_file_in_a_private_room_is_for_its_members_only(people, connect):
    alice, bob, carol = people
    sender, member, other = await connect(alice), await connect(bob), await connect(carol)
    answer = await sync_to_async(sender.client.post)(
        reverse("upload"), {"file": SimpleUploadedFile("plan.txt", b"the secret plan")}
    )
    assert answer.status_code == 201, answer.content
    key = answer.json()["id"]
    await sender.send(
        {"type": "send", "room": "secret", "body": "", "client_id": "f1", "attachments": [key]}
    )
    await sender.receive_until("ack", lambda a: a["client_id"] == "f1")

    url = reverse("upload-file", args=[key])
    response = await sync_to_async(member.client.get)(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"the secret plan"
    assert (await sync_to_async(other.client.get)(url)).status_code == 404


# --- Membership changes, live ------------------------------------------------------


async def test_a_removed_member_leaves_the_room_at_once(people, connect):
    alice, bob, _ = people
    sender, member = await connect(alice), await connect(bob)
    assert "secret" in member.hello["rooms"]

    await members_remove("secret", bob)
    _, rooms = await member.receive_until("rooms")
    assert rooms["rooms"] == ["general"]
    hidden = await post(sender, "now without bob", "c1", room="secret")
    public = await post(sender, "hello all", "c2", room="general")
    earlier, _ = await member.receive_until("message", lambda m: m["id"] == public["id"])
    assert not_presence(earlier) == []
    error = await error_for(member, {"type": "history", "room": "secret"})
    assert error["code"] == "unknown_room"
    synced = await member.ask({"type": "sync", "after": 0})
    assert hidden["id"] not in [m["id"] for m in synced["messages"]]


async def test_an_added_member_joins_the_room_live(people, connect):
    alice, _, carol = people
    sender, newcomer = await connect(alice), await connect(carol)

    await members_add("secret", carol)
    _, rooms = await newcomer.receive_until("rooms")
    assert rooms["rooms"] == ["general", "secret"]
    hidden = await post(sender, "welcome, carol", "c1", room="secret")
    _, frame = await newcomer.receive_until("message")
    assert frame["id"] == hidden["id"]


async def test_making_a_room_private_takes_it_from_everyone_else(make_user, connect):
    alice, carol = [await sync_to_async(make_user)(name) for name in ("alice", "carol")]
    await room_create("plans")
    member, other = await connect(alice), await connect(carol)
    assert other.hello["rooms"] == ["general", "plans"]

    await members_add("plans", alice)
    _, rooms = await other.receive_until("rooms")
    assert rooms["rooms"] == ["general"]
    _, rooms = await member.receive_until("rooms")
    assert rooms["rooms"] == ["general", "plans"]
    await post(member, "only mine now", "c1", room="plans")
    public = await post(member, "hello all", "c2", room="general")
    earlier, _ = await other.receive_until("message", lambda m: m["id"] == public["id"])
    assert not_presence(earlier) == []


# --- The admin ------------------------------------------------------------------------


def test_staff_make_a_room_private_in_the_admin_and_each_change_is_recorded(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    staff = login_client(make_user("root", is_staff=True, is_superuser=True))
    response = staff.post("/admin/chat/room/add/", {"name": "plans", "members": [alice.pk, bob.pk]})
    assert response.status_code == 302
    room = Room.objects.get(name="plans")
    assert set(room.members.all()) == {alice, bob}
    response = staff.post(
        f"/admin/chat/room/{room.pk}/change/", {"name": "plans", "members": [alice.pk]}
    )
    assert response.status_code == 302
    assert list(room.members.all()) == [alice]

    records = ModerationAction.objects.filter(kind=ModerationAction.Kind.MEMBERS).order_by(
        "at", "pk"
    )
    assert [(r.actor_name, r.room_id, r.detail) for r in records] == [
        ("root", room.pk, "added: alice, bob"),
        ("root", room.pk, "removed: bob"),
    ]
    listing = staff.get("/admin/chat/room/").content.decode()
    private = dict(
        re.findall(
            r'>(\w+)</a></th><td class="field-private"><img src="[^"]*icon-(yes|no)', listing
        )
    )
    assert private == {"general": "no", "plans": "yes"}


def test_the_admin_refuses_to_take_a_private_rooms_last_member(make_user):
    alice = make_user("alice")
    staff = login_client(make_user("root", is_staff=True, is_superuser=True))
    room = Room.objects.create(name="plans")
    room.members.add(alice)
    response = staff.post(f"/admin/chat/room/{room.pk}/change/", {"name": "plans"})
    # The form comes back with the reason; the room stays private to alice.
    assert response.status_code == 200
    assert "keeps at least one member" in response.content.decode()
    assert list(room.members.all()) == [alice]
    # An open room stays open when saved without members.
    response = staff.post(
        f"/admin/chat/room/{Room.objects.get(name='general').pk}/change/", {"name": "general"}
    )
    assert response.status_code == 302
