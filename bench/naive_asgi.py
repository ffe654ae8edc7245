"""The naive baseline: a chat consumer shaped like the Channels tutorial's, served by daphne.

One group, `group_send` per message, `json.dumps` per recipient in the handler,
channels-redis' core layer with its default settings (only the Redis address is
set), no authentication, no database.

    BENCH_REDIS_URL=redis://127.0.0.1:6380/0 .venv/bin/daphne -p 8001 bench.naive_asgi:application
"""

import json
import os

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="naive-baseline-has-no-secrets",
    ALLOWED_HOSTS=["*"],
    INSTALLED_APPS=["channels"],
    CHANNEL_LAYERS={
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")]},
        }
    },
)
django.setup()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


class ChatConsumer(AsyncWebsocketConsumer):
    """Every socket is in one room; each `send` frame is relayed to the whole group."""

    room_group_name = "chat_general"

    async def connect(self):
        """Joins the room's group, then accepts the socket."""
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code):
        """Leaves the room's group."""
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data):
        """Relays a `send` frame to everyone in the room."""
        frame = json.loads(text_data)
        await self.channel_layer.group_send(
            self.room_group_name,
            {
                "type": "chat.message",
                "room": frame.get("room"),
                "body": frame.get("body"),
                "client_id": frame.get("client_id"),
            },
        )

    async def chat_message(self, event):
        """Sends one relayed message to this socket."""
        await self.send(
            text_data=json.dumps(
                {
                    "type": "message",
                    "room": event["room"],
                    "body": event["body"],
                    "client_id": event["client_id"],
                }
            )
        )


application = ProtocolTypeRouter(
    {"websocket": URLRouter([path("ws/chat/", ChatConsumer.as_asgi())])}
)
