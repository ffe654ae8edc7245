"""Presence stores: the in-process one and the Redis one (on a private redis-server)."""

import asyncio
from datetime import UTC, datetime

import pytest
import redis
import redis.asyncio as aioredis

from chat import redis_pool
from chat.presence import LocalPresence, RedisPresence
from tests.conftest import redis_url_of


@pytest.fixture
def redis_url(redis_proc):
    """The private test Redis, emptied for this test (it holds no one else's data)."""
    url = redis_url_of(redis_proc)
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
async def two_processes(redis_url):
    """Two presence stores on one Redis, as two server processes would have."""
    stores = [RedisPresence(redis_url, ttl=1.0, heartbeat=0.2) for _ in range(2)]
    yield stores
    for store in stores:
        await store.close()


@pytest.fixture(params=["local", "redis"])
async def store(request):
    """Each store implementation in turn."""
    if request.param == "local":
        yield LocalPresence()
        return
    url = request.getfixturevalue("redis_url")
    redis_store = RedisPresence(url, ttl=5.0, heartbeat=1.0)
    yield redis_store
    await redis_store.close()


async def test_first_socket_makes_a_user_online(store):
    joined = await store.add(user="alice", socket="s1")
    assert (joined.first, joined.sockets) == (True, 1)
    assert await store.online() == ["alice"]


async def test_second_socket_is_not_first(store):
    await store.add(user="alice", socket="s1")
    joined = await store.add(user="alice", socket="s2")
    assert (joined.first, joined.sockets) == (False, 2)


async def test_only_the_last_socket_leaving_makes_a_user_offline(store):
    await store.add(user="alice", socket="s1")
    await store.add(user="alice", socket="s2")
    await store.add(user="bob", socket="s3")
    assert (await store.remove(user="alice", socket="s1")).changed is False
    assert (await store.remove(user="alice", socket="s2")).after == "offline"
    assert await store.online() == ["bob"]


async def test_a_new_socket_is_answered_with_who_is_online_and_away_right_after(store):
    await store.add(user="carol", socket="s1")
    await store.set_idle(user="carol", socket="s1", idle=True)
    joined = await store.add(user="alice", socket="s2")
    # What its `hello` lists: the user itself included, sorted, the away ones apart.
    assert (joined.online, joined.away) == (["alice", "carol"], ["carol"])
    assert (joined.online, joined.away) == await store.statuses()


async def test_the_lists_a_socket_joins_with_include_other_processes_users(two_processes):
    first, second = two_processes
    await first.add(user="ann", socket="a1")
    joined = await second.add(user="ben", socket="b1")
    assert (joined.online, joined.away) == (["ann", "ben"], [])


async def test_removing_an_unknown_socket_changes_nothing(store):
    await store.add(user="alice", socket="s1")
    assert (await store.remove(user="alice", socket="nope")).changed is False
    assert await store.online() == ["alice"]


async def test_sockets_on_two_processes_count_as_one_user(two_processes):
    first, second = two_processes
    assert (await first.add(user="alice", socket="a")).first is True
    assert (await second.add(user="alice", socket="b")).first is False
    assert (await first.remove(user="alice", socket="a")).changed is False
    assert await second.online() == ["alice"]
    assert (await second.remove(user="alice", socket="b")).after == "offline"


async def test_a_dead_process_users_are_swept_after_the_ttl(two_processes):
    alive, dead = two_processes
    await alive.add(user="bob", socket="b")
    await dead.add(user="alice", socket="a")
    # `dead` never refreshes again (as if killed); `alive` runs its heartbeat by hand
    # here, so the sweep's result is seen by this test and not by a background task.
    dead._maintenance.cancel()
    alive._maintenance.cancel()
    gone = []
    for _ in range(10):
        await asyncio.sleep(0.2)
        gone += [c.user for c in await alive.maintain() if c.after == "offline"]
    assert gone == ["alice"]
    assert await alive.online() == ["bob"]


async def test_heartbeat_keeps_live_sockets_past_the_ttl(two_processes):
    first, second = two_processes
    await first.add(user="alice", socket="a")
    for _ in range(10):
        await asyncio.sleep(0.2)
        await first.maintain()
        assert await second.maintain() == []
    assert await second.online() == ["alice"]


