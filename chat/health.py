"""What /healthz reports: the database, Redis and, for the health listener, the event loop."""

import redis
from django.conf import settings
from django.db import DatabaseError, connection

from chat import metrics


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


def database_status() -> str:
    """Asks the database for `SELECT 1`: "ok" or "error: <kind>"."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"error: {exc.__class__.__name__}"
    return "ok"


def loop_status(silent: float | None, stall: float) -> str:
    """Judges the event loop by how long ago it last ran the lag sampler: "ok",
    "starting" (it never has), or "error: no turn for N s" once that is over `stall`."""
    if silent is None:
        return "starting"
    if silent > stall:
        return f"error: no turn for {silent:.0f} s"
    return "ok"


def report(*, event_loop: bool = False) -> tuple[int, dict[str, str]]:
    """Checks every part; returns the HTTP status (200, or 503 when one fails) and the
    report. `event_loop` adds the loop's state, for a probe that is not answered by it."""
    parts = {"database": database_status(), "redis": redis_status(settings.REDIS_URL)}
    if event_loop:
        parts["event_loop"] = loop_status(
            metrics.loop_silent_seconds(), settings.CHAT_HEALTH_LOOP_STALL_SECONDS
        )
    healthy = all(state in ("ok", "off") for state in parts.values())
    return (200 if healthy else 503), {"status": "ok" if healthy else "error", **parts}
