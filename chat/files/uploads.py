"""Uploads: storing a file (its type read from its bytes, images re-encoded), who may
fetch it, and removing files: with their row (staff), or as old orphans.
"""

import secrets
import unicodedata
from datetime import timedelta
from functools import partial
from pathlib import PurePosixPath
from typing import IO

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.text import get_valid_filename
from django.utils.translation import gettext, ngettext

from chat.files.images import ImageRefused, image_prepare
from chat.files.types import EXECUTABLE_TYPES, RASTER_EXTENSIONS, RASTER_TYPES, type_sniff
from chat.messaging.changes import message_attachment_remove
from chat.messaging.reads import messages_visible_to
from chat.models import Message, Upload

# The longest name kept for display (the column's size).
MAX_NAME = 255
# The longest file name part of a storage name: the prefix and key take the rest.
_MAX_STORED_NAME = 180
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
}
# Orphans are deleted this many at a time, each batch in its own transaction.
_SWEEP_BATCH = 500


class UploadRefused(Exception):
    """An upload the rules refuse (`empty`, `too_big`, `bad_type`); nothing was stored."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def upload_limit_text() -> str:
    """Says the size limit of one file in the active language, with its plural form."""
    limit = settings.CHAT_MAX_UPLOAD_BYTES
    text = ngettext(
        "a file may have at most %(count)s byte", "a file may have at most %(count)s bytes", limit
    )
    return text % {"count": number_format(limit, force_grouping=True)}


def upload_store(*, owner_id: int, file: IO[bytes], name: str, size: int) -> Upload:
    """Stores an uploaded file for its owner and returns the new, unattached Upload.

    The type comes from the bytes. Raster images are decoded, turned upright and
    stored re-encoded without metadata, with a thumbnail. Raises UploadRefused.
    """
    if size == 0:
        raise UploadRefused("empty", gettext("the file is empty"))
    if size > settings.CHAT_MAX_UPLOAD_BYTES:
        raise UploadRefused("too_big", upload_limit_text())
    display = upload_name_clean(name)
    mime = type_sniff(file)
    if mime in EXECUTABLE_TYPES:
        raise UploadRefused("bad_type", gettext("programs are not accepted"))
    image = None
    if mime in RASTER_TYPES:
        try:
            image = image_prepare(file, max_pixels=settings.CHAT_MAX_IMAGE_PIXELS)
        except ImageRefused as refused:
            raise UploadRefused(refused.code, refused.message) from None
    elif PurePosixPath(display.lower()).suffix in RASTER_EXTENSIONS:
        raise UploadRefused("bad_type", gettext("the file is named as an image but is not one"))

    key = secrets.token_urlsafe(16)
    upload = Upload(key=key, owner_id=owner_id, name=display)
    folder = timezone.now().strftime("%Y/%m")
    if image is None:
        upload.content_type, upload.size = mime, size
        file.seek(0)
        content = File(file)
        stored = _stored_name(display)
    else:
        upload.content_type, upload.size = image.type, len(image.data)
        upload.width, upload.height = image.width, image.height
        content = ContentFile(image.data)
        stored = PurePosixPath(_stored_name(display)).stem + _EXTENSIONS[image.type]
    # Storages that record a type (S3) take it from here, not from the name or the browser.
    content.content_type = upload.content_type
    try:
        upload.file.save(f"uploads/{folder}/{key}-{stored}", content, save=False)
        if image is not None:
            thumb = ContentFile(image.thumb)
            thumb.content_type = "image/webp"
            upload.thumb.save(f"thumbs/{folder}/{key}.webp", thumb, save=False)
        upload.save()
    except BaseException:
        # Nothing of a failed upload stays in storage.
        upload_files_discard(names=[f.name for f in (upload.file, upload.thumb) if f])
        raise
    return upload


def upload_name_clean(name: str) -> str:
    """Returns a file name fit to show and offer: no folders, no control characters, short."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join(name.split())  # tabs, newlines and runs of spaces become one space
    # Cc: control characters; Cf: format characters such as right-to-left overrides,
    # which could make "gpj.exe" read as "exe.jpg".
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    name = name.strip()
    if name in ("", ".", ".."):
        return "file"
    return _shortened(name, MAX_NAME)


