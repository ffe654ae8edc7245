"""Staff export a room's history from the admin: a JSON file with every message of the
room (deleted ones as tombstones, files by name), and nothing of any other conversation.
"""

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient, Client

from chat.messaging.changes import message_delete
from chat.messaging.store import message_store
from chat.models import Message, Room, Upload
from chat.protocol import Send
from chat.room_export import room_export_page
from tests.conftest import login_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hashes the fixtures' passwords cheaply: these tests are about the export."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def history(make_user):
    """general: three messages by alice and bob (one deleted, one edited later, one with a file);
    random and a direct message hold others."""
    alice, bob = make_user("alice"), make_user("bob")
    Room.objects.create(name="random")
    posts = [
        (alice, Send(body="hello «everyone»", client_id="a1", room="general")),
        (bob, Send(body="oops", client_id="b1", room="general")),
        (alice, Send(body="not here", client_id="a2", room="random")),
        (bob, Send(body="a quiet word", client_id="b2", to="alice")),
    ]
    stored = [message_store(sender=sender, send=send).message for sender, send in posts]
    upload = Upload.objects.create(
        key="k1", owner=bob, name="plan.pdf", size=3, content_type="application/pdf", file="x"
    )
    with_file = message_store(
        sender=bob,
        send=Send(body="see the plan", client_id="b3", room="general", attachments=(upload.key,)),
    ).message
    message_delete(user_id=bob.pk, message_id=stored[1].id)
    return stored, with_file


def _export_url(room_name: str) -> str:
    return f"/admin/chat/room/{Room.objects.get(name=room_name).pk}/export/"


async def _download(client: AsyncClient, url: str):
    response = await client.get(url)
    body = b"".join([chunk async for chunk in response.streaming_content])
    return response, body


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_staff_download_the_rooms_messages_as_json(make_user, history):
    stored, with_file = history
    staff = await sync_to_async(make_user)("root", is_staff=True, is_superuser=True)
    client = AsyncClient()
    await client.aforce_login(staff)
    url = await sync_to_async(_export_url)("general")
    response, body = await _download(client, url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    document = json.loads(body)
    assert document["room"] == "general"
    assert [
        (m["id"], m["seq"], m["from"], m["body"], m["deleted"], m["attachments"])
        for m in document["messages"]
    ] == [
        (stored[0].id, 1, "alice", "hello «everyone»", False, []),
        (stored[1].id, 2, "bob", "", True, []),
        (with_file.id, 3, "bob", "see the plan", False, ["plan.pdf"]),
    ]
    first = document["messages"][0]
    assert first["sent_at"].endswith("Z") and first["edited_at"] is None


def test_the_export_pages_through_a_long_history(make_user):
    alice = make_user("alice")
    for n in range(7):
        message_store(sender=alice, send=Send(body=f"m{n}", client_id=f"c{n}", room="general"))
    room = Room.objects.get(name="general")
    pages, after = [], 0
    while page := room_export_page(room_id=room.pk, after=after, limit=3):
        pages.append([m["body"] for m in page])
        after = page[-1]["id"]
    assert pages == [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6"]]
    assert Message.objects.count() == 7


def test_the_room_page_links_to_the_export(make_user, history):
    staff = login_client(make_user("root", is_staff=True, is_superuser=True))
    url = _export_url("general")
    page = staff.get(url.removesuffix("export/") + "change/").content.decode()
    assert f'href="{url}"' in page


@pytest.mark.parametrize("who", ["user", "anonymous"])
def test_non_staff_are_sent_to_the_admin_login(make_user, history, who):
    client = login_client(make_user("carol")) if who == "user" else Client()
    url = _export_url("general")
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")
