"""Refuses an HTTP request body over its limit before the server has read it.

Django's ASGI handler reads a whole body (into a temporary file past 2.5 MB) before
any view runs, so a view's own limit comes after the bytes are already on disk.
This wrapper answers 413 as soon as the declared length, or the bytes received so
far, pass the limit of the request's path: CHAT_MAX_UPLOAD_BYTES for uploads,
Django's DATA_UPLOAD_MAX_MEMORY_SIZE anywhere else, each plus room for the framing.
"""

import json

from django.conf import settings

# Multipart boundaries, part headers and the CSRF field around a file.
FRAMING_BYTES = 64 * 1024
UPLOAD_PATH = "/uploads/"


class BodyTooBig(Exception):
    """The body passed its limit while it was being received."""


def body_limit(path: str) -> int | None:
    """The most bytes a request body to `path` may have; None for no limit."""
    if path == UPLOAD_PATH:
        return settings.CHAT_MAX_UPLOAD_BYTES + FRAMING_BYTES
    if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is None:
        return None
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + FRAMING_BYTES


def _declared_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """ASGI middleware: 413 for a body over its path's limit, before it is read."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        """Passes the request on, counting its body; answers 413 past the limit."""
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit(scope["path"])
        if limit is None:
            return await self.app(scope, receive, send)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            return await _refuse(scope, send)
        received = 0

        async def counted():
            # A chunked body, or one longer than it said: stop at the limit.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooBig
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooBig:
            # Django reads the whole body before it answers, so nothing was sent yet.
            await _refuse(scope, send)


async def _refuse(scope, send) -> None:
    """Sends the 413, as JSON like every other answer of the upload endpoint."""
    if scope["path"] == UPLOAD_PATH:
        limit = settings.CHAT_MAX_UPLOAD_BYTES
        body = {"error": "too_big", "message": f"a file may have at most {limit:,} bytes"}
    else:
        body = {"error": "too_big", "message": "the request body is too large"}
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
