"""Rate limits: messages per user (CHAT_RATE_LIMIT), shared by all of a user's sockets,
and sign-ups per client address (CHAT_SIGNUP_RATE_LIMIT).
"""

import logging
import time

from django.conf import settings
from limits import RateLimitItemPerSecond, storage, strategies
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

logger = logging.getLogger(__name__)

_limiter: MovingWindowRateLimiter | None = None
_item: RateLimitItemPerSecond | None = None
_signup_limiter: strategies.MovingWindowRateLimiter | None = None


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


def signup_rate_check(*, address: str) -> float | None:
    """Counts one sign-up attempt from `address`; returns seconds to wait when over, else None."""
    global _signup_limiter
    if settings.CHAT_SIGNUP_RATE_LIMIT is None:
        return None
    if _signup_limiter is None:
        # Sign-up is a plain Django view, so this one uses the synchronous API.
        shared = settings.REDIS_URL
        backend = (
            storage.RedisStorage(shared, wrap_exceptions=True)
            if shared
            else storage.MemoryStorage()
        )
        _signup_limiter = strategies.MovingWindowRateLimiter(backend)
    item = RateLimitItemPerSecond(*settings.CHAT_SIGNUP_RATE_LIMIT)
    try:
        if _signup_limiter.hit(item, "signup", address):
            return None
        stats = _signup_limiter.get_window_stats(item, "signup", address)
    except StorageError as exc:
        # A guard, not a dependency: with Redis away, sign-up stays open.
        logger.warning("sign-up limit not counted: %s", exc.__class__.__name__)
        return None
    return max(stats.reset_time - time.time(), 1.0)


def reset_rate_limits() -> None:
    """Forgets every count (tests, reconfiguration)."""
    global _limiter, _item, _signup_limiter
    _limiter = None
    _item = None
    _signup_limiter = None
