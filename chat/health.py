"""Dependency probes for /healthz."""

import redis


def redis_status(url: str | None) -> str:
    """Pings Redis: "off" when none is configured, "ok", or "error: <kind>"."""
    if not url:
        return "off"
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"error: {exc.__class__.__name__}"
    finally:
        client.close()
    return "ok"
