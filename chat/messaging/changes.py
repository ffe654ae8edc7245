"""Changing a stored message: editing its body, deleting it, reacting to it.

Each change takes the next revision and is published, under the same order lock
as new messages, so revisions reach every socket in order and `sync since` a
revision misses nothing. The sockets that may see the message get its frame in
its new state; nothing else is sent.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from chat.errors import OUTAGES, AccountEnded, ChatError, ErrorCode
from chat.messaging import reads
from chat.messaging.attachments import uploads_delete_for_message
from chat.messaging.events import message_events
from chat.messaging.mentions import mentioned_users
from chat.messaging.search import search_index_update
from chat.messaging.store import newest_noted, order_lock, take_revs
from chat.models import Message, ModerationAction
from chat.moderation import mute_refuse, record
from chat.protocol import StoredMessage
from chat.realtime.publish import publish_many

logger = logging.getLogger(__name__)

# At most this many different emoji on one message.
MAX_REACTIONS = 20


@dataclass(frozen=True, slots=True)
class Change:
    """A message after a change: whether anything changed, and whether that was published.

    A change is stored even when publishing it failed (Redis away): the sockets that
    missed it reconnect and `sync`, and the asking socket is answered directly.
    """

    message: StoredMessage
    changed: bool
    published: bool = False


def message_edit(*, user_id: int, message_id: int, body: str, as_staff: bool = False) -> Change:
    """Replaces the body of the user's own message (staff in the admin: any message).

    An empty body stands only on a message with files, which still say something.
    """

    def edit(message: Message) -> bool:
        _refuse_unless_changeable(message, user_id, as_staff=as_staff)
        mute_refuse(user_id=user_id, room_id=message.room_id, message_id=message.pk)
        if not body and not message.attachments:
            raise ChatError(ErrorCode.EMPTY, "the message is empty", message_id=message.pk)
        if message.body == body:
            return False
        mentioned = mentioned_users([body])[0]
        message.body = body
        message.edited_at = timezone.now()
        message.mentioned = list(mentioned)
        message.mentions.set(mentioned.values())
        search_index_update(messages=[(message.pk, body)])  # the new words, not the old
        return True

    return _change(user_id=user_id, message_id=message_id, apply=edit, as_staff=as_staff)


def message_delete(*, user_id: int, message_id: int, as_staff: bool = False) -> Change:
    """Deletes a message, leaving a tombstone: its id and seq stay, its text and files are gone.

    The user's own message; with `as_staff`, anyone's.
    """

    def delete(message: Message) -> bool:
        _refuse_unless_changeable(message, user_id, as_staff=as_staff)
        message.deleted = True
        message.body = ""
        message.reactions = []
        message.mentioned = []
        message.mentions.clear()
        search_index_update(messages=[(message.pk, "")])  # the text leaves the index too
        message.attachments = []
        uploads_delete_for_message(message_id=message.pk)
        if message.sender_id != user_id:
            # Only staff get this far with someone else's message: a moderation action.
            record(
                kind=ModerationAction.Kind.DELETE,
                actor=get_user_model().objects.get(pk=user_id),
                target_name=message.sender.get_username() if message.sender_id else "",
                room=message.room,
                message_id=message.pk,
            )
        return True

    return _change(user_id=user_id, message_id=message_id, apply=delete, as_staff=as_staff)


def message_react(
    *, user_id: int, message_id: int, emoji: str, on: bool, as_staff: bool = False
) -> Change:
    """Adds (`on`) or removes the user's reaction `emoji`; a change that changes nothing is free.

    `as_staff` reaches a message the user no longer sees (an account being deleted).
    """

    def react(message: Message) -> bool:
        # Read here, once the account is known to exist: a deleted one ends the socket.
        username = get_user_model().objects.values_list("username", flat=True).get(pk=user_id)
        if message.deleted:
            raise ChatError(
                ErrorCode.FORBIDDEN, "a deleted message takes no reactions", message_id=message.pk
            )
        mute_refuse(user_id=user_id, room_id=message.room_id, message_id=message.pk)
        reactions = [dict(entry, users=list(entry["users"])) for entry in message.reactions]
        entry = next((e for e in reactions if e["emoji"] == emoji), None)
        if on:
            if entry is None:
                if len(reactions) >= MAX_REACTIONS:
                    raise ChatError(
                        ErrorCode.FORBIDDEN,
                        f"a message takes at most {MAX_REACTIONS} different reactions",
                        message_id=message.pk,
                    )
                entry = {"emoji": emoji, "users": []}
                reactions.append(entry)
            if username in entry["users"]:
                return False
            entry["users"].append(username)
        else:
            if entry is None or username not in entry["users"]:
                return False
            entry["users"].remove(username)
            if not entry["users"]:
                reactions.remove(entry)
        message.reactions = reactions
        return True

    return _change(user_id=user_id, message_id=message_id, apply=react, as_staff=as_staff)


def _refuse_unless_changeable(message: Message, user_id: int, *, as_staff: bool) -> None:
    if message.deleted:
        raise ChatError(ErrorCode.FORBIDDEN, "the message is deleted", message_id=message.pk)
    if message.sender_id != user_id and not as_staff:
        raise ChatError(ErrorCode.FORBIDDEN, "the message is not yours", message_id=message.pk)


def _change(
    *, user_id: int, message_id: int, apply: Callable[[Message], bool], as_staff: bool = False
) -> Change:
    """Applies one change to a message the user may see; publishes it if anything changed.

    Runs where database calls run (a worker thread, or a synchronous view). Staff
    changes reach any message; everyone else only a message they may see.
    """
    change = None
    try:
        with order_lock():
            with transaction.atomic():
                if not get_user_model().objects.filter(pk=user_id, is_active=True).exists():
                    raise AccountEnded(f"the account of user {user_id} ended")
                message = _locked(user_id, message_id, as_staff=as_staff)
                changed = apply(message)
                if changed:
                    message.rev = take_revs(1)
                    message.save(
                        update_fields=[
                            "body",
                            "edited_at",
                            "deleted",
                            "reactions",
                            "mentioned",
                            "attachments",
                            "rev",
                        ]
                    )
                    newest_noted(message)
            result = reads.stored(message)
            published = changed and _publish(result, message.sender_id, message.recipient_id)
            change = Change(message=result, changed=changed, published=published)
    except OUTAGES as outage:
        if change is None:
            raise
        # Stored (and published); only giving the lock back failed (a lost connection
        # takes its session lock with it). `unavailable` would say it was not stored.
        logger.warning("releasing the message order lock failed: %s", type(outage).__name__)
    return change


def _publish(message: StoredMessage, sender_id: int, recipient_id: int | None) -> bool:
    """Publishes a changed message to every socket that may see it; False if Redis refused."""
    try:
        async_to_sync(publish_many)(message_events(message, sender_id, recipient_id))
    except (RedisError, OSError) as exc:
        # Stored all the same: every subscriber that lost Redis reconnects, closes its
        # sockets with 4012, and their clients fetch the change with `sync since`.
        logger.warning("publishing the change of message %s failed: %s", message.id, exc)
        return False
    return True


def _locked(user_id: int, message_id: int, *, as_staff: bool) -> Message:
    if not as_staff:
        return reads.message_get(user_id=user_id, message_id=message_id)
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("room", "sender", "recipient")
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        raise ChatError(ErrorCode.NOT_FOUND, f"no message {message_id}", message_id=message_id)
    return message


def message_attachment_remove(
    *, user_id: int, message_id: int, key: str, as_staff: bool = False
) -> Change:
    """Takes one file off a message (its sender's; with `as_staff`, anyone's) and deletes it.

    The message takes a new revision, so open pages drop the file live; a message
    left with neither text nor files becomes a tombstone, as if deleted.
    """

    def remove(message: Message) -> bool:
        _refuse_unless_changeable(message, user_id, as_staff=as_staff)
        kept = [entry for entry in message.attachments if entry.get("id") != key]
        if kept == message.attachments:
            return False
        message.attachments = kept
        message.uploads.filter(key=key).delete()
        if not kept and not message.body:
            message.deleted = True
            message.reactions = []
        return True

    return _change(user_id=user_id, message_id=message_id, apply=remove, as_staff=as_staff)
