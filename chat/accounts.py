"""Ending the sockets of a login session or of an account, on every process."""

from chat import groups
from chat.protocol import CloseCode
from chat.realtime.publish import close_sockets


def session_end(*, session_key: str) -> None:
    """Closes every socket opened with this login session (logout)."""
    close_sockets(groups.session_group(session_key), code=CloseCode.SESSION_ENDED)


def account_end(*, user_id: int) -> None:
    """Closes every socket of a user whose account was deactivated or deleted."""
    close_sockets(groups.user_group(user_id), code=CloseCode.SESSION_ENDED)
