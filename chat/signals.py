"""Signal handlers: logout closes the session's sockets; room edits reach open sockets."""

from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from chat import services
from chat.models import Room


@receiver(user_logged_out)
def close_sockets_on_logout(sender, request, user, **kwargs) -> None:
    """Closes every socket of the session being logged out."""
    if request is not None and request.session.session_key:
        services.session_end(session_key=request.session.session_key)


@receiver(post_save, sender=Room)
@receiver(post_delete, sender=Room)
def announce_room_change(sender, **kwargs) -> None:
    """Lets open sockets join a new or renamed room and leave a deleted one."""
    services.rooms_changed()