async def test_presence_is_rebuilt_after_redis_loses_everything(two_processes, redis_url):
    first, _ = two_processes
    await first.add(user="alice", socket="a")
    await first.add(user="bob", socket="b")
    redis.Redis.from_url(redis_url).flushall()  # what a restart without persistence leaves
    assert await first.online() == []
    back = await first.maintain()
    assert sorted((c.user, c.after) for c in back) == [("alice", "online"), ("bob", "online")]
    assert await first.online() == ["alice", "bob"]


async def test_maintenance_announces_transitions(redis_url, monkeypatch):
    import chat.presence as presence

    heard = []

    async def listener(user, status, last_seen):
        heard.append((user, status))

    monkeypatch.setattr(presence, "_listener", listener)
    alive = RedisPresence(redis_url, ttl=0.6, heartbeat=0.1)
    dead = RedisPresence(redis_url, ttl=0.6, heartbeat=0.1)
    await alive.add(user="bob", socket="b")
    await dead.add(user="alice", socket="a")
    dead._maintenance.cancel()
    await asyncio.sleep(1.5)
    await alive.close()
    await dead.close()
    assert ("alice", "offline") in heard and ("bob", "offline") not in heard


async def test_heartbeat_survives_a_failed_announcement_and_retries_it(redis_url, monkeypatch):
    import redis.asyncio as aioredis

    import chat.presence as presence
    from tests.server import free_port

    # Nothing listens on this port: announcing through it fails as a lost Redis does.
    unreachable = aioredis.Redis(port=free_port(), socket_connect_timeout=1)
    heard, failures = [], []
    announced = asyncio.Event()

    async def listener(user, status, last_seen):
        if not failures:
            failures.append(user)
            await unreachable.ping()
        heard.append((user, status))
        announced.set()

    monkeypatch.setattr(presence, "_listener", listener)
    alive = RedisPresence(redis_url, ttl=0.6, heartbeat=0.1)
    dead = RedisPresence(redis_url, ttl=0.6, heartbeat=0.1)
    try:
        await alive.add(user="bob", socket="b")
        await dead.add(user="alice", socket="a")
        dead._maintenance.cancel()  # alice's process dies; bob's sweeps her out
        await asyncio.wait_for(announced.wait(), timeout=30)
        # The failed announcement was made again on a later beat ...
        assert failures == ["alice"] and heard[0] == ("alice", "offline")
        # ... and the heartbeat went on: bob's open socket outlives many TTLs.
        await asyncio.sleep(2.0)
        assert await alive.online() == ["bob"]
        assert not alive._maintenance.done()
    finally:
        await alive.close()
        await dead.close()
        await unreachable.aclose()


async def test_concurrent_online_lists_share_a_read_that_started_after_they_asked(two_processes):
    mine, other = two_processes
    await other.add(user="ann", socket="a1")
    reads = 0
    read = mine._read_statuses

    async def counted():
        nonlocal reads
        reads += 1
        return await read()

    mine._read_statuses = counted
    # A storm of greetings at once: one read of the lists answers them all.
    answers = await asyncio.gather(*(mine.statuses() for _ in range(10)))
    assert reads == 1
    assert all(answer == (["ann"], []) for answer in answers)

    # A caller that comes while a read is under way waits for the next one, which
    # sees every change made before it asked.
    early = asyncio.ensure_future(mine.statuses())
    await asyncio.sleep(0)  # the early read is now under way
    await other.add(user="ben", socket="b1")
    late = await mine.statuses()
    assert late == (["ann", "ben"], [])
    await early
    assert reads == 3


async def test_a_storm_of_arrivals_and_departures_shares_a_few_redis_connections(redis_url):
    # A deploy drops every socket at once and they all come back: hundreds of
    # presence scripts at the same moment must not each open a connection.
    watcher = aioredis.Redis.from_url(redis_url)
    store = RedisPresence(redis_url, ttl=5.0, heartbeat=1.0)
    try:
        # Client ids grow: those above the watcher's own were opened after it (counting
        # all clients would also count those of earlier tests closing meanwhile).
        watcher_id = await watcher.client_id()
        users = [f"storm{n}" for n in range(300)]
        joined = await asyncio.gather(*(store.add(user=u, socket=f"s-{u}") for u in users))
        assert all(j.sockets == 1 for j in joined)
        assert set(users) <= set((await store.statuses())[0])
        clients = await watcher.client_list()
        opened = len([c for c in clients if int(c["id"]) > watcher_id])
        await asyncio.gather(*(store.remove(user=u, socket=f"s-{u}") for u in users))
        assert not set(users) & set((await store.statuses())[0])
        assert 1 <= opened <= redis_pool.MAX_CONNECTIONS
    finally:
        await store.close()
        await watcher.aclose()


