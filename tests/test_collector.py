"""The cyclic collector of a serving process (chatsite.server): start-up frozen, full
collections rarer than CPython's default, none while the process stops."""

import gc

import pytest

from chatsite import server


@pytest.fixture
def collector():
    """Puts the collector back as the test found it."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()


def counting_collections() -> tuple[dict, object]:
    seen = {0: 0, 1: 0, 2: 0}

    def count(phase, info):
        if phase == "stop":
            seen[info["generation"]] += 1

    return seen, count


def grow(objects: int) -> list:
    """Makes `objects` small containers that stay alive, as arriving sockets do."""
    return [[] for _ in range(objects)]


def test_start_up_is_frozen_and_full_collections_wait_for_100_middle_ones(collector):
    young, middle, _ = gc.get_threshold()
    server.tune_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (young, middle, server.FULL_COLLECTION_EVERY)
    assert server.FULL_COLLECTION_EVERY == 100


def test_a_growing_heap_sets_off_fewer_full_collections_once_tuned(collector):
    """The same growth, counted by the collector's own callbacks: CPython's default
    makes full collections of it, the tuned collector none or fewer."""
    seen, count = counting_collections()
    gc.callbacks.append(count)
    try:
        gc.collect()
        gc.set_threshold(700, 10, 10)
        kept = [grow(20_000) for _ in range(40)]
        by_default = seen[2]
        del kept
        gc.collect()
        seen.update({0: 0, 1: 0, 2: 0})
        server.tune_collector()
        kept = [grow(20_000) for _ in range(40)]
        tuned = seen[2]
        del kept
    finally:
        gc.callbacks.remove(count)
    assert by_default >= 4
    assert tuned <= by_default // 4


def test_a_stopping_process_stops_collecting(collector):
    gc.enable()
    server.stop_collecting()
    assert not gc.isenabled()
