"""ASGI entry point: HTTP goes to Django (bodies over their limit refused first),
/ws/chat/ to the chat consumer.

Websocket handshakes must come from a trusted origin (chat/handshake.py) and carry a
session.
"""

import os

from chatsite.django_app import get_django_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
# Django must be set up before the consumers (and their models) are imported. Its
# middleware and views run in one worker thread per request (chatsite/django_app.py).
django_asgi_app = get_django_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from chat.auth import SessionUserMiddlewareStack  # noqa: E402
from chat.handshake import TrustedOriginValidator  # noqa: E402
from chat.handshake_limit import HandshakeLimit  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from chatsite.body_limit import BodyLimit  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files are served by the site itself, so one process is a whole site.
        # A body over its limit is refused before Django reads it to disk.
        "http": BodyLimit(ASGIStaticFilesHandler(django_asgi_app)),
        # In a crowd, handshakes beyond the limit are refused before any work; then
        # the origin is checked: a refused handshake costs no database read.
        "websocket": HandshakeLimit(
            TrustedOriginValidator(SessionUserMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
