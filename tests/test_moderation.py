"""Moderation by staff through the socket and the admin: mutes (everywhere or in one room,
lifted with 0 minutes, held on every process), deactivation closing every socket, staff
deletions, and the record of each action.
"""

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.utils import timezone
from pytest_redis import factories

from chat.messaging.store import message_store_many
from chat.models import ModerationAction, Mute, Room
from chat.moderation import mute_check_many
from chat.protocol import Send
from tests.conftest import login_client, redis_url_of
from tests.conversation import post, revision
from tests.server import Browser, ChatClient, ServerProcess
from tests.test_admin import staff_browser

SESSION_ENDED = 4001

moderation_redis = factories.redis_proc(port=None)


def _until(frame: dict) -> datetime:
    return datetime.fromisoformat(frame["until"].replace("Z", "+00:00"))


def _send(body: str, client_id: str, **target) -> dict:
    return {"type": "send", **target, "body": body, "client_id": client_id}


async def _ask(socket, frame: dict, kind: str | None = None) -> dict:
    """Sends a frame and returns the next frame of type `kind`, whatever came before it."""
    await socket.send(frame)
    _, answer = await socket.receive_until(kind or frame["type"])
    return answer


@sync_to_async
def _actions() -> list[tuple[str, str, str, str]]:
    """The moderation record, oldest first: (kind, actor, target, room)."""
    return [
        (a.kind, a.actor_name, a.target_name, a.room.name if a.room else "")
        for a in ModerationAction.objects.select_related("room").order_by("at", "id")
    ]


# --- Mutes through the socket -------------------------------------------------------

socket_tests = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
async def people(make_user):
    """A staff member (root) and two users (bob, carol)."""
    root = await sync_to_async(make_user)("root", is_staff=True)
    return root, *[await sync_to_async(make_user)(name) for name in ("bob", "carol")]


@socket_tests
async def test_a_non_staff_mute_is_forbidden_and_mutes_nobody(people, connect):
    _, _, carol = people
    socket = await connect(carol)
    error = await _ask(socket, {"type": "mute", "user": "bob", "minutes": 10}, "error")
    assert error["code"] == "forbidden"
    assert await sync_to_async(Mute.objects.count)() == 0
    assert await _actions() == []


@socket_tests
@pytest.mark.parametrize("minutes", [-1, 43201, "10", None, True])
async def test_a_mute_of_the_wrong_length_is_a_bad_frame(people, connect, minutes):
    root = await connect(people[0])
    error = await _ask(root, {"type": "mute", "user": "bob", "minutes": minutes}, "error")
    assert error["code"] == "bad_frame"


@socket_tests
async def test_a_user_muted_everywhere_can_neither_send_edit_nor_react(people, connect):
    root, bob = await connect(people[0]), await connect(people[1])
    before = await post(bob, "said before the mute", "b0", room="general")

    answer = await _ask(root, {"type": "mute", "user": "bob", "minutes": 10})
    assert (answer["user"], answer["room"]) == ("bob", None)
    until = _until(answer)
    assert timedelta(minutes=9) < until - timezone.now() <= timedelta(minutes=10)

    refusals = []
    for frame in (
        _send("hello?", "b1", room="general"),
        _send("psst", "b2", to="carol"),
        {"type": "edit", "id": before["id"], "body": "changed"},
        {"type": "react", "id": before["id"], "emoji": "👍", "on": True},
    ):
        refusals.append(await _ask(bob, frame, "error"))
    assert [(e["code"], e["until"]) for e in refusals] == [("muted", answer["until"])] * 4
    assert [e.get("client_id") for e in refusals[:2]] == ["b1", "b2"]
    assert [e.get("id") for e in refusals[2:]] == [before["id"]] * 2
    # Nothing of it was stored: the message is as it was, and nothing new was sent.
    history = await _ask(bob, {"type": "history", "room": "general"})
    assert [(m["body"], m["reactions"]) for m in history["messages"]] == [
        ("said before the mute", [])
    ]
    # bob may still delete his own message.
    await bob.send({"type": "delete", "id": before["id"]})
    assert (await revision(bob, before["id"], above=before["rev"]))["deleted"] is True
    assert await _actions() == [("mute", "root", "bob", "")]


@socket_tests
async def test_a_room_mute_keeps_the_user_out_of_that_room_only(people, connect):
    await sync_to_async(Room.objects.create)(name="random")
    root, bob = await connect(people[0]), await connect(people[1])
    answer = await _ask(root, {"type": "mute", "user": "bob", "minutes": 60, "room": "random"})
    assert answer["room"] == "random"

    refused = await _ask(bob, _send("hi random", "r1", room="random"), "error")
    assert (refused["code"], refused["client_id"]) == ("muted", "r1")
    assert await post(bob, "hi general", "g1", room="general")
    assert await post(bob, "hi carol", "d1", to="carol")
    assert await _actions() == [("mute", "root", "bob", "random")]


