"""Signal handlers: logout closes the session's sockets; an account deactivated or deleted
loses every socket; room edits and membership changes reach open sockets; a deleted
upload's files leave storage.
Events go out, and files go, once the change commits.
"""

from functools import partial

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete

from chat import accounts
from chat.files.uploads import upload_files_discard_on_commit
from chat.messaging import read_state
from chat.models import Room, Upload
from chat.realtime import publish


def _after_commit(publish) -> None:
    # A socket that hears of the change re-reads the database, so it must not hear
    # before the commit (the admin saves inside a transaction). The change is made
    # by then: a failed publication is logged, not turned into an error page.
    transaction.on_commit(publish, robust=True)


def close_sockets_on_logout(sender, request, user, **kwargs) -> None:
    """Closes every socket of the session being logged out."""
    if request is not None and request.session.session_key:
        accounts.session_end(session_key=request.session.session_key)


def start_new_user(sender, instance, created, **kwargs) -> None:
    """Starts a new user's read positions at the end of every room."""
    if created:
        read_state.read_start(user_id=instance.pk)


def close_sockets_of_inactive_user(sender, instance, created, **kwargs) -> None:
    """Closes every socket of a user saved as inactive, on every process."""
    if not created and not instance.is_active:
        _after_commit(partial(accounts.account_end, user_id=instance.pk))


def close_sockets_of_deleted_user(sender, instance, **kwargs) -> None:
    """Closes every socket of a deleted user, on every process."""
    _after_commit(partial(accounts.account_end, user_id=instance.pk))


def announce_room_change(sender, **kwargs) -> None:
    """Lets open sockets join a new or renamed room and leave a deleted one."""
    _after_commit(publish.rooms_changed)


def announce_membership_change(sender, action, **kwargs) -> None:
    """Lets open sockets join a private room their user was added to and leave one they left."""
    if action in ("post_add", "post_remove", "post_clear"):
        _after_commit(publish.rooms_changed)


def announce_rooms_of_deleted_user(sender, instance, **kwargs) -> None:
    """A deleted member leaves their private rooms; the last one gone opens the room to all."""
    if instance.private_rooms.exists():
        _after_commit(publish.rooms_changed)


def discard_files_of_deleted_upload(sender, instance, **kwargs) -> None:
    """Deletes a deleted upload's file and thumbnail from storage once the deletion commits."""
    upload_files_discard_on_commit(instance)


def connect() -> None:
    """Connects the handlers above to their signals (called once, from ChatConfig.ready)."""
    user_logged_out.connect(close_sockets_on_logout, dispatch_uid="chat.logout")
    user = settings.AUTH_USER_MODEL
    post_save.connect(start_new_user, sender=user, dispatch_uid="chat.new_user")
    post_save.connect(close_sockets_of_inactive_user, sender=user, dispatch_uid="chat.inactive")
    post_delete.connect(close_sockets_of_deleted_user, sender=user, dispatch_uid="chat.deleted")
    post_save.connect(announce_room_change, sender=Room, dispatch_uid="chat.room.saved")
    post_delete.connect(announce_room_change, sender=Room, dispatch_uid="chat.room.deleted")
    m2m_changed.connect(
        announce_membership_change, sender=Room.members.through, dispatch_uid="chat.room.members"
    )
    pre_delete.connect(
        announce_rooms_of_deleted_user, sender=user, dispatch_uid="chat.room.member_deleted"
    )
    post_delete.connect(
        discard_files_of_deleted_upload, sender=Upload, dispatch_uid="chat.upload.deleted"
    )
