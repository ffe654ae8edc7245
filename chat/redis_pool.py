"""Connections to Redis for the site's own commands (presence, rate limits): a bounded pool.

redis-py's default pool opens one more connection whenever every open one is busy,
and keeps it. In a storm (a deploy drops every socket at once, and they all come
back) thousands of handshakes and disconnects run at once, so the pool opened
thousands of connections, each with its TCP handshake, its health check and
redis-py's setup (which reads the package's metadata for every new connection):
more work than the commands themselves. Redis runs commands one at a time, so a
few connections carry as many commands; a caller waits for a free one instead.
"""

from redis.asyncio import BlockingConnectionPool

# Connections per pool and process: enough to keep Redis busy while others are
# read or written, and few enough that a storm never opens more.
MAX_CONNECTIONS = 16
# How long a command waits for a free connection before it fails like an outage
# (redis.exceptions.ConnectionError).
WAIT_SECONDS = 5.0


def bounded_pool(url: str, **options) -> BlockingConnectionPool:
    """A pool of at most MAX_CONNECTIONS connections to `url`; callers wait for a free one."""
    return BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=WAIT_SECONDS, **options
    )
