"""The Django admin as staff use it: rooms, messages (searchable, filterable, read-only
where the chat owns the data) and users; closed to everyone else. Rooms added in the
admin of a real server reach its open pages.
"""

import asyncio
import html
import re
import subprocess
import sys
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import formats, timezone

from chat.messaging.store import message_store
from chat.models import Message, Room
from chat.protocol import Send
from tests.conftest import PASSWORD, login_client
from tests.server import ROOT, Browser, ChatClient, ServerProcess

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/chat/message/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hashes the fixtures' passwords cheaply: these tests are about the admin, not hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff(make_user):
    """A logged-in staff superuser's browser."""
    return login_client(make_user("root", is_staff=True, is_superuser=True))


@pytest.fixture
def chat(make_user):
    """A few messages in two rooms and one direct conversation, stored as the chat stores them."""
    alice, bob = make_user("alice"), make_user("bob")
    Room.objects.create(name="random")
    posts = [
        (alice, Send(body="hello everyone", client_id="a1", room="general")),
        (bob, Send(body="lunch at noon?", client_id="b1", room="general")),
        (alice, Send(body="cat pictures inside", client_id="a2", room="random")),
        (bob, Send(body="a quiet word", client_id="b2", to="alice")),
    ]
    return [message_store(sender=sender, send=send).message for sender, send in posts]


def bodies_listed(response) -> set[str]:
    """The chat messages (of the fixture) a staff member sees on a changelist page."""
    page = html.unescape(response.content.decode())
    known = {"hello everyone", "lunch at noon?", "cat pictures inside", "a quiet word"}
    return {body for body in known if body in page}


# --- Who gets in --------------------------------------------------------------


def test_staff_see_rooms_messages_and_users_on_the_admin_index(staff):
    response = staff.get("/admin/")
    assert response.status_code == 200
    page = response.content.decode()
    for name, url in [
        ("Rooms", "/admin/chat/room/"),
        ("Messages", MESSAGES),
        ("Users", "/admin/auth/user/"),
    ]:
        assert f'<a href="{url}"' in page, f"no link to {name}"
        assert f">{name}</a>" in page


@pytest.mark.parametrize("path", ["/admin/", MESSAGES, "/admin/chat/room/add/"])
def test_non_staff_user_is_sent_to_the_admin_login(make_user, path):
    response = login_client(make_user("alice")).get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_anonymous_visitor_is_sent_to_the_admin_login():
    response = Client().get(MESSAGES)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={MESSAGES}"


# --- Messages -----------------------------------------------------------------


def test_message_list_shows_every_message(staff, chat):
    response = staff.get(MESSAGES)
    assert response.status_code == 200
    assert bodies_listed(response) == {
        "hello everyone",
        "lunch at noon?",
        "cat pictures inside",
        "a quiet word",
    }


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("lunch", {"lunch at noon?"}),
        ("PICTURES", {"cat pictures inside"}),
        ("bob", {"lunch at noon?", "a quiet word"}),
        ("nobody-said-this", set()),
    ],
    ids=["body", "body-any-case", "sender-username", "no-match"],
)
def test_message_search_narrows_the_list_by_body_or_sender(staff, chat, query, found):
    response = staff.get(MESSAGES, {"q": query})
    assert response.status_code == 200
    assert bodies_listed(response) == found


def test_message_room_filter_narrows_the_list_to_that_room(staff, chat):
    page = staff.get(MESSAGES).content.decode()
    # Follow the filter link a staff member would click in the sidebar.
    [link] = re.findall(r'<a href="(\?room[^"]*)">random</a>', page)
    response = staff.get(MESSAGES + html.unescape(link))
    assert response.status_code == 200
    assert bodies_listed(response) == {"cat pictures inside"}


