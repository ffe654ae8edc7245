"""Signal handlers: logout closes the session's sockets; an account deactivated or deleted
loses every socket; room edits reach open sockets. Events go out once the change commits.
"""

from functools import partial

from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from chat import services
from chat.models import Room


def _after_commit(publish) -> None:
    # A socket that hears of the change re-reads the database, so it must not hear
    # before the commit (the admin saves inside a transaction). The change is made
    # by then: a failed publication is logged, not turned into an error page.
    transaction.on_commit(publish, robust=True)


@receiver(user_logged_out)
def close_sockets_on_logout(sender, request, user, **kwargs) -> None:
    """Closes every socket of the session being logged out."""
    if request is not None and request.session.session_key:
        services.session_end(session_key=request.session.session_key)


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def close_sockets_of_inactive_user(sender, instance, created, **kwargs) -> None:
    """Closes every socket of a user saved as inactive, on every process."""
    if not created and not instance.is_active:
        _after_commit(partial(services.account_end, user_id=instance.pk))


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def close_sockets_of_deleted_user(sender, instance, **kwargs) -> None:
    """Closes every socket of a deleted user, on every process."""
    _after_commit(partial(services.account_end, user_id=instance.pk))


@receiver(post_save, sender=Room)
@receiver(post_delete, sender=Room)
def announce_room_change(sender, **kwargs) -> None:
    """Lets open sockets join a new or renamed room and leave a deleted one."""
    _after_commit(services.rooms_changed)
