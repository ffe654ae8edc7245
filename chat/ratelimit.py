"""The per-user message rate limit (CHAT_RATE_LIMIT), shared by all of a user's sockets."""

import time

from django.conf import settings
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

_limiter: MovingWindowRateLimiter | None = None
_item: RateLimitItemPerSecond | None = None


def _storage() -> Storage:
    # With Redis the count is shared by every process; an outage raises StorageError.
    if settings.REDIS_URL:
        return RedisStorage(
            f"async+{settings.REDIS_URL}", implementation="redispy", wrap_exceptions=True
        )
    return MemoryStorage()


async def message_rate_check(*, user_id: int) -> float | None:
    """Counts one message of the user; returns seconds to wait when over the limit, else None."""
    global _limiter, _item
    if settings.CHAT_RATE_LIMIT is None:
        return None
    if _limiter is None:
        amount, seconds = settings.CHAT_RATE_LIMIT
        _item = RateLimitItemPerSecond(amount, seconds)
        _limiter = MovingWindowRateLimiter(_storage())
    key = str(user_id)
    if await _limiter.hit(_item, "messages", key):
        return None
    stats = await _limiter.get_window_stats(_item, "messages", key)
    return round(max(stats.reset_time - time.time(), 0.1), 1)


def reset_rate_limits() -> None:
    """Forgets every count (tests, reconfiguration)."""
    global _limiter, _item
    _limiter = None
    _item = None
