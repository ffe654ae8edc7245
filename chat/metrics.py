"""This process's numbers: the Prometheus metrics behind /metrics, and the report of
them that each process keeps in Redis for the staff Live page.

The real-time plumbing counts into this module, so it imports no feature either.
"""

import asyncio
import collections
import json
import logging
import os
import socket
import time
import weakref

import redis
import redis.asyncio as aioredis
from django.conf import settings
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    gc_collector,
    platform_collector,
    process_collector,
)
from prometheus_client.exposition import choose_encoder
from redis.exceptions import RedisError

from chat.realtime.background import repeat

logger = logging.getLogger(__name__)

# One name per server process: the container's host name and the pid within it.
PROCESS = f"{socket.gethostname()}:{os.getpid()}"

# The site's own registry: /metrics shows exactly these, whatever else is imported.
REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

Info("chat_process", "The server process these numbers are of.", registry=REGISTRY).info(
    {"process": PROCESS}
)
SOCKETS_OPEN = Gauge(
    "chat_sockets_open", "Chat sockets open on this process (after hello).", registry=REGISTRY
)
MESSAGES_STORED = Counter(
    "chat_messages_stored", "Messages stored by this process (not repeats).", registry=REGISTRY
)
FRAMES_SENT = Counter(
    "chat_frames_sent", "Text frames handed to the server to write to a socket.", registry=REGISTRY
)
DELIVERIES = Counter(
    "chat_deliveries",
    "Published frames the fan-out queued for a local socket (one per socket).",
    registry=REGISTRY,
)
PUBLISH_SECONDS = Histogram(
    "chat_publish_seconds",
    "Time to hand a batch of published events to the channel layer.",
    registry=REGISTRY,
)
SLOW_SOCKETS_CLOSED = Counter(
    "chat_slow_sockets_closed",
    "Sockets given up because their client did not read (close 4008).",
    registry=REGISTRY,
)
LAYER_RECONNECTS = Counter(
    "chat_layer_reconnects",
    "Reconnects of this process's channel layer subscription to Redis.",
    registry=REGISTRY,
)
EVENT_LOOP_LAG = Histogram(
    "chat_event_loop_lag_seconds",
    "How late the event loop woke a task that slept (sampled every 0.25 s): "
    "how long a ready socket, handshake or request waits for its turn.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
# How often the loop's lag is sampled: four wake-ups a second cost next to nothing.
LAG_EVERY_SECONDS = 0.25
RATE_LIMITED = Counter(
    "chat_rate_limited",
    "Actions refused by a rate limit, by kind "
    "(messages, reads, connects, handshakes, signup, uploads).",
    ["kind"],
    registry=REGISTRY,
)
# Each kind shows from the start, at 0, so a rate over it never lacks a first sample.
for _kind in ("messages", "reads", "connects", "handshakes", "signup", "uploads"):
    RATE_LIMITED.labels(_kind)

# When the last slow closes and reconnects happened, for the Live page's "recent".
_recent: dict[str, collections.deque] = {
    "slow_sockets_closed": collections.deque(maxlen=100),
    "layer_reconnects": collections.deque(maxlen=100),
}


def _open_sockets() -> list:
    # Imported here: chat.realtime.sockets itself imports this module.
    from chat.realtime import sockets

    return sockets.open_sockets()


SOCKETS_OPEN.set_function(lambda: len(_open_sockets()))


def slow_socket_closed() -> None:
    """Counts a socket given up as too slow."""
    SLOW_SOCKETS_CLOSED.inc()
    _recent["slow_sockets_closed"].append(time.time())


def layer_reconnected() -> None:
    """Counts a reconnect of the channel layer's subscription."""
    LAYER_RECONNECTS.inc()
    _recent["layer_reconnects"].append(time.time())


# When each loop's sampler last ran, read by the health listener's thread. A plain
# dict, copied whole by that thread; a sampler that ends takes its loop out.
_loop_woke_at: dict[asyncio.AbstractEventLoop, float] = {}
_lag_watches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)


