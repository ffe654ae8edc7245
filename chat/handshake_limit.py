"""Shedding load in a crowd of handshakes: at most CHAT_MAX_HANDSHAKES under way at once.

A deploy or a crash drops every socket, and every page comes back within seconds.
A handshake reads the session, the user and the greeting and joins presence; with
thousands under way at once each one took longer than a client waits, so the
server's work was wasted and almost nobody got in (10,000 clients got in at 47 a
second, where eight at a time get in at 260; docs/performance.md). Beyond the
limit a handshake is refused before any of that work: with HTTP 503 and
`Retry-After` where the server can send a response to a websocket handshake
(uvicorn), else as any refused handshake (403). A page sees a failed connection
and tries again after its back-off with jitter, the terminal client likewise, and
the server keeps working at its best rate.

Under uvicorn the server takes connections off its listening socket only while
`room()` leaves room for them (chatsite/accept.py), so the rest wait in the kernel's
queue instead, and a refusal here is for the few that slip past.

The slot is given back when the socket is accepted or refused: the consumer calls
`handshake_done(scope)`, and the end of the connection gives it back in any case.
The outgoing `send` is passed on untouched, so frames keep the server's own path.
"""

import logging
import weakref

from django.conf import settings

from chat import metrics

logger = logging.getLogger(__name__)

_DONE = "chat.handshake_done"
# How long a refused client is asked to wait, in seconds (clients add their jitter).
RETRY_AFTER_SECONDS = 1


# Every limit of this process (one, in the server): the limit is per process.
_limits: "weakref.WeakSet[HandshakeLimit]" = weakref.WeakSet()


def room() -> int | None:
    """How many more handshakes this process may start now (None: no limit); the
    server takes no more connections off its queue than this (chatsite/accept.py)."""
    limit = settings.CHAT_MAX_HANDSHAKES
    if limit is None:
        return None
    return max(0, limit - sum(each.under_way for each in _limits))


def handshake_done(scope) -> None:
    """Gives back this socket's handshake slot (accepted or refused); safe to call twice."""
    done = scope.get(_DONE)
    if done is not None:
        done()


class HandshakeLimit:
    """ASGI middleware: refuses websocket handshakes while CHAT_MAX_HANDSHAKES are under way."""

    def __init__(self, app) -> None:
        self.app = app
        self.under_way = 0
        _limits.add(self)

    async def __call__(self, scope, receive, send):
        """Runs the application for a handshake with a free slot; refuses it otherwise."""
        limit = settings.CHAT_MAX_HANDSHAKES
        if limit is None:
            return await self.app(scope, receive, send)
        if self.under_way >= limit:
            metrics.RATE_LIMITED.labels("handshakes").inc()
            logger.info("socket refused: %d handshakes under way", self.under_way)
            return await _refuse(scope, receive, send)
        self.under_way += 1
        slot = [True]

        def done() -> None:
            if slot:
                slot.clear()
                self.under_way -= 1

        try:
            return await self.app(dict(scope, **{_DONE: done}), receive, send)
        finally:
            done()


async def _refuse(scope, receive, send) -> None:
    await receive()  # websocket.connect
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 503,
                "headers": [
                    (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                    (b"content-type", b"text/plain; charset=utf-8"),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"busy, try again\n"})
    else:
        await send({"type": "websocket.close"})