@socket_tests
async def test_zero_minutes_lifts_the_mute(people, connect):
    root, bob = await connect(people[0]), await connect(people[1])
    await _ask(root, {"type": "mute", "user": "bob", "minutes": 10})
    assert (await _ask(bob, _send("one", "m1", room="general"), "error"))["code"] == "muted"

    lifted = await _ask(root, {"type": "mute", "user": "bob", "minutes": 0})
    assert (lifted["user"], lifted["until"]) == ("bob", None)
    assert (await post(bob, "two", "m2", room="general"))["body"] == "two"
    assert await _actions() == [("mute", "root", "bob", ""), ("unmute", "root", "bob", "")]


@socket_tests
async def test_a_mute_that_has_run_out_no_longer_holds(people, connect):
    root, bob = await connect(people[0]), await connect(people[1])
    await _ask(root, {"type": "mute", "user": "bob", "minutes": 10})
    await sync_to_async(Mute.objects.update)(until=timezone.now() - timedelta(seconds=1))
    assert (await post(bob, "free again", "f1", room="general"))["body"] == "free again"


@socket_tests
async def test_muting_an_unknown_user_or_room_is_refused(people, connect):
    root = await connect(people[0])
    nobody = await _ask(root, {"type": "mute", "user": "nobody", "minutes": 5}, "error")
    noroom = await _ask(
        root, {"type": "mute", "user": "bob", "minutes": 5, "room": "nope"}, "error"
    )
    assert (nobody["code"], noroom["code"]) == ("unknown_user", "unknown_room")


@pytest.mark.django_db
def test_a_batch_of_sends_reads_every_mute_in_one_query(make_user, django_assert_num_queries):
    root, bob, carol = make_user("root", is_staff=True), make_user("bob"), make_user("carol")
    random = Room.objects.create(name="random")
    general = Room.objects.get(name="general")
    soon, later = (timezone.now() + timedelta(minutes=m) for m in (10, 60))
    Mute.objects.create(user=bob, room=None, until=soon, by=root)
    Mute.objects.create(user=bob, room=random, until=later, by=root)
    places = {(bob.pk, general.pk), (bob.pk, random.pk), (bob.pk, None), (carol.pk, general.pk)}
    with django_assert_num_queries(1):
        muted = mute_check_many(places=places)
    # Everywhere covers direct messages too; the later end wins where both hold.
    assert muted == {(bob.pk, general.pk): soon, (bob.pk, random.pk): later, (bob.pk, None): soon}

    results = message_store_many(
        sends=[
            (carol, Send(body="one", client_id="c1", room="general")),
            (bob, Send(body="two", client_id="b1", room="random")),
            (carol, Send(body="three", client_id="c2", room="random")),
        ]
    )
    assert [getattr(r, "code", "stored") for r in results] == ["stored", "muted", "stored"]
    assert (results[1].client_id, results[1].until) == ("b1", later)


# --- Deactivation and staff deletions ---------------------------------------------


@socket_tests
async def test_staff_deactivation_closes_every_socket_of_the_user_and_is_recorded(people, connect):
    root, carol = await connect(people[0]), await connect(people[2])
    tabs = [await connect(people[1]), await connect(people[1])]
    answer = await _ask(root, {"type": "deactivate", "user": "bob"})
    assert answer == {"type": "deactivate", "user": "bob"}
    for tab in tabs:
        output = await tab.communicator.receive_output(timeout=3)
        while output["type"] == "websocket.send":  # presence frames may come first
            output = await tab.communicator.receive_output(timeout=3)
        assert output == {"type": "websocket.close", "code": SESSION_ENDED}
    assert await _ask(carol, {"type": "ping"}, "pong") == {"type": "pong"}
    assert await _actions() == [("deactivate", "root", "bob", "")]


@socket_tests
async def test_a_non_staff_deactivation_is_forbidden(people, connect):
    carol, bob = await connect(people[2]), await connect(people[1])
    assert (await _ask(carol, {"type": "deactivate", "user": "bob"}, "error"))[
        "code"
    ] == "forbidden"
    assert await _ask(bob, {"type": "ping"}, "pong") == {"type": "pong"}
    assert await _actions() == []


@socket_tests
async def test_a_staff_deletion_of_someone_elses_message_is_recorded(people, connect):
    root, bob = await connect(people[0]), await connect(people[1])
    own = await post(root, "mine", "o1", room="general")
    theirs = await post(bob, "rude words", "t1", room="general")
    for message in (own, theirs):
        await root.send({"type": "delete", "id": message["id"]})
        assert (await revision(root, message["id"], above=message["rev"]))["deleted"] is True
    recorded = await sync_to_async(list)(ModerationAction.objects.values_list("kind", "message_id"))
    # Deleting one's own message is no moderation.
    assert recorded == [("delete", theirs["id"])]
    assert await _actions() == [("delete", "root", "bob", "general")]


