"""Batching sends: each process writes, acknowledges and publishes its sends in batches.

Under load every send that queued up during one write shares the next one, so the
database sees one lock, one insert and one commit per batch instead of per message.
While one batch is announced (acknowledged and published, on the event loop), the
next is already being stored (in the database thread), under the same hold of the
order lock.
"""

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

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
    # Batches stored under one hold of the order lock, each while the one before it
    # is announced. Other processes wait for the lock that long, and this process's
    # other writes (read marks, edits) for the database thread.
    MAX_RUN = 4

    def __init__(self) -> None:
        self._pending: list[_Pending] = []
        # The event loop adds sends; the database thread takes them, batch by batch.
        self._guard = threading.Lock()
        self._writer: asyncio.Task | None = None

    async def send(self, pending: _Pending) -> Posted:
        """Queues one send; returns once it is stored, acknowledged and published."""
        with self._guard:
            self._pending.append(pending)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await pending.future

    def _take(self) -> list[_Pending]:
        with self._guard:
            batch = self._pending[: self.MAX_BATCH]
            del self._pending[: self.MAX_BATCH]
        return batch

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        run = db_call(self._run)
        while self._pending:
            first = self._take()
            try:
                await run(loop, first)
            except Exception as failure:
                # Met before the first batch was stored (the lock, the connection):
                # its sends say so (an outage says `unavailable`). Every batch the run
                # stored was answered by its announcement.
                if not isinstance(failure, OUTAGES):
                    logger.exception("writing a batch of messages failed")
                _settle(first, [failure] * len(first))

    def _run(self, loop: asyncio.AbstractEventLoop, first: list[_Pending]) -> None:
        """Stores up to MAX_RUN batches under one hold of the order lock (database thread).

        Each stored batch is handed to the event loop to be announced, and the next
        one is stored meanwhile; a batch's announcement starts only once the one
        before it is done, so every process still publishes in id order.
        """
        announced: Future | None = None
        try:
            with order_lock():
                batch = first
                for turn in range(self.MAX_RUN):
                    results = _stored(batch)
                    _wait(announced)
                    announcement = _announce_batch(batch, results)
                    announced = asyncio.run_coroutine_threadsafe(announcement, loop)
                    if turn == self.MAX_RUN - 1 or not (batch := self._take()):
                        break
                _wait(announced)
        except OUTAGES as outage:
            if announced is None:
                raise
            _wait(announced)
            # Stored and announced; only giving the lock back failed (a connection
            # lost takes its session lock with it). The senders must not hear
            # `unavailable` for messages that are stored.
            logger.warning("releasing the message order lock failed: %s", type(outage).__name__)


def _wait(announced: Future | None) -> None:
    """Waits until a batch's announcement is done; it answers its own sends, even failing."""
    if announced is None:
        return
    try:
        announced.result()
    except Exception:
        logger.exception("announcing a batch of messages failed")


def _stored(batch: list[_Pending]) -> list[Posted | Exception]:
    """Stores a batch and returns one result per send; an exception answers its send."""
    try:
        return message_store_many(sends=[(p.sender, p.send) for p in batch])
    except OUTAGES as outage:
        # A real outage, met before anything was stored: every send says so.
        return [outage] * len(batch)
    except Exception as fault:
        # Not an outage, so a fault that may belong to one send: each send alone,
        # so that it fails no one else. Its sender's socket raises it.
        if len(batch) == 1:
            return [fault]
        return [result for pending in batch for result in _stored([pending])]


def _settle(batch: list[_Pending], results: list) -> None:
    """Answers each send of a batch with its result (on the event loop)."""
    for pending, result in zip(batch, results, strict=True):
        if pending.future.done():  # the socket went away meanwhile
            continue
        if isinstance(result, Exception):
            pending.future.set_exception(result)
        else:
            pending.future.set_result(result)


async def _announce_batch(batch: list[_Pending], results: list) -> None:
    try:
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
    finally:
        _settle(batch, results)


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
