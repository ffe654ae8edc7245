"""Django's ASGI handler, with a request's whole middleware chain and view in one thread.

Django's own handler runs each middleware in async mode. Django's built-in middleware
(and most of a site's) is plain sync code, so Django moves to a worker thread and back
for each middleware's request and response half, and again for the view: 21 moves for
one /healthz. Each move costs a thread hand-off, and each move back waits for a turn
of an event loop that thousands of sockets keep busy. Here the chain is built in
Django's sync mode and called in one move, as under WSGI. A request now crosses to a
thread three times: the `request_started` receivers, the chain, and the response's
close; a small page costs half the CPU (docs/performance.md).
"""

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class OneThreadASGIHandler(ASGIHandler):
    """Django's ASGIHandler, running the middleware chain and the view in one worker thread.

    Async views still work: Django's sync chain runs them with `async_to_sync`, back
    on the event loop, as under WSGI.
    """

    def load_middleware(self, is_async: bool = False) -> None:
        """Builds the middleware chain in Django's sync mode, whatever the caller asked."""
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        """Runs the sync chain for `request` in the request's worker thread."""
        # thread_sensitive: the thread of this request's ThreadSensitiveContext,
        # which ASGIHandler opens per request, so requests do not queue behind each other.
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_django_application() -> OneThreadASGIHandler:
    """Sets Django up and returns its ASGI application (as `get_asgi_application`)."""
    django.setup(set_prefix=False)
    return OneThreadASGIHandler()
