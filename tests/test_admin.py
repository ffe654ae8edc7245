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