def watch_loop_lag() -> None:
    """Starts sampling this event loop's lag into chat_event_loop_lag_seconds, once per loop.

    In a reconnect storm everything a process does waits for the loop, the health
    probe included (docs/performance.md); this is the figure that shows it.
    """
    loop = asyncio.get_running_loop()
    task = _lag_watches.get(loop)
    if task is None or task.done():
        _lag_watches[loop] = loop.create_task(_sample_lag_forever())


async def _sample_lag_forever() -> None:
    loop = asyncio.get_running_loop()
    try:
        while True:
            began = _loop_woke_at[loop] = time.monotonic()
            await asyncio.sleep(LAG_EVERY_SECONDS)
            EVENT_LOOP_LAG.observe(max(0.0, time.monotonic() - began - LAG_EVERY_SECONDS))
    finally:
        _loop_woke_at.pop(loop, None)


def loop_silent_seconds() -> float | None:
    """Seconds since a running event loop last ran its lag sampler, the longest of them
    (None while no running loop has one): a loop that stopped taking turns shows here
    while it is stuck, not after."""
    now = time.monotonic()
    silences = [now - woke for loop, woke in list(_loop_woke_at.items()) if loop.is_running()]
    return max(silences, default=None)


def exposition(accept: str) -> tuple[bytes, str]:
    """This process's metrics, and their content type, in the format the scraper accepts.

    Prometheus' text format by default; OpenMetrics when the Accept header asks for it.
    """
    encode, content_type = choose_encoder(accept)
    return encode(REGISTRY), content_type


def snapshot() -> dict:
    """This process's figures for the Live page, as JSON-ready data."""
    users = collections.Counter(s.username for s in _open_sockets())
    return {
        "process": PROCESS,
        "reported_at": time.time(),
        "sockets": sum(users.values()),
        "users": dict(sorted(users.items())),
        **{
            kind: {
                "total": int(REGISTRY.get_sample_value(f"chat_{kind}_total") or 0),
                "times": list(_recent[kind]),
            }
            for kind in _recent
        },
    }


# --- Reports for the Live page (Redis mode) -------------------------------------

REPORT_PREFIX = "chat:live:process:"

_reporters: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task]" = (
    weakref.WeakKeyDictionary()
)


def keep_reporting() -> None:
    """Starts this process's report to the other processes, once per event loop (Redis mode)."""
    if not settings.REDIS_URL:
        return
    loop = asyncio.get_running_loop()
    task = _reporters.get(loop)
    if task is None or task.done():
        _reporters[loop] = loop.create_task(_report_forever())


async def _report_forever() -> None:
    """Writes the snapshot every heartbeat; it expires with the presence TTL if the process dies."""
    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)

    async def report() -> None:
        key = REPORT_PREFIX + PROCESS
        ttl = max(int(settings.CHAT_PRESENCE_TTL_SECONDS), 1)
        await client.set(key, json.dumps(snapshot()), ex=ttl)

    try:
        try:
            await report()  # at once: the first socket shows without waiting a beat
        except (RedisError, OSError) as exc:
            logger.warning("live report failed: %s", exc.__class__.__name__)
        await repeat(
            report,
            every=settings.CHAT_HEARTBEAT_SECONDS,
            name="live report",
            expected=(RedisError, OSError),
        )
    finally:
        await client.aclose()


def process_reports() -> list[dict]:
    """Every live process's latest snapshot, this one's fresh; sorted by process name."""
    reports = {}
    if settings.REDIS_URL:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
        try:
            keys = list(client.scan_iter(match=REPORT_PREFIX + "*", count=1000))
            for raw in client.mget(keys) if keys else []:
                if raw is not None:
                    report = json.loads(raw)
                    reports[report["process"]] = report
        finally:
            client.close()
    reports[PROCESS] = snapshot()
    return [reports[name] for name in sorted(reports)]