def test_messages_cannot_be_added_in_the_admin(staff, chat):
    assert staff.get(MESSAGES + "add/").status_code == 403
    assert 'href="/admin/chat/message/add/"' not in staff.get(MESSAGES).content.decode()
    index = staff.get("/admin/").content.decode()
    assert 'href="/admin/chat/message/add/"' not in index
    assert 'href="/admin/chat/room/add/"' in index


def test_message_page_shows_sent_at_seq_and_client_id_without_inputs(staff, chat):
    message = chat[1]
    response = staff.get(f"{MESSAGES}{message.id}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    for field in ["sent_at", "seq", "client_id", "sender", "room", "recipient"]:
        assert not re.search(rf'name="{field}(_\d)?"', page), f"{field} is editable"
    shown = [
        html.unescape(re.sub(r"<[^>]+>", "", value))
        for value in re.findall(r'<div class="readonly">(.*?)</div>', page, re.S)
    ]
    assert "b1" in shown
    assert str(message.seq) in shown
    assert formats.localize(timezone.localtime(message.sent_at)) in shown
    assert {"bob", "general"} <= set(shown)


def test_posting_the_message_form_does_not_change_seq_or_client_id(staff, chat):
    message = chat[1]
    response = staff.post(
        f"{MESSAGES}{message.id}/change/",
        {"body": message.body, "seq": 999, "client_id": "forged", "sent_at_0": "2000-01-01"},
    )
    assert response.status_code == 302  # saved, back to the list
    stored = Message.objects.get(pk=message.id)
    assert (stored.seq, stored.client_id, stored.sent_at) == (
        message.seq,
        "b1",
        message.sent_at,
    )


@pytest.mark.parametrize("page", ["list", "change"])
def test_a_script_in_a_message_body_is_shown_as_text(staff, make_user, page):
    mallory = make_user("mallory")
    message = message_store(
        sender=mallory,
        send=Send(body="<script>alert(1)</script>", client_id="x1", room="general"),
    ).message
    url = MESSAGES if page == "list" else f"{MESSAGES}{message.id}/change/"
    text = staff.get(url).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>alert(1)" not in text


# --- Rooms --------------------------------------------------------------------


def test_staff_can_add_a_room(staff):
    response = staff.post("/admin/chat/room/add/", {"name": "random"})
    assert response.status_code == 302
    assert Room.objects.filter(name="random").exists()
    assert "random" in staff.get("/admin/chat/room/").content.decode()


def test_a_room_name_with_capitals_spaces_or_punctuation_is_refused(staff):
    response = staff.post("/admin/chat/room/add/", {"name": "Bad Name!"})
    assert response.status_code == 200
    assert (
        "Use 1 to 64 lowercase letters, digits, '-' or '_', starting with a letter or digit."
        in html.unescape(response.content.decode())
    )
    assert not Room.objects.filter(name="Bad Name!").exists()


# --- On a real server: what staff change reaches open pages ------------------------


def staff_browser(server: ServerProcess) -> Browser:
    """Creates a superuser in the server's database; returns a browser logged in to the admin."""
    name = f"staff{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", f"--username={name}"],
        cwd=ROOT,
        env={
            **server.env,
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": f"{name}@example.com",
        },
        check=True,
        capture_output=True,
    )
    browser = Browser(server.url)
    status, _, body = browser.post_form(
        "/admin/login/", {"username": name, "password": PASSWORD, "next": "/admin/"}
    )
    assert status == 302, f"admin login failed ({status}): {body[:300]}"
    return browser


@pytest.mark.server
def test_a_room_added_in_the_admin_reaches_an_open_page_every_time(site_server):
    staff = staff_browser(site_server)
    session = Browser(site_server.url).signup(f"watcher{uuid.uuid4().hex[:8]}")

    async def scenario() -> None:
        page = await ChatClient(site_server, session).open()
        loop = asyncio.get_running_loop()
        # The admin saves inside a transaction: a page that re-reads the room list
        # before the commit would miss the room. Eight tries, each must see it.
        for attempt in range(1, 9):
            name = f"room-{uuid.uuid4().hex[:8]}"
            status, _, _ = await loop.run_in_executor(
                None, staff.post_form, "/admin/chat/room/add/", {"name": name}
            )
            assert status == 302
            frame = await page.receive()
            while frame["type"] != "rooms":
                frame = await page.receive()
            assert name in frame["rooms"], f"try {attempt}: {frame}"
        await page.close()

    asyncio.run(scenario())


