"""Errors the chat's rules raise, and what an outage looks like.

Services and selectors raise `ChatError`; each edge answers it its own way (the
socket with an `error` frame, a view with a 4xx), so every caller reuses the rules.
"""

from datetime import datetime
from enum import StrEnum

from django.db import DatabaseError
from limits.errors import StorageError
from redis.exceptions import RedisError

# What a dependency outage looks like: the database, Redis, the network.
OUTAGES = (DatabaseError, RedisError, StorageError, OSError)


class ErrorCode(StrEnum):
    """Why a request was refused; the `code` of an `error` frame."""

    BAD_FRAME = "bad_frame"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    UNKNOWN_USER = "unknown_user"
    UNKNOWN_ROOM = "unknown_room"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    # An attachment of a `send` that is not one of the sender's unattached uploads.
    BAD_ATTACHMENT = "bad_attachment"
    # A `send`, `edit` or `react` of a user staff muted; the frame tells `until` when.
    MUTED = "muted"


class ChatError(Exception):
    """A request the rules refuse; nothing of it was stored."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        *,
        client_id: str | None = None,
        retry_after: float | None = None,
        message_id: int | None = None,
        until: datetime | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.client_id = client_id
        self.retry_after = retry_after
        self.message_id = message_id
        self.until = until


class AccountEnded(Exception):
    """The acting user's account was deactivated or deleted: nothing is stored.

    The socket edge ends that socket with close code 4001 (session ended).
    """
