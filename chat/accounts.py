"""Accounts: ending the sockets of a session or of an account on every process,
following a login session to its new key, deleting an account (its messages become
tombstones) and exporting a user's data.
"""

import logging
from datetime import timedelta
from functools import partial
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from chat import groups
from chat.errors import ChatError
from chat.messaging.changes import message_delete, message_react
from chat.models import Message, Upload
from chat.protocol import CloseCode, format_time
from chat.realtime.publish import close_sockets, session_renamed
from chat.selectors import SESSION_MOVED_TO

logger = logging.getLogger(__name__)

# A deleted account keeps its row (so messages, conversations and seq numbers stay
# whole) under this reserved name plus its id; sign-up refuses names with it.
DELETED_USERNAME_PREFIX = "deleted-"
# How long a session left behind by a password change tells where its login moved.
MOVED_SESSION_KEPT = timedelta(minutes=10)
# Rows read per query while deleting or exporting: a long history never sits in memory.
EXPORT_PAGE_SIZE = 500


def session_end(*, session_key: str) -> None:
    """Closes every socket opened with this login session (logout)."""
    close_sockets(groups.session_group(session_key), code=CloseCode.SESSION_ENDED)


def account_end(*, user_id: int) -> None:
    """Closes every socket of a user whose account was deactivated or deleted."""
    close_sockets(groups.user_group(user_id), code=CloseCode.SESSION_ENDED)


def session_key_changed(*, old_key: str, new_key: str) -> None:
    """Moves the sockets of a login session that took a new key, so they stay open.

    The old key is kept for a few minutes as a note of where the login moved (and
    logged in as nobody), so a session check that runs before the sockets hear of
    it moves them too, rather than closing them. Run inside the change's transaction.
    """
    engine = import_module(settings.SESSION_ENGINE)
    store = engine.SessionStore()
    if hasattr(store, "get_model_class"):  # the database session engines
        store.get_model_class().objects.update_or_create(
            session_key=old_key,
            defaults={
                "session_data": store.encode({SESSION_MOVED_TO: new_key}),
                "expire_date": timezone.now() + MOVED_SESSION_KEPT,
            },
        )
    transaction.on_commit(partial(session_renamed, old_key, new_key), robust=True)


def username_is_deleted(username: str) -> bool:
    """Tells whether the username is the placeholder of a deleted account."""
    return username.startswith(DELETED_USERNAME_PREFIX)


def display_name(username: str) -> str:
    """Returns how people see a sender: "deleted user" for a deleted account."""
    return gettext("deleted user") if username_is_deleted(username) else username


def account_delete(*, user_id: int) -> None:
    """Deletes an account: its messages become tombstones, its reactions go, its sockets close.

    The user row stays, deactivated, under the name `deleted-<id>`, with no password,
    e-mail or names, so every conversation keeps its messages and seq numbers.
    """
    user_model = get_user_model()
    user = user_model.objects.get(pk=user_id)
    username = user.get_username()
    # First, no login of the account stays valid (the session hash follows the
    # password), and its open sockets close: nothing new is sent while the rest runs.
    user.set_unusable_password()
    user.save(update_fields=["password"])
    account_end(user_id=user_id)
    # Each message goes through the same deletion as a user's own: a new revision,
    # published live, text, reactions, mentions and files gone.
    sent = Message.objects.filter(sender_id=user_id, deleted=False).order_by("pk")
    for message_id in sent.values_list("pk", flat=True).iterator(chunk_size=EXPORT_PAGE_SIZE):
        try:
            message_delete(user_id=user_id, message_id=message_id, as_staff=True)
        except ChatError:
            continue  # deleted meanwhile
    reacted = Message.objects.exclude(reactions=[]).filter(deleted=False).order_by("pk")
    for message_id, reactions in reacted.values_list("pk", "reactions").iterator(
        chunk_size=EXPORT_PAGE_SIZE
    ):
        for entry in reactions:
            if username in entry["users"]:
                try:
                    message_react(
                        user_id=user_id,
                        message_id=message_id,
                        emoji=entry["emoji"],
                        on=False,
                        as_staff=True,
                    )
                except ChatError:
                    continue  # the message was deleted meanwhile
    with transaction.atomic():
        user = user_model.objects.select_for_update().get(pk=user_id)
        user.username = f"{DELETED_USERNAME_PREFIX}{user_id}"
        user.email = user.first_name = user.last_name = ""
        user.is_active = user.is_staff = user.is_superuser = False
        user.set_unusable_password()
        user.save()  # saved inactive: every socket of the account closes (chat.signals)
        # Files uploaded but never sent leave storage with their rows.
        for upload in Upload.objects.filter(owner_id=user_id, message__isnull=True):
            upload.delete()
    logger.info("account deleted: user_id=%s", user_id)


def account_profile(*, user_id: int) -> dict[str, Any]:
    """Returns the exported profile of a user: username, e-mail, when they joined."""
    user = get_user_model().objects.get(pk=user_id)
    return {
        "username": user.get_username(),
        "email": user.email,
        "date_joined": format_time(user.date_joined),
    }


def account_export_page(
    *, user_id: int, received: bool, after: int, limit: int = EXPORT_PAGE_SIZE
) -> list[dict[str, Any]]:
    """Reads up to `limit` messages the user sent (or direct ones received) after id `after`.

    A room message names its room; a direct message names the other party (`with`).
    """
    if received:
        rows = Message.objects.filter(recipient_id=user_id).exclude(sender_id=user_id)
        party = "sender__username"
    else:
        rows = Message.objects.filter(sender_id=user_id)
        party = "recipient__username"
    rows = (
        rows.filter(pk__gt=after)
        .order_by("pk")
        .values_list(
            "pk",
            "room__name",
            party,
            "seq",
            "sent_at",
            "body",
            "edited_at",
            "deleted",
            "attachments",
        )[:limit]
    )
    page = []
    for pk, room, other, seq, sent_at, body, edited_at, deleted, attachments in rows:
        where = {"room": room} if room is not None else {"with": display_name(other)}
        page.append(
            {
                "id": pk,
                **where,
                "seq": seq,
                "sent_at": format_time(sent_at),
                "body": body,
                "edited_at": format_time(edited_at) if edited_at else None,
                "deleted": deleted,
                "attachments": [stored["name"] for stored in attachments],
            }
        )
    return page
