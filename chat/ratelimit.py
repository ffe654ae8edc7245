"""Rate limits per user, shared by all of a user's sockets (and processes, with Redis):
messages (CHAT_RATE_LIMIT), reads (CHAT_READ_RATE_LIMIT: history, sync, search) and
socket handshakes (CHAT_CONNECT_RATE_LIMIT); and sign-ups per client address
(CHAT_SIGNUP_RATE_LIMIT).
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
_items: dict[str, RateLimitItemPerSecond] = {}
_signup_limiter: strategies.MovingWindowRateLimiter | None = None


def _storage() -> Storage:
    # With Redis the count is shared by every process; an outage raises StorageError.
    if settings.REDIS_URL:
        return RedisStorage(
            f"async+{settings.REDIS_URL}", implementation="redispy", wrap_exceptions=True
        )
    return MemoryStorage()


async def _check(kind: str, rate: tuple[int, int] | None, user_id: int) -> float | None:
    """Counts one `kind` action of the user; returns seconds to wait when over `rate`."""
    global _limiter
    if rate is None:
        return None
    if _limiter is None:
        _limiter = MovingWindowRateLimiter(_storage())
    item = _items.get(kind)
    if item is None or (item.amount, item.multiples) != rate:
        item = _items[kind] = RateLimitItemPerSecond(*rate)
    key = str(user_id)
    if await _limiter.hit(item, kind, key):
        return None
    stats = await _limiter.get_window_stats(item, kind, key)
    return round(max(stats.reset_time - time.time(), 0.1), 1)


async def message_rate_check(*, user_id: int) -> float | None:
    """Counts one message of the user; returns seconds to wait when over the limit, else None."""
    return await _check("messages", settings.CHAT_RATE_LIMIT, user_id)


async def read_rate_check(*, user_id: int) -> float | None:
    """Counts one read (history, sync, search) of the user; seconds to wait when over, else None."""
    return await _check("reads", settings.CHAT_READ_RATE_LIMIT, user_id)


async def connect_rate_check(*, user_id: int) -> float | None:
    """Counts one socket handshake of the user; seconds to wait when over, else None."""
    return await _check("connects", settings.CHAT_CONNECT_RATE_LIMIT, user_id)


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
    global _limiter, _signup_limiter
    _limiter = None
    _items.clear()
    _signup_limiter = None
