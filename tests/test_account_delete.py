"""Deleting an account (by its owner, confirmed with the password, or by staff in the
admin) keeps the conversations whole: the messages become tombstones, published live;
and a user downloads their data as JSON.
"""

import json

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client

from chat.accounts import account_export_page
from chat.messaging.changes import message_react
from chat.messaging.store import message_store
from chat.models import Message
from chat.protocol import Send
from tests.conftest import PASSWORD, login_client

User = get_user_model()


def _conversation(make_user):
    alice, bob = make_user("alice", email="alice@example.com"), make_user("bob")
    first = message_store(sender=alice, send=Send(body="hi all", client_id="a1", room="general"))
    direct = message_store(sender=alice, send=Send(body="psst", client_id="a2", to="bob"))
    reply = message_store(sender=bob, send=Send(body="hello", client_id="b1", room="general"))
    message_react(user_id=alice.pk, message_id=reply.message.id, emoji="👍", on=True)
    return alice, bob, first.message.id, direct.message.id, reply.message.id


@pytest.mark.django_db
def test_deleting_my_account_tombstones_my_messages_and_keeps_their_seqs(make_user):
    alice, bob, first, direct, reply = _conversation(make_user)
    client = login_client(alice)
    refused = client.post("/accounts/delete/", {"password": "not-my-password"})
    assert refused.status_code == 400
    assert User.objects.get(pk=alice.pk).is_active

    response = client.post("/accounts/delete/", {"password": PASSWORD})
    assert response.status_code == 200
    gone = User.objects.get(pk=alice.pk)
    assert (gone.username, gone.email, gone.is_active) == (f"deleted-{alice.pk}", "", False)
    assert not gone.has_usable_password()
    rows = {m.pk: m for m in Message.objects.all()}
    assert [(rows[pk].deleted, rows[pk].body) for pk in (first, direct)] == [(True, ""), (True, "")]
    assert rows[first].seq == 1 and rows[reply].seq == 2  # nothing renumbered
    assert rows[reply].reactions == [] and rows[reply].body == "hello"
    # The old session is logged out; the name is free of the old owner but reserved.
    assert client.get("/accounts/profile/").status_code == 302
    signup = Client().post(
        "/accounts/signup/",
        {"username": f"deleted-{bob.pk}", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert signup.status_code == 400


@pytest.mark.django_db
def test_staff_deleting_a_user_in_the_admin_tombstones_instead_of_removing(
    make_user, django_capture_on_commit_callbacks
):
    alice, _, first, _, _ = _conversation(make_user)
    staff = login_client(make_user("root", is_staff=True, is_superuser=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/auth/user/{alice.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert User.objects.filter(pk=alice.pk, is_active=False).exists()
    assert Message.objects.get(pk=first).deleted
    assert Message.objects.count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_the_tombstones_reach_open_pages_live(make_user, connect):
    alice, bob, first, *_ = await sync_to_async(_conversation)(make_user)
    page = await connect(bob)
    client = AsyncClient()
    await client.aforce_login(alice)
    response = await client.post("/accounts/delete/", {"password": PASSWORD})
    assert response.status_code == 200
    _, frame = await page.receive_until("message", lambda f: f["id"] == first)
    assert frame["deleted"] is True
    assert frame["body"] == ""


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_i_download_my_messages_and_direct_messages_as_json(make_user):
    alice, bob, first, direct, _ = await sync_to_async(_conversation)(make_user)
    await sync_to_async(message_store)(
        sender=bob, send=Send(body="to you", client_id="b2", to="alice")
    )
    client = AsyncClient()
    await client.aforce_login(alice)
    response = await client.get("/accounts/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment; filename=")
    body = b"".join([chunk async for chunk in response.streaming_content])
    document = json.loads(body)
    assert document["profile"]["username"] == "alice"
    assert document["profile"]["email"] == "alice@example.com"
    assert [
        (m["id"], m.get("room"), m.get("with"), m["body"]) for m in document["messages_sent"]
    ] == [
        (first, "general", None, "hi all"),
        (direct, None, "bob", "psst"),
    ]
    assert [(m["with"], m["body"]) for m in document["direct_messages_received"]] == [
        ("bob", "to you")
    ]


@pytest.mark.django_db
def test_the_export_reads_page_by_page(make_user):
    alice = make_user("alice")
    ids = [
        message_store(sender=alice, send=Send(body=f"m{n}", client_id=f"c{n}", room="general"))
        for n in range(5)
    ]
    pages, after = [], 0
    while page := account_export_page(user_id=alice.pk, received=False, after=after, limit=2):
        pages.append([m["body"] for m in page])
        after = page[-1]["id"]
    assert pages == [["m0", "m1"], ["m2", "m3"], ["m4"]]
    assert len(ids) == 5


def test_the_export_needs_a_login(client):
    assert client.get("/accounts/export/").status_code == 302