# --- Messages that change: staff edits and deletions reach open pages ------------------

changes_reach_sockets = pytest.mark.django_db(transaction=True, serialized_rollback=True)


async def _open_page_of(connect, username: str):
    """Opens a chat socket as one of the fixture's users."""
    user = await sync_to_async(get_user_model().objects.get)(username=username)
    return await connect(user)


async def _next_revision(socket, message, *, above: int) -> dict:
    _, frame = await socket.receive_until(
        "message", lambda m: m["id"] == message.id and m["rev"] > above
    )
    return frame


@changes_reach_sockets
async def test_an_edit_in_the_admin_reaches_an_open_page_with_a_higher_rev(staff, chat, connect):
    message = chat[0]
    bob = await _open_page_of(connect, "bob")
    response = await sync_to_async(staff.post)(
        f"{MESSAGES}{message.id}/change/", {"body": "  hello everyone, edited  "}
    )
    assert response.status_code == 302
    frame = await _next_revision(bob, message, above=message.rev)
    assert (frame["body"], frame["deleted"], frame["from"]) == (
        "hello everyone, edited",
        False,
        "alice",
    )
    assert frame["edited_at"] is not None and frame["seq"] == message.seq
    stored = await sync_to_async(Message.objects.get)(pk=message.id)
    assert (stored.body, stored.rev) == ("hello everyone, edited", frame["rev"])


