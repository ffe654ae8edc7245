"""GET /uploads/<id>/ and /uploads/<id>/thumb/: who may fetch a file (its owner before it
is attached, then whoever may see its message), the headers that keep a file from
acting as a page, and the X-Accel-Redirect answer for nginx.
"""

import io
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from chat.messaging.store import message_store
from chat.models import Message, Upload
from chat.protocol import Send
from tests.conftest import login_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords", "media")]

CSP = "default-src 'none'; sandbox"


@pytest.fixture
def people(make_user):
    """alice, bob and carol, each with a logged-in browser."""
    return {
        name: (user := make_user(name), login_client(user)) for name in ("alice", "bob", "carol")
    }


def upload_as(client: Client, name: str, data: bytes) -> str:
    """Uploads a file and returns its id."""
    response = client.post(reverse("upload"), {"file": SimpleUploadedFile(name, data)})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def png(size=(500, 400)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def attach(upload_id: str, *, sender, send: Send) -> Message:
    """Stores a message as the chat does, and attaches the upload to it directly."""
    message = Message.objects.get(pk=message_store(sender=sender, send=send).message.id)
    Upload.objects.filter(key=upload_id).update(message=message)
    return message


def file_url(upload_id: str) -> str:
    return reverse("upload-file", args=[upload_id])


def thumb_url(upload_id: str) -> str:
    return reverse("upload-thumb", args=[upload_id])


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


# --- Who may fetch ------------------------------------------------------------------


def test_owner_fetches_their_own_unattached_upload(people):
    alice = people["alice"][1]
    upload_id = upload_as(alice, "notes.txt", b"only mine for now")
    response = alice.get(file_url(upload_id))
    assert response.status_code == 200
    assert body_of(response) == b"only mine for now"


def test_nobody_else_sees_an_unattached_upload_and_it_looks_like_no_file(people):
    upload_id = upload_as(people["alice"][1], "notes.txt", b"only mine for now")
    bob = people["bob"][1]
    assert bob.get(file_url(upload_id)).status_code == 404
    assert bob.get(file_url("no-such-upload-key")).status_code == 404


def test_direct_message_file_is_for_its_two_parties_only(people):
    (alice, alice_client), (_, bob_client), (_, carol_client) = people.values()
    upload_id = upload_as(alice_client, "plan.txt", b"the plan")
    attach(upload_id, sender=alice, send=Send(body="", client_id="c1", to="bob"))

    assert alice_client.get(file_url(upload_id)).status_code == 200
    response = bob_client.get(file_url(upload_id))
    assert response.status_code == 200
    assert body_of(response) == b"the plan"
    assert carol_client.get(file_url(upload_id)).status_code == 404

    anonymous = Client().get(file_url(upload_id))
    assert anonymous.status_code == 302
    assert anonymous["Location"] == f"/accounts/login/?next={quote(file_url(upload_id))}"


def test_room_message_file_is_for_everyone_logged_in(people):
    (alice, alice_client), _, (_, carol_client) = people.values()
    upload_id = upload_as(alice_client, "menu.txt", b"soup")
    attach(upload_id, sender=alice, send=Send(body="lunch", client_id="c1", room="general"))
    assert carol_client.get(file_url(upload_id)).status_code == 200
    assert Client().get(file_url(upload_id)).status_code == 302


def test_file_of_a_deleted_message_is_gone_for_everyone(people):
    (alice, alice_client), (_, bob_client), _ = people.values()
    upload_id = upload_as(alice_client, "plan.txt", b"the plan")
    message = attach(upload_id, sender=alice, send=Send(body="x", client_id="c1", to="bob"))
    Message.objects.filter(pk=message.pk).update(deleted=True)
    assert bob_client.get(file_url(upload_id)).status_code == 404
    assert alice_client.get(file_url(upload_id)).status_code == 404


def test_thumbnail_follows_the_same_rule(people):
    (alice, alice_client), (_, bob_client), (_, carol_client) = people.values()
    upload_id = upload_as(alice_client, "sky.png", png())
    assert alice_client.get(thumb_url(upload_id)).status_code == 200
    assert bob_client.get(thumb_url(upload_id)).status_code == 404
    attach(upload_id, sender=alice, send=Send(body="", client_id="c1", to="bob"))
    assert bob_client.get(thumb_url(upload_id)).status_code == 200
    assert carol_client.get(thumb_url(upload_id)).status_code == 404
    assert Client().get(thumb_url(upload_id)).status_code == 302


def test_staff_who_may_view_uploads_open_any_file(people, make_user):
    (alice, alice_client), _, _ = people.values()
    upload_id = upload_as(alice_client, "plan.txt", b"the plan")
    attach(upload_id, sender=alice, send=Send(body="", client_id="c1", to="bob"))
    staff = make_user("moderator", is_staff=True)
    assert login_client(staff).get(file_url(upload_id)).status_code == 404
    staff.user_permissions.add(Permission.objects.get(codename="view_upload"))
    assert login_client(staff).get(file_url(upload_id)).status_code == 200


def test_files_are_only_read(people):
    alice = people["alice"][1]
    upload_id = upload_as(alice, "notes.txt", b"text")
    assert alice.post(file_url(upload_id)).status_code == 405
    assert alice.head(file_url(upload_id)).status_code == 200


# --- What a browser is told -----------------------------------------------------------


@pytest.mark.parametrize(
    "name, data",
    [
        ("page.html", b"<!doctype html><script>alert(document.cookie)</script>"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ],
)
def test_html_and_svg_are_downloads_of_plain_text_never_pages(people, name, data):
    alice = people["alice"][1]
    response = alice.get(file_url(upload_as(alice, name, data)))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == CSP
    assert body_of(response) == data


def test_raster_image_is_shown_inline_with_its_type(people):
    alice = people["alice"][1]
    upload_id = upload_as(alice, "sky.png", png())
    response = alice.get(file_url(upload_id))
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'inline; filename="sky.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == CSP
    assert response["Cache-Control"].startswith("private, max-age=")
    assert Image.open(io.BytesIO(body_of(response))).size == (500, 400)

    thumb = alice.get(thumb_url(upload_id))
    assert thumb["Content-Type"] == "image/webp"
    assert thumb["X-Content-Type-Options"] == "nosniff"
    assert Image.open(io.BytesIO(body_of(thumb))).size == (320, 256)


def test_non_ascii_names_are_offered_as_utf8(people):
    alice = people["alice"][1]
    response = alice.get(file_url(upload_as(alice, "отчёт 2024.txt", b"text")))
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''%D0%BE%D1%82%D1%87%D1%91%D1%82%202024.txt"
    )


def test_a_file_that_is_no_image_has_no_thumbnail(people):
    alice = people["alice"][1]
    upload_id = upload_as(alice, "notes.txt", b"words")
    assert alice.get(file_url(upload_id)).status_code == 200
    assert alice.get(thumb_url(upload_id)).status_code == 404


# --- Behind nginx ------------------------------------------------------------------------


def test_with_x_accel_prefix_nginx_is_told_where_the_bytes_are(people, settings):
    alice = people["alice"][1]
    upload_id = upload_as(alice, "my page.html", b"<p>hi</p>")
    upload = Upload.objects.get(key=upload_id)
    settings.CHAT_X_ACCEL_PREFIX = "/protected/"

    response = alice.get(file_url(upload_id))
    assert response.status_code == 200
    assert response.content == b""
    assert response["X-Accel-Redirect"] == "/protected/" + quote(upload.file.name)
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"] == 'attachment; filename="my page.html"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == CSP

    # Access is decided first: nobody else is redirected to the bytes.
    refused = people["bob"][1].get(file_url(upload_id))
    assert refused.status_code == 404
    assert "X-Accel-Redirect" not in refused


def test_x_accel_thumbnail_points_at_the_thumbnail(people, settings):
    alice = people["alice"][1]
    upload_id = upload_as(alice, "sky.png", png())
    settings.CHAT_X_ACCEL_PREFIX = "/protected"
    response = alice.get(thumb_url(upload_id))
    assert response.content == b""
    thumb_name = Upload.objects.get(key=upload_id).thumb.name
    assert response["X-Accel-Redirect"] == "/protected/" + quote(thumb_name)
    assert response["Content-Type"] == "image/webp"