def _stored_name(display: str) -> str:
    """The file name part of a storage name: ASCII letters, digits, '-', '_' and '.'."""
    ascii_name = unicodedata.normalize("NFKD", display).encode("ascii", "ignore").decode()
    try:
        safe = get_valid_filename(ascii_name)
    except SuspiciousFileOperation:
        safe = "file"
    return _shortened(safe, _MAX_STORED_NAME)


def _shortened(name: str, limit: int) -> str:
    """Cuts a name to `limit` characters, keeping a short extension."""
    if len(name) <= limit:
        return name
    suffix = PurePosixPath(name).suffix
    suffix = suffix if len(suffix) <= 16 else ""
    return name[: limit - len(suffix)] + suffix


def upload_visible(*, key: str, user_id: int) -> Upload | None:
    """Finds the upload `key` if the user may fetch it, else None.

    Its owner may fetch it until it is attached; after that, whoever may see its
    message, as long as the message is not deleted.
    """
    messages = messages_visible_to(user_id=user_id).filter(deleted=False)
    return (
        Upload.objects.filter(key=key)
        .filter(Q(owner_id=user_id, message__isnull=True) | Q(message__in=messages))
        .first()
    )


def upload_get(*, key: str) -> Upload | None:
    """Finds the upload `key`, whoever may see it (for staff)."""
    return Upload.objects.filter(key=key).first()


def upload_files_discard(*, names: list[str]) -> None:
    """Deletes these names (files and thumbnails) from the uploads' storage."""
    storage = Upload._meta.get_field("file").storage
    for name in names:
        storage.delete(name)


def upload_files_discard_on_commit(upload: Upload) -> None:
    """Deletes an upload's files once the deletion of its row commits (never if it rolls back)."""
    names = [f.name for f in (upload.file, upload.thumb) if f]
    if names:
        transaction.on_commit(partial(upload_files_discard, names=names), robust=True)


def upload_delete(*, upload_id: int, by_user_id: int | None = None) -> None:
    """Deletes one upload; if it is attached, its entry leaves the message's `attachments`.

    With `by_user_id` (staff in the admin) an attached file is taken off its message
    as a change of the message, once the caller's transaction commits: a new revision
    that reaches open pages live. Without it only the JSON changes, and open pages
    keep showing the entry (now answered 404) until they load the message again.
    """
    attached = Upload.objects.filter(pk=upload_id, message__isnull=False)
    if by_user_id is not None:
        found = attached.values_list("message_id", "key").first()
        if found is not None:
            remove = partial(
                message_attachment_remove,
                user_id=by_user_id,
                message_id=found[0],
                key=found[1],
                as_staff=True,
            )
            transaction.on_commit(remove, robust=True)
            return
    message_id = Upload.objects.filter(pk=upload_id).values_list("message_id", flat=True).first()
    with transaction.atomic():
        # The message first: the chat's own deletions lock a message, then its uploads.
        message = None
        if message_id is not None:
            message = Message.objects.select_for_update().filter(pk=message_id).first()
        upload = Upload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None:
            return
        if upload.message_id is not None:
            if message is None or message.pk != upload.message_id:
                message = Message.objects.select_for_update().get(pk=upload.message_id)
            kept = [entry for entry in message.attachments if entry.get("id") != upload.key]
            if kept != message.attachments:
                message.attachments = kept
                message.save(update_fields=["attachments"])
        upload.delete()


def uploads_sweep(*, older_than: timedelta) -> int:
    """Deletes uploads never attached to a message and older than `older_than`; returns how many."""
    cutoff = timezone.now() - older_than
    total = 0
    while True:
        with transaction.atomic():
            # Locked, so an upload being attached right now is either attached or gone.
            ids = list(
                Upload.objects.select_for_update()
                .filter(message__isnull=True, created_at__lt=cutoff)
                .order_by("pk")
                .values_list("pk", flat=True)[:_SWEEP_BATCH]
            )
            if not ids:
                return total
            deleted, _ = Upload.objects.filter(pk__in=ids).delete()
        total += deleted
