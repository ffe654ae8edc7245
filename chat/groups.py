"""Channel-layer group names: one place, so publishers and sockets agree."""

# Every socket joins this group; it carries presence and room-list changes.
EVERYONE = "everyone"


def room_group(name: str) -> str:
    """Names the group of a room's sockets."""
    return f"room.{name}"


def user_group(user_id: int) -> str:
    """Names the group of all sockets of one user (direct messages arrive here)."""
    return f"user.{user_id}"


def session_group(session_key: str) -> str:
    """Names the group of the sockets opened with one login session."""
    return f"session.{session_key}"
