"""Rate limits per user, shared by all of a user's sockets (and processes, with Redis):
messages (CHAT_RATE_LIMIT), reads (CHAT_READ_RATE_LIMIT: history, sync, search),
socket handshakes (CHAT_CONNECT_RATE_LIMIT) and uploads (CHAT_UPLOAD_RATE_LIMIT);
sign-ups per client address (CHAT_SIGNUP_RATE_LIMIT) and password reset mails per
e-mail address (CHAT_RESET_RATE_LIMIT).
"""

import logging
import time

from django.conf import settings
from limits import RateLimitItemPerSecond, storage, strategies
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from chat import metrics
from chat.redis_pool import bounded_pool

logger = logging.getLogger(__name__)

_limiter: MovingWindowRateLimiter | None = None
_items: dict[str, RateLimitItemPerSecond] = {}
_sync_limiter: strategies.MovingWindowRateLimiter | None = None


def _storage() -> Storage:
    # With Redis the count is shared by every process; an outage raises StorageError.
    if settings.REDIS_URL:
        return RedisStorage(
            f"async+{settings.REDIS_URL}",
            implementation="redispy",
            wrap_exceptions=True,
            connection_pool=bounded_pool(settings.REDIS_URL),
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
    metrics.RATE_LIMITED.labels(kind).inc()
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


def _sync_check(kind: str, rate: tuple[int, int] | None, key: str) -> float | None:
    """Counts one `kind` action of `key` from a plain Django view; seconds to wait when over."""
    global _sync_limiter
    if rate is None:
        return None
    if _sync_limiter is None:
        # Views are synchronous, so these counts use the synchronous API.
        shared = settings.REDIS_URL
        backend = (
            storage.RedisStorage(shared, wrap_exceptions=True)
            if shared
            else storage.MemoryStorage()
        )
        _sync_limiter = strategies.MovingWindowRateLimiter(backend)
    item = RateLimitItemPerSecond(*rate)
    try:
        if _sync_limiter.hit(item, kind, key):
            return None
        stats = _sync_limiter.get_window_stats(item, kind, key)
    except StorageError as exc:
        # A guard, not a dependency: with Redis away, the view stays open.
        logger.warning("%s limit not counted: %s", kind, exc.__class__.__name__)
        return None
    metrics.RATE_LIMITED.labels(kind).inc()
    return max(stats.reset_time - time.time(), 1.0)


def signup_rate_check(*, address: str) -> float | None:
    """Counts one sign-up attempt from `address`; returns seconds to wait when over, else None."""
    return _sync_check("signup", settings.CHAT_SIGNUP_RATE_LIMIT, address)


def reset_rate_check(*, email: str) -> float | None:
    """Counts one password reset request for `email`; seconds to wait when over, else None."""
    return _sync_check("reset", settings.CHAT_RESET_RATE_LIMIT, email.strip().casefold())


def upload_rate_check(*, user_id: int) -> float | None:
    """Counts one upload of the user; returns seconds to wait when over the limit, else None."""
    return _sync_check("uploads", settings.CHAT_UPLOAD_RATE_LIMIT, str(user_id))


def reset_rate_limits() -> None:
    """Forgets every count (tests, reconfiguration)."""
    global _limiter, _sync_limiter
    _limiter = None
    _items.clear()
    _sync_limiter = None