@changes_reach_sockets
async def test_a_deletion_in_the_admin_reaches_an_open_page_and_leaves_no_seq_hole(
    staff, chat, connect
):
    message = chat[1]  # general, seq 2
    alice = await _open_page_of(connect, "alice")
    response = await sync_to_async(staff.post)(f"{MESSAGES}{message.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    frame = await _next_revision(alice, message, above=message.rev)
    assert (frame["deleted"], frame["body"], frame["seq"]) == (True, "", 2)
    stored = await sync_to_async(Message.objects.get)(pk=message.id)
    assert (stored.deleted, stored.body, stored.rev) == (True, "", frame["rev"])
    history = await alice.ask({"type": "history", "room": "general"})
    assert [(m["seq"], m["deleted"]) for m in history["messages"]] == [(1, False), (2, True)]
    await alice.send({"type": "send", "room": "general", "body": "next", "client_id": "n1"})
    _, ack = await alice.receive_until("ack")
    assert ack["seq"] == 3


@changes_reach_sockets
async def test_deleting_selected_messages_in_the_admin_leaves_tombstones(staff, chat, connect):
    alice = await _open_page_of(connect, "alice")
    chosen = [chat[0], chat[3]]  # a room message and a direct message to alice
    response = await sync_to_async(staff.post)(
        MESSAGES,
        {"action": "delete_selected", "_selected_action": [m.id for m in chosen], "post": "yes"},
    )
    assert response.status_code == 302
    for message in chosen:
        frame = await _next_revision(alice, message, above=message.rev)
        assert (frame["deleted"], frame["body"]) == (True, "")
    rows = await sync_to_async(lambda: sorted(Message.objects.values_list("id", "deleted")))()
    assert rows == sorted((m.id, m in chosen) for m in chat)


@changes_reach_sockets
async def test_the_purge_action_tombstones_every_message_of_the_selected_users(
    staff, chat, connect
):
    alice = await _open_page_of(connect, "alice")
    bob_id = await sync_to_async(lambda: get_user_model().objects.get(username="bob").pk)()
    response = await sync_to_async(staff.post)(
        "/admin/auth/user/", {"action": "purge_messages", "_selected_action": [bob_id]}
    )
    assert response.status_code == 302
    # bob's room message and his direct message to alice; alice's stay.
    for message in (chat[1], chat[3]):
        frame = await _next_revision(alice, message, above=message.rev)
        assert (frame["deleted"], frame["body"], frame["from"]) == (True, "", "bob")
    rows = await sync_to_async(lambda: {m.id: (m.deleted, m.body) for m in Message.objects.all()})()
    assert rows == {
        chat[0].id: (False, "hello everyone"),
        chat[1].id: (True, ""),
        chat[2].id: (False, "cat pictures inside"),
        chat[3].id: (True, ""),
    }


@pytest.mark.parametrize(
    ("path", "data", "changed"),
    [
        ("change/", {"body": "edited"}, ("edited", False)),
        ("delete/", {"post": "yes"}, ("", True)),
    ],
    ids=["edit", "delete"],
)
def test_admin_changes_wait_until_the_admins_own_transaction_commits(
    staff, chat, django_capture_on_commit_callbacks, path, data, changed
):
    message = chat[0]
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff.post(f"{MESSAGES}{message.id}/{path}", data)
        assert response.status_code == 302
        # Nothing is changed (or published) while the admin's transaction is open:
        # a page told of the change could otherwise read the old state back.
        stored = Message.objects.get(pk=message.id)
        assert (stored.body, stored.deleted, stored.rev) == (message.body, False, message.rev)
    for callback in callbacks:
        callback()
    stored = Message.objects.get(pk=message.id)
    assert (stored.body, stored.deleted) == changed and stored.rev > message.rev


def test_an_admin_edit_to_a_blank_body_changes_nothing(staff, chat):
    message = chat[0]
    response = staff.post(f"{MESSAGES}{message.id}/change/", {"body": " \u200b "}, follow=True)
    assert "The body was not changed" in html.unescape(response.content.decode())
    stored = Message.objects.get(pk=message.id)
    assert (stored.body, stored.rev, stored.edited_at) == (message.body, message.rev, None)


@pytest.mark.server
def test_staff_edits_and_deletions_in_the_admin_reach_an_open_page_live(site_server):
    staff = staff_browser(site_server)
    session = Browser(site_server.url).signup(f"writer{uuid.uuid4().hex[:8]}")

    async def scenario() -> None:
        page = await ChatClient(site_server, session).open()
        loop = asyncio.get_running_loop()
        room = {"type": "send", "room": "general"}
        await page.send({**room, "body": "typo heer", "client_id": "a1"})
        ack = await page.receive_type("ack", skip=("presence", "users", "message"))
        message = await _until(page, ack["id"], above=0)

        status, _, _ = await loop.run_in_executor(
            None, staff.post_form, f"{MESSAGES}{ack['id']}/change/", {"body": "typo here"}
        )
        assert status == 302
        edited = await _until(page, ack["id"], above=message["rev"])
        assert (edited["body"], edited["seq"]) == ("typo here", ack["seq"])
        assert edited["edited_at"] is not None

        status, _, _ = await loop.run_in_executor(
            None, staff.post_form, f"{MESSAGES}{ack['id']}/delete/", {"post": "yes"}
        )
        assert status == 302
        tombstone = await _until(page, ack["id"], above=edited["rev"])
        assert (tombstone["deleted"], tombstone["body"], tombstone["seq"]) == (True, "", ack["seq"])
        # No hole: the next message takes the next seq.
        await page.send({**room, "body": "next", "client_id": "a2"})
        after = await page.receive_type("ack", skip=("presence", "users", "message"))
        assert after["seq"] == ack["seq"] + 1
        await page.close()

    asyncio.run(scenario())


async def _until(page: ChatClient, message_id: int, *, above: int) -> dict:
    """Receives frames on a real server's page until message `message_id` above rev `above`."""
    while True:
        frame = await page.receive()
        if frame["type"] == "message" and frame["id"] == message_id and frame["rev"] > above:
            return frame