async def test_handshakes_arriving_together_share_a_script_call_and_each_gets_its_own_answer(
    redis_url,
):
    watcher = aioredis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisPresence(redis_url, ttl=5.0, heartbeat=1.0)

    async def script_calls() -> int:
        stats = await watcher.info("commandstats")
        return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))

    try:
        await store.add(user="warm", socket="w1")  # loads the script
        calls_before = await script_calls()
        # 200 users, one of them with two sockets in the same crowd.
        pairs = [(f"crowd{n}", f"c{n}") for n in range(200)] + [("crowd7", "c7-second")]
        joined = await asyncio.gather(*(store.add(user=u, socket=s) for u, s in pairs))
        calls = await script_calls() - calls_before
        # As if added one after another: the second socket finds its user online.
        assert [(j.change.before, j.change.after, j.sockets) for j in joined[:200]] == [
            ("offline", "online", 1)
        ] * 200
        second = joined[200]
        assert (second.change.before, second.change.after, second.sockets) == (
            "online",
            "online",
            2,
        )
        assert set(u for u, _ in pairs) <= set(await store.online())
        # Every socket of the crowd is greeted with the whole crowd online.
        assert all(set(u for u, _ in pairs) <= set(j.online) for j in joined)
        assert store.local_users() >= {u for u, _ in pairs}
        assert 1 <= calls <= 3, calls
    finally:
        await store.close()
        await watcher.aclose()


# --- A stopping server hands its sockets off ----------------------------------


async def test_a_handed_off_user_stays_online_and_a_new_socket_counts_alone(two_processes):
    stopping, restarted = two_processes
    await stopping.add(user="alice", socket="a1")
    await stopping.add(user="alice", socket="a2")
    stopping._maintenance.cancel()  # the process is going away

    assert await stopping.hand_off([("alice", "a1"), ("alice", "a2")]) == []
    assert await restarted.online() == ["alice"]
    assert [c for c in await restarted.maintain() if c.user == "alice"] == []
    # Back on the restarted server: no change to announce, and the handed-off
    # sockets do not count against the user's limit.
    joined = await restarted.add(user="alice", socket="b1")
    assert (joined.change.changed, joined.sockets) == (False, 1)
    # Once back, the grace is over: leaving later is an ordinary goodbye.
    assert (await restarted.remove(user="alice", socket="b1")).after == "offline"


async def test_a_handed_off_user_who_does_not_come_back_is_swept_offline_last_seen_at_the_hand_off(
    two_processes,
):
    stopping, alive = two_processes
    await stopping.add(user="alice", socket="a1")
    await alive.add(user="bob", socket="b1")
    stopping._maintenance.cancel()
    alive._maintenance.cancel()  # its heartbeat is run by hand below
    handed_off_at = datetime.now(UTC)
    await stopping.hand_off([("alice", "a1")])

    gone = []
    while not gone:  # the TTL (1 s) is the grace; each beat is a real sweep
        await asyncio.sleep(0.2)
        gone = [c for c in await alive.maintain() if c.user == "alice"]
    (change,) = gone
    assert (change.before, change.after) == ("online", "offline")
    assert abs((change.last_seen - handed_off_at).total_seconds()) < 0.5
    assert await alive.online() == ["bob"]


async def test_a_hand_off_keeps_a_user_away_and_settles_one_with_sockets_elsewhere(two_processes):
    stopping, other = two_processes
    stopping._start_maintenance()
    await stopping.add(user="ann", socket="a1")
    await stopping.set_idle(user="ann", socket="a1", idle=True)
    # ben's active socket goes with the stopping server; his idle one elsewhere stays.
    await stopping.add(user="ben", socket="b1")
    await other.add(user="ben", socket="b2")
    await other.set_idle(user="ben", socket="b2", idle=True)
    stopping._maintenance.cancel()

    changes = await stopping.hand_off([("ann", "a1"), ("ben", "b1")])
    assert [(c.user, c.before, c.after) for c in changes] == [("ben", "online", "away")]
    assert await other.statuses() == (["ann", "ben"], ["ann", "ben"])


async def test_the_local_store_forgets_handed_off_sockets():
    store = LocalPresence()
    await store.add(user="alice", socket="a1")
    changes = await store.hand_off([("alice", "a1")])
    assert [(c.user, c.after) for c in changes] == [("alice", "offline")]
    assert await store.online() == []
