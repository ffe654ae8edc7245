"""Uploads in the admin: staff list, search and open files, see a message's files on its
page, and delete files there or in the list; the bytes leave storage and the message's
`attachments` lose the entry.
"""

import html
import io

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.urls import reverse
from PIL import Image

from chat.files.uploads import upload_store
from chat.messaging.store import message_store
from chat.models import Message, Upload
from chat.protocol import Send
from tests.conftest import login_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords", "media")]

UPLOADS = "/admin/chat/upload/"


def stored_files(media) -> set[str]:
    return {str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()}


@pytest.fixture
def staff(make_user):
    """A logged-in staff superuser's browser."""
    return login_client(make_user("root", is_staff=True, is_superuser=True))


def stored(owner, name: str, data: bytes) -> Upload:
    return upload_store(owner_id=owner.pk, file=io.BytesIO(data), name=name, size=len(data))


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (250, 100, 0)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def message_with_files(make_user):
    """A direct message alice→bob with two files, its `attachments` listing both."""
    alice, _ = make_user("alice"), make_user("bob")
    files = [stored(alice, "sunset.png", png()), stored(alice, "itinerary.txt", b"day 1: beach")]
    message = message_store(sender=alice, send=Send(body="trip", client_id="c1", to="bob")).message
    Upload.objects.filter(pk__in=[f.pk for f in files]).update(message_id=message.id)
    Message.objects.filter(pk=message.id).update(
        attachments=[
            {"id": f.key, "name": f.name, "size": f.size, "type": f.content_type} for f in files
        ]
    )
    return Message.objects.get(pk=message.id), files


def attachment_ids(message: Message) -> list[str]:
    message.refresh_from_db()
    return [entry["id"] for entry in message.attachments]


def test_staff_see_every_upload_with_owner_type_and_a_link_to_the_file(staff, message_with_files):
    _, (image, text) = message_with_files
    page = html.unescape(staff.get(UPLOADS).content.decode())
    for upload in (image, text):
        assert upload.name in page
        assert f'href="{reverse("upload-file", args=[upload.key])}"' in page
    assert "image/png" in page and "text/plain" in page and "alice" in page
    assert staff.get(reverse("upload-file", args=[text.key])).status_code == 200


def test_staff_find_uploads_by_name(staff, message_with_files):
    page = html.unescape(staff.get(UPLOADS, {"q": "itinerary"}).content.decode())
    assert "itinerary.txt" in page and "sunset.png" not in page


def test_uploads_are_not_added_or_edited_in_the_admin(staff, message_with_files):
    _, (image, _) = message_with_files
    assert staff.get(UPLOADS + "add/").status_code == 403
    change = f"{UPLOADS}{image.pk}/change/"
    assert staff.get(change).status_code == 200
    assert staff.post(change, {"name": "renamed.png"}).status_code == 403
    image.refresh_from_db()
    assert image.name == "sunset.png"


def test_deleting_an_attached_upload_removes_its_files_and_its_attachment_entry(
    staff, message_with_files, media, django_capture_on_commit_callbacks
):
    message, (image, text) = message_with_files
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"{UPLOADS}{image.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert list(Upload.objects.values_list("pk", flat=True)) == [text.pk]
    assert attachment_ids(message) == [text.key]
    assert stored_files(media) == {text.file.name}
    message.refresh_from_db()
    assert (message.body, message.deleted) == ("trip", False)


def test_deleting_uploads_from_the_list(
    staff, message_with_files, media, django_capture_on_commit_callbacks
):
    message, files = message_with_files
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            UPLOADS,
            {"action": "delete_selected", "_selected_action": [f.pk for f in files], "post": "yes"},
        )
    assert response.status_code == 302
    assert not Upload.objects.exists()
    assert attachment_ids(message) == []
    assert stored_files(media) == set()


def test_message_page_lists_its_files_and_staff_delete_one_there(
    staff, message_with_files, media, django_capture_on_commit_callbacks
):
    message, (image, text) = message_with_files
    change = f"/admin/chat/message/{message.pk}/change/"
    page = html.unescape(staff.get(change).content.decode())
    assert "sunset.png" in page and "itinerary.txt" in page

    form = {
        "body": message.body,
        "uploads-TOTAL_FORMS": "2",
        "uploads-INITIAL_FORMS": "2",
        "uploads-MIN_NUM_FORMS": "0",
        "uploads-MAX_NUM_FORMS": "1000",
        "uploads-0-id": str(image.pk),
        "uploads-0-message": str(message.pk),
        "uploads-0-DELETE": "on",
        "uploads-1-id": str(text.pk),
        "uploads-1-message": str(message.pk),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(change, form)
    assert response.status_code == 302, response.content
    assert list(Upload.objects.values_list("pk", flat=True)) == [text.pk]
    assert attachment_ids(message) == [text.key]
    assert stored_files(media) == {text.file.name}


def test_people_who_are_not_staff_get_no_upload_admin(make_user, message_with_files):
    response = login_client(make_user("mallory")).get(UPLOADS)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_a_file_deleted_in_the_admin_leaves_open_pages_live(
    staff, message_with_files, connect
):
    message, (image, text) = message_with_files
    bob = await connect(await sync_to_async(get_user_model().objects.get)(username="bob"))
    response = await sync_to_async(staff.post)(f"{UPLOADS}{image.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    _, frame = await bob.receive_until(
        "message", lambda m: m["id"] == message.id and m["rev"] > message.rev
    )
    assert [entry["id"] for entry in frame["attachments"]] == [text.key]
    assert (frame["body"], frame["deleted"]) == ("trip", False)
