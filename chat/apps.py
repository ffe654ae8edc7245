"""App configuration: every listener of the chat is wired here, once Django is ready.

The real-time plumbing knows no feature; what it calls back (who hears a layer
reconnect, what reads the room list, what summarises a presence burst, what
checks sessions) is set here, in one place, rather than by import side effects.
"""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChatConfig(AppConfig):
    """Registers the chat app, its signal handlers and its real-time listeners."""

    name = "chat"
    verbose_name = _("Chat")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connects signals, and hands the plumbing the features' callbacks."""
        from chat import presence, rooms, selectors, signals
        from chat.db import db_call
        from chat.realtime import fanout, layers, sockets

        signals.connect()
        # A reconnect of the layer's subscription may have lost live frames.
        layers.on_layer_reconnect(sockets.resync_all)
        # Users found online or gone by a heartbeat's sweep are announced.
        presence.on_presence_change(presence.announce)
        # A burst of presence frames becomes one `presence_batch` per window for a
        # socket that takes batches, and one online list for any other.
        fanout.on_burst(
            presence.PRESENCE_BURST, presence.online_list_text, combine=presence.presence_batch
        )
        # Every room with its members: each socket picks the rooms its user may see.
        fanout.set_room_reader(db_call(rooms.room_access, concurrent=True))
        sockets.set_session_check(
            lambda sessions: db_call(selectors.sessions_ended, concurrent=True)(sessions=sessions)
        )
