"""Batching sends: each process writes, acknowledges and publishes its sends in batches.

Under load every send that queued up during one write shares the next one, so the
database sees one lock, one insert and one commit per batch instead of per message.
"""

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from redis.exceptions import RedisError

from chat.db import db_call
from chat.errors import OUTAGES
from chat.messaging.events import message_events
from chat.messaging.store import Posted, message_store_many, order_lock
from chat.protocol import Send
from chat.realtime.publish import publish_many

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    sender: Any
    send: Send
    acknowledge: Callable[[Posted], None]
    future: asyncio.Future


class _Batcher:
    """Writes, acknowledges and publishes this process's sends, in batches and in id order.

    Nothing waits on a timer: a lone send is written at once; under load, every
    send that queued up during one write shares the next one, so the database sees
    one lock, one insert and one commit per batch instead of per message.
    """

    MAX_BATCH = 200

    def __init__(self) -> None:
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task | None = None

    async def send(self, pending: _Pending) -> Posted:
        """Queues one send; returns once it is stored, acknowledged and published."""
        self._pending.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await pending.future

    async def _write(self) -> None:
        write = db_call(_write_batch)
        while self._pending:
            batch = self._pending[: self.MAX_BATCH]
            del self._pending[: self.MAX_BATCH]
            results = await self._results(write, batch)
            for pending, result in zip(batch, results, strict=True):
                if pending.future.done():  # the socket went away meanwhile
                    continue
                if isinstance(result, Exception):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    async def _results(self, write, batch: list[_Pending]) -> list[Posted | Exception]:
        """Writes a batch and returns one result per send; an exception answers its send."""
        try:
            return await write(batch)
        except OUTAGES as outage:
            # A real outage, met before anything was stored: every send says so.
            return [outage] * len(batch)
        except Exception as fault:
            # Not an outage, so a fault that may belong to one send: each send
            # alone, so that it fails no one else. Its sender's socket raises it.
            if len(batch) == 1:
                return [fault]
            results = []
            for pending in batch:
                results += await self._results(write, [pending])
            return results


def _write_batch(batch: list[_Pending]) -> list[Posted | Exception]:
    """Stores a batch, then acknowledges and publishes it while holding the order lock.

    Message ids already commit in id order; holding the lock until the batch is
    also published makes every process publish in id order too, so each socket
    receives live messages in id order and "the largest id seen" is a safe cursor
    for `sync`.
    """
    results = None
    try:
        with order_lock():
            results = message_store_many(sends=[(p.sender, p.send) for p in batch])
            async_to_sync(_announce_batch)(batch, results)
    except OUTAGES as outage:
        if results is None:
            raise
        # Stored and acknowledged; only giving the lock back failed (a connection
        # lost takes its session lock with it). The senders must not hear
        # `unavailable` for messages that are stored.
        logger.warning("releasing the message order lock failed: %s", type(outage).__name__)
    return results


async def _announce_batch(batch: list[_Pending], results: list) -> None:
    events = []
    for pending, result in zip(batch, results, strict=True):
        if isinstance(result, Posted):
            try:
                # Only queues the frame on the sender's socket: nothing here waits
                # on a client while the order lock is held.
                pending.acknowledge(result)
            except Exception:
                # One sender's socket failing must not keep the batch from the others.
                logger.exception("acknowledging message %s failed", result.message.id)
            if result.created:
                events += message_events(result.message, pending.sender.pk, result.recipient_id)
    try:
        # The whole batch in one round trip to Redis, in id order.
        await publish_many(events)
    except (RedisError, OSError) as exc:
        # Stored all the same: every subscriber that lost Redis reconnects,
        # closes its sockets with 4012, and their clients fetch it with sync.
        logger.warning("publishing %d messages failed: %s", len(events), exc)


_batchers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batcher]" = (
    weakref.WeakKeyDictionary()
)


async def message_send(*, sender, send: Send, acknowledge: Callable[[Posted], None]) -> Posted:
    """Stores the message (once per client_id), acknowledges it, and publishes it if new.

    The sender's `ack` goes out before the message frame, so a client sees its
    message confirmed before it sees it arrive.
    """
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = _Batcher()
    pending = _Pending(sender, send, acknowledge, loop.create_future())
    return await batcher.send(pending)
