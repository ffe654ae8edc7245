"""Background loops of a server process that must outlive any one failure.

A heartbeat or a watcher that dies on its first error leaves the process
quietly broken (users expire while connected, ended sessions stay open), so each
loop here logs a failed round, waits a little longer, and goes on.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

# What an outage of a dependency looks like from a loop: logged without a traceback.
_EXPECTED = (OSError, ConnectionError)


async def repeat(
    step: Callable[[], Awaitable[None]],
    *,
    every: float,
    name: str,
    max_backoff: float | None = None,
    expected: tuple[type[BaseException], ...] = _EXPECTED,
) -> None:
    """Awaits `step` every `every` seconds for ever; a failed round is logged and retried.

    After a failure the wait doubles, up to `max_backoff` (default: `every` * 8),
    and returns to `every` after the next success. Only cancellation stops it.
    """
    limit = every * 8 if max_backoff is None else max_backoff
    delay = every
    while True:
        await asyncio.sleep(delay)
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except expected as exc:
            logger.warning("%s failed: %s; retrying", name, exc.__class__.__name__)
            delay = min(delay * 2, max(limit, every))
        except Exception:
            logger.exception("%s failed; retrying", name)
            delay = min(delay * 2, max(limit, every))
        else:
            delay = every
