"""Websocket URL routes of the chat app; any other path is refused with 403."""

from django.urls import path, re_path

from chat.consumers import ChatConsumer
from chat.handshake import refuse_handshake

websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi()),
    # Channels' URLRouter raises for a path it cannot route: a 500 and a traceback
    # in the log for every stray handshake. Refuse those instead.
    re_path(r"", refuse_handshake),
]
