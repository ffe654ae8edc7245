"""Files in messages: which uploads a batch of sends may attach, attaching them, and
letting them go with a deleted message.
"""

from typing import Any

from django.db import IntegrityError
from django.db.models import F

from chat.errors import ChatError, ErrorCode
from chat.models import Upload
from chat.protocol import Send


def uploads_for_batch(*, batch: list[tuple[int, Any, Send]]) -> dict[int, list[Upload] | ChatError]:
    """Finds, and locks until commit, the uploads each send of a batch attaches.

    `batch` holds (index, sender, send). Returns, for each send with attachments,
    its uploads in the order it named them, or the ChatError `bad_attachment` that
    refuses it: an id that is not one of the sender's uploads, is attached already,
    or was claimed by an earlier send of the batch. A refused send claims nothing.
    Runs in the batch's transaction, one query for the whole batch.
    """
    wanted = {key for _, _, send in batch for key in send.attachments}
    if not wanted:
        return {}
    # Locked so that two concurrent sends cannot both attach one upload: the second
    # waits for the first to commit and then reads it attached.
    found = {
        upload.key: upload
        for upload in Upload.objects.select_for_update(of=("self",))
        .filter(key__in=wanted)
        .annotate(
            attached_sender_id=F("message__sender_id"),
            attached_client_id=F("message__client_id"),
        )
    }
    claimed: set[str] = set()
    results: dict[int, list[Upload] | ChatError] = {}
    for index, sender, send in batch:
        if not send.attachments:
            continue
        uploads = [found.get(key) for key in send.attachments]
        if any(
            upload is not None
            and upload.attached_sender_id == sender.pk
            and upload.attached_client_id == send.client_id
            for upload in uploads
        ):
            # Attached to this very send: another process stored it since the batch
            # looked for it. The batch answers that as it answers a client_id clash.
            raise IntegrityError(f"message {send.client_id!r} was stored meanwhile")
        usable = len(set(send.attachments)) == len(send.attachments) and all(
            upload is not None
            and upload.owner_id == sender.pk
            and upload.message_id is None
            and upload.key not in claimed
            for upload in uploads
        )
        if not usable:
            results[index] = ChatError(
                ErrorCode.BAD_ATTACHMENT,
                "an attachment is not one of your uploads, or is attached already",
                client_id=send.client_id,
            )
            continue
        claimed.update(send.attachments)
        results[index] = uploads
    return results


def upload_summary(upload: Upload) -> dict[str, Any]:
    """An upload as clients see it: id, name, size, type, and an image's width and height.

    The upload endpoint answers this; a message stores it with `thumb` added.
    """
    summary: dict[str, Any] = {
        "id": upload.key,
        "name": upload.name,
        "size": upload.size,
        "type": upload.content_type,
    }
    if upload.width is not None and upload.height is not None:
        summary.update(width=upload.width, height=upload.height)
    return summary


def attachment_list(uploads: list[Upload]) -> list[dict[str, Any]]:
    """Describes uploads as a message stores them (`Message.attachments`), in order."""
    return [{**upload_summary(upload), "thumb": bool(upload.thumb)} for upload in uploads]


def uploads_attach(*, attached: list[tuple[int, list[Upload]]]) -> None:
    """Attaches uploads to inserted messages, given as (message id, uploads), in one statement."""
    uploads = []
    for message_id, message_uploads in attached:
        for upload in message_uploads:
            upload.message_id = message_id
            uploads.append(upload)
    if uploads:
        Upload.objects.bulk_update(uploads, ["message"])


def uploads_delete_for_message(*, message_id: int) -> None:
    """Deletes the uploads of a message, in the caller's transaction.

    Their files leave storage once that transaction commits (the Upload model's
    post_delete handling).
    """
    Upload.objects.filter(message_id=message_id).delete()