# --- The admin ---------------------------------------------------------------------


@pytest.fixture
def staff(make_user, settings):
    """A logged-in staff superuser's browser."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return login_client(make_user("root", is_staff=True, is_superuser=True))


@pytest.mark.django_db
def test_the_admin_lists_mutes_and_the_moderation_record(staff, make_user):
    bob = make_user("bob")
    root = staff.session["_auth_user_id"]
    Mute.objects.create(user=bob, until=timezone.now() + timedelta(hours=1), by_id=root)
    ModerationAction.objects.create(
        kind="mute", actor_id=root, actor_name="root", target_name="bob"
    )
    ModerationAction.objects.create(
        kind="deactivate", actor_id=root, actor_name="root", target_name="carol"
    )
    mutes = staff.get("/admin/chat/mute/")
    assert mutes.status_code == 200 and "bob" in mutes.content.decode()
    record = staff.get("/admin/chat/moderationaction/")
    assert record.status_code == 200
    page = record.content.decode()
    assert "Muted a user" in page and "Deactivated a user" in page
    filtered = staff.get("/admin/chat/moderationaction/", {"kind": "deactivate"}).content.decode()
    assert "carol" in filtered and ">bob<" not in filtered
    # The record is read-only: no adding, no changing.
    assert staff.get("/admin/chat/moderationaction/add/").status_code == 403
    action = ModerationAction.objects.first()
    change = staff.post(f"/admin/chat/moderationaction/{action.pk}/change/", {"detail": "x"})
    assert change.status_code == 403


@pytest.mark.django_db
def test_the_admin_mutes_users_for_an_hour_and_records_it(staff, make_user):
    bob = make_user("bob")
    response = staff.post(
        "/admin/auth/user/",
        {"action": "mute_for_an_hour", "_selected_action": [bob.pk]},
    )
    assert response.status_code == 302
    mute = Mute.objects.get(user=bob)
    assert mute.room is None
    assert timedelta(minutes=59) < mute.until - timezone.now() <= timedelta(hours=1)
    assert list(ModerationAction.objects.values_list("kind", "actor_name", "target_name")) == [
        ("mute", "root", "bob")
    ]


@pytest.mark.django_db
def test_the_admin_mute_form_mutes_through_the_service(staff, make_user):
    bob = make_user("bob")
    general = Room.objects.get(name="general")
    response = staff.post(
        "/admin/chat/mute/add/", {"user": bob.pk, "room": general.pk, "minutes": 30}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    mute = Mute.objects.get(user=bob)
    assert mute.room == general and str(mute.by) == "root"
    assert timedelta(minutes=29) < mute.until - timezone.now() <= timedelta(minutes=30)
    assert list(ModerationAction.objects.values_list("kind", "target_name", "room__name")) == [
        ("mute", "bob", "general")
    ]


@pytest.mark.parametrize("path", ["/admin/chat/mute/", "/admin/chat/moderationaction/"])
@pytest.mark.django_db
def test_the_moderation_pages_send_non_staff_to_the_admin_login(make_user, path):
    response = login_client(make_user("bob")).get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


# --- Two real server processes -----------------------------------------------------


@pytest.fixture
def pair(database, moderation_redis):
    """Two server processes sharing one Redis and one database."""
    env = {"REDIS_URL": redis_url_of(moderation_redis)}
    servers = [ServerProcess(database, **env).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.server
def test_a_mute_and_a_deactivation_on_one_process_hold_on_the_other(pair):
    a, b = pair
    staff = staff_browser(a)
    bob = f"bob{uuid.uuid4().hex[:6]}"
    bob_session = Browser(b.url).signup(bob)

    async def scenario():
        root = await ChatClient(a, staff.cookie("sessionid")).open()
        assert root.hello["staff"] is True
        bob_ws = await ChatClient(b, bob_session).open()
        assert bob_ws.hello["staff"] is False
        await root.send({"type": "mute", "user": bob, "minutes": 10})
        muted = await root.receive_type("mute")
        await bob_ws.send(_send("anyone?", "x1", room="general"))
        refused = await bob_ws.receive_type("error")

        await root.send({"type": "mute", "user": bob, "minutes": 0})
        await root.receive_type("mute")
        await bob_ws.send(_send("back", "x2", room="general"))
        ack = await bob_ws.receive_type("ack", skip=("presence", "users", "message"))

        await root.send({"type": "deactivate", "user": bob})
        await root.receive_type("deactivate", skip=("presence", "users", "message"))
        try:
            while True:
                await bob_ws.receive(timeout=2)
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else "no close frame"
        await root.close()
        return muted, refused, ack, code

    muted, refused, ack, code = asyncio.run(scenario())
    assert (refused["code"], refused["until"], refused["client_id"]) == (
        "muted",
        muted["until"],
        "x1",
    )
    assert ack["client_id"] == "x2"
    assert code == SESSION_ENDED
