"""Which request or socket a log line belongs to: the ids, the logging filter that adds
them to every record, and the middleware that sets the request id.
"""

import asyncio
import contextvars
import logging
import re
import uuid
import weakref

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

# The header a front server may set (nginx: $request_id; Caddy: {http.request.uuid})
# so that its log lines and ours share the id; the answer carries it back.
REQUEST_ID_HEADER = "X-Request-ID"
# Taken as given only when short and plain: it goes into every log line.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")

# A request's work runs in its own task and threads, which copy this variable.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# A socket's id belongs to the one task that runs its consumer, not to a context:
# a socket's first frame may start process-wide tasks (fan-out, presence), which
# would copy a context variable and wear that socket's id for ever.
_socket_ids: "weakref.WeakKeyDictionary[asyncio.Task, str]" = weakref.WeakKeyDictionary()


def bind_socket(socket: str) -> None:
    """Names `socket` in every log line of the task that runs it (the consumer's)."""
    task = asyncio.current_task()
    if task is not None:
        _socket_ids[task] = socket


def current_socket_id() -> str | None:
    """Returns the id of the socket whose consumer task is running, if any."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return None
    return _socket_ids.get(task) if task is not None else None


class ContextFilter(logging.Filter):
    """Adds `request_id` and `socket_id` to a record when the event has them."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Copies the ids of the current request or socket onto the record."""
        for name, value in (("request_id", request_id.get()), ("socket_id", current_socket_id())):
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


def incoming_request_id(value: str | None) -> str:
    """Returns the front server's request id if it is a plain token, else a new one."""
    if value and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives each HTTP request an id for its log lines and answers it in `X-Request-ID`."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        """Runs the request with its id set, then names the id in the response."""
        if self.is_async:
            return self._acall(request)
        rid = _start(request)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = rid
        return response

    async def _acall(self, request):
        rid = _start(request)
        response = await self.get_response(request)
        response[REQUEST_ID_HEADER] = rid
        return response


def _start(request) -> str:
    """Sets the request's id for the rest of its handling and returns it."""
    rid = incoming_request_id(request.headers.get(REQUEST_ID_HEADER))
    # Not reset on the way out: Django logs a failed response ("Not Found: ...")
    # after the middleware has returned. Each request under ASGI runs in a task
    # of its own, so the id ends with it; a thread's next request sets its own.
    request_id.set(rid)
    return rid
