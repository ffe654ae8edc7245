"""Rounds: what many callers ask for at once goes out together, one round at a time.

In a storm thousands of handshakes each subscribe to their own groups and announce
their user online. Done one call at a time behind a lock, each call waited for its
turn and then for a round trip to Redis on an event loop busy with everyone else:
the queue, not Redis, set the pace. Here the first caller starts a round, and every
caller that comes while it is on its way shares the next one: one request carries
them all, however many they are, and a lone caller waits no longer than before.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class Rounds(Generic[Item]):
    """Runs `carry(items)` for the items of concurrent callers, one round at a time, in order."""

    def __init__(self, carry: Callable[[list[Item]], Awaitable[None]]) -> None:
        self._carry = carry
        self._pending: list[Item] = []
        # The future every caller waiting for the next round shares.
        self._next: asyncio.Future | None = None
        self._task: asyncio.Task | None = None

    def later(self, items: Iterable[Item]) -> None:
        """Adds items to the next round without waiting for it or starting it."""
        self._pending.extend(items)

    async def submit(self, items: Iterable[Item]) -> None:
        """Adds items to the next round and waits until it has carried them.

        Raises what that round raised; the items of a failed round are not retried.
        """
        self._pending.extend(items)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            # A failed round's exception is retrieved even if its callers were cancelled.
            self._next.add_done_callback(_retrieve)
        done = self._next
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        # One caller given up (its handshake cancelled) must not cancel the round.
        await asyncio.shield(done)

    async def _run(self) -> None:
        while self._pending:
            items, self._pending = self._pending, []
            done, self._next = self._next, None
            try:
                await self._carry(items)
            except asyncio.CancelledError:
                for waiting in (done, self._next):
                    if waiting is not None:
                        waiting.cancel()
                raise
            except Exception as exc:
                if done is not None:
                    done.set_exception(exc)
            else:
                if done is not None:
                    done.set_result(None)


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
