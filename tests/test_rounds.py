"""Rounds: callers that come while a round is on its way share the next one, in order;
a failed round raises to its own callers only; a caller that gives up cancels nothing.
"""

import asyncio

import pytest

from chat.realtime.rounds import Rounds


class _Carrier:
    """Records each round's items; a round waits for `go` when told to."""

    def __init__(self) -> None:
        self.rounds: list[list[int]] = []
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.go.set()
        self.fail_next = False

    async def carry(self, items: list[int]) -> None:
        self.rounds.append(list(items))
        self.started.set()
        await self.go.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("the round failed")


async def _first_round_under_way(rounds: Rounds, carrier: _Carrier, item: int) -> asyncio.Task:
    carrier.go.clear()
    first = asyncio.create_task(rounds.submit([item]))
    await carrier.started.wait()
    return first


async def test_callers_that_come_during_a_round_share_the_next_one_in_order():
    carrier = _Carrier()
    rounds = Rounds(carrier.carry)
    first = await _first_round_under_way(rounds, carrier, 0)
    crowd = [asyncio.create_task(rounds.submit([n, n + 100])) for n in range(1, 51)]
    await asyncio.sleep(0)  # every caller of the crowd has queued its items
    carrier.go.set()
    await asyncio.gather(first, *crowd)
    expected = [item for n in range(1, 51) for item in (n, n + 100)]
    assert carrier.rounds == [[0], expected]


async def test_a_failed_round_raises_to_its_callers_and_the_next_round_carries_on():
    carrier = _Carrier()
    rounds = Rounds(carrier.carry)
    carrier.fail_next = True
    first = await _first_round_under_way(rounds, carrier, 0)
    second = asyncio.create_task(rounds.submit([1]))
    await asyncio.sleep(0)
    carrier.go.set()
    with pytest.raises(ConnectionError):
        await first
    await second  # the next round succeeded
    await rounds.submit([2])
    assert carrier.rounds == [[0], [1], [2]]


async def test_a_caller_that_gives_up_does_not_cancel_the_round_of_the_others():
    carrier = _Carrier()
    rounds = Rounds(carrier.carry)
    first = await _first_round_under_way(rounds, carrier, 0)
    impatient = asyncio.create_task(rounds.submit([1]))
    patient = asyncio.create_task(rounds.submit([2]))
    await asyncio.sleep(0)
    impatient.cancel()
    carrier.go.set()
    await asyncio.gather(first, patient)
    assert impatient.cancelled()
    assert carrier.rounds == [[0], [1, 2]]


async def test_items_added_for_later_go_with_the_next_round():
    carrier = _Carrier()
    rounds = Rounds(carrier.carry)
    rounds.later([7])
    assert carrier.rounds == []  # nothing started by it
    await rounds.submit([8])
    assert carrier.rounds == [[7, 8]]
