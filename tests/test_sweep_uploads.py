"""`manage.py sweep_uploads`: uploads never attached to a message go after a day, with
their files; attached and recent ones stay.
"""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from PIL import Image

from chat.files.uploads import upload_store
from chat.messaging.store import message_store
from chat.models import Upload
from chat.protocol import Send

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords", "media")]


def stored_files(media) -> set[str]:
    """Every file in the storage, as names relative to it."""
    return {str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()}


def image_upload(owner, *, hours_old: float) -> Upload:
    """An image uploaded `hours_old` hours ago (its file and thumbnail on disk)."""
    out = io.BytesIO()
    Image.new("RGB", (400, 300), (10, 200, 30)).save(out, "PNG")
    upload = upload_store(owner_id=owner.pk, file=out, name="pic.png", size=out.tell())
    Upload.objects.filter(pk=upload.pk).update(
        created_at=timezone.now() - timedelta(hours=hours_old)
    )
    return upload


def files_of(upload: Upload) -> set[str]:
    return {upload.file.name, upload.thumb.name}


def sweep(capsys, django_capture_on_commit_callbacks, *args: str) -> str:
    """Runs the command (its deletions committed) and returns what it printed."""
    with django_capture_on_commit_callbacks(execute=True):
        call_command("sweep_uploads", *args)
    return capsys.readouterr().out


def test_sweep_deletes_old_orphans_and_keeps_attached_and_recent_uploads(
    make_user, media, capsys, django_capture_on_commit_callbacks
):
    alice, _ = make_user("alice"), make_user("bob")
    old_orphan = image_upload(alice, hours_old=30)
    recent_orphan = image_upload(alice, hours_old=2)
    old_attached = image_upload(alice, hours_old=30)
    message = message_store(sender=alice, send=Send(body="", client_id="c1", to="bob")).message
    Upload.objects.filter(pk=old_attached.pk).update(message_id=message.id)

    out = sweep(capsys, django_capture_on_commit_callbacks)

    assert out.strip() == "1 unattached upload deleted"
    assert set(Upload.objects.values_list("pk", flat=True)) == {recent_orphan.pk, old_attached.pk}
    assert stored_files(media) == files_of(recent_orphan) | files_of(old_attached)
    assert not files_of(old_orphan) & stored_files(media)


def test_sweep_age_is_adjustable(make_user, media, capsys, django_capture_on_commit_callbacks):
    alice = make_user("alice")
    two_hours = image_upload(alice, hours_old=2)
    half_hour = image_upload(alice, hours_old=0.5)

    out = sweep(capsys, django_capture_on_commit_callbacks, "--older-than-hours", "1")

    assert out.strip() == "1 unattached upload deleted"
    assert list(Upload.objects.values_list("pk", flat=True)) == [half_hour.pk]
    assert stored_files(media) == files_of(half_hour)
    assert not files_of(two_hours) & stored_files(media)


def test_sweep_with_nothing_to_do_says_so(make_user, capsys, django_capture_on_commit_callbacks):
    image_upload(make_user("alice"), hours_old=1)
    assert sweep(capsys, django_capture_on_commit_callbacks).strip() == (
        "0 unattached uploads deleted"
    )
    assert Upload.objects.count() == 1


def test_sweep_refuses_a_negative_age():
    with pytest.raises(CommandError, match="older-than-hours"):
        call_command("sweep_uploads", "--older-than-hours", "-1")
