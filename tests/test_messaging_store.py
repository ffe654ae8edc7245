"""Storing messages: seq without gaps, idempotency, and ids that commit in order."""

import contextlib
import json
import threading
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.errors import AccountEnded, ChatError, ErrorCode
from chat.messaging import store
from chat.messaging.store import (
    _MESSAGE_ID_LOCK,
    Posted,
    message_store,
    message_store_many,
)
from chat.models import DirectConversation, Message, Mute, Room
from chat.protocol import Send

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL behaviour (runs in the PostgreSQL pass)"
)


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.mark.django_db
def test_room_messages_get_consecutive_seqs_and_the_room_counts_them(alice):
    seqs = [
        message_store(
            sender=alice, send=Send(body="x", client_id=f"c{n}", room="general")
        ).message.seq
        for n in range(5)
    ]
    assert seqs == [1, 2, 3, 4, 5]
    assert Room.objects.get(name="general").last_seq == 5


@pytest.mark.django_db
def test_a_batch_answers_each_rule_of_the_one_read_for_its_own_send(make_user):
    ann, ben, gone = make_user("ann"), make_user("ben"), make_user("gone", is_active=False)
    secret, random = Room.objects.create(name="secret"), Room.objects.create(name="random")
    secret.members.add(ben)
    now = timezone.now()
    Mute.objects.create(user=ann, room=random, until=now + timedelta(minutes=30))
    Mute.objects.create(user=ann, room=None, until=now - timedelta(minutes=1))  # over
    message_store(sender=ben, send=Send(body="first", client_id="b0", room="general"))
    results = message_store_many(
        sends=[
            (ann, Send(body="1", client_id="a1", room="general")),
            (ann, Send(body="2", client_id="a2", room="random")),  # muted there only
            (ann, Send(body="3", client_id="a3", to="ben")),  # the mute that held is over
            (ann, Send(body="4", client_id="a4", room="secret")),  # private, not hers
            (ben, Send(body="5", client_id="b1", room="secret")),
            (ann, Send(body="6", client_id="a5", to="gone")),  # deactivated
            (ann, Send(body="7", client_id="a6", to="nobody")),
            (ben, Send(body="again", client_id="b0", room="general")),  # stored before
            (gone, Send(body="8", client_id="g1", room="general")),
        ]
    )
    assert [kind_of(r) for r in results] == [
        True,
        "muted",
        True,
        "unknown_room",
        True,
        "unknown_user",
        "unknown_user",
        False,
        "AccountEnded",
    ]
    assert results[1].until == Mute.objects.get(user=ann, room=random).until
    assert results[7].message.body == "first"
    assert set(Message.objects.values_list("client_id", flat=True)) == {"b0", "a1", "a3", "b1"}


@pytest.mark.django_db
def test_a_batch_costs_as_many_statements_as_one_send(make_user):
    people = [make_user(f"p{n}") for n in range(3)]
    Room.objects.create(name="random")

    def statements(sends) -> int:
        with CaptureQueriesContext(connection) as queries:
            results = message_store_many(sends=sends)
        assert all(isinstance(r, Posted) and r.created for r in results)
        return len(queries)

    one = statements([(people[0], Send(body="x", client_id="one", room="general"))])
    many = statements(
        [
            (people[n % 3], Send(body="x", client_id=f"m{n}", room=("general", "random")[n % 2]))
            for n in range(8)
        ]
    )
    assert many == one


@postgres_only
@pytest.mark.django_db
def test_a_batch_s_statements_read_the_same_whatever_its_size(make_user):
    # psycopg splits a statement into its placeholders once per text, and
    # PostgreSQL keeps a plan per text: a batch of 8 must send the very texts a
    # batch of 1 sent, not longer ones with more placeholders.
    people = [make_user(f"p{n}") for n in range(3)]
    Room.objects.create(name="random")
    # Conversations that exist already, as most sends find them.
    for n in range(3):
        message_store(sender=people[n], send=Send(body="x", client_id=f"s{n}", to="p0"))

    def texts(sends) -> set[str]:
        seen = set()

        def record(execute, sql, params, many, context):
            if "SAVEPOINT" not in sql:  # numbered per use, inside the test's transaction
                seen.add(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            results = message_store_many(sends=sends)
        assert all(isinstance(r, Posted) and r.created for r in results)
        return seen

    def send(n: int) -> Send:
        if n % 2:
            return Send(body="x", client_id=f"m{n}", to="p0")
        return Send(body="x", client_id=f"m{n}", room=("general", "random")[n % 4 // 2])

    one = texts([(people[1], send(1)), (people[1], send(0))])
    many = texts([(people[1 + n % 2], send(n + 2)) for n in range(8)])
    assert many == one


@pytest.mark.django_db
def test_direct_conversation_is_one_row_whoever_writes_first(alice, bob):
    message_store(sender=bob, send=Send(body="hi", client_id="b1", to="alice"))
    message_store(sender=alice, send=Send(body="hey", client_id="a1", to="bob"))
    assert DirectConversation.objects.count() == 1
    assert list(Message.objects.order_by("id").values_list("seq", flat=True)) == [1, 2]


@pytest.mark.django_db
def test_a_batch_finds_each_pair_s_own_conversation_among_crossed_ones(make_user):
    a, b, c, d = (make_user(name) for name in ("ann", "ben", "cat", "dan"))
    # Conversations that pair the batch's users the other way round: a->d and c->b
    # exist, a->b and c->d do not yet, and one batch writes to both.
    message_store(sender=a, send=Send(body="1", client_id="a1", to="dan"))
    message_store(sender=c, send=Send(body="2", client_id="c1", to="ben"))
    results = message_store_many(
        sends=[
            (a, Send(body="3", client_id="a2", to="ben")),
            (c, Send(body="4", client_id="c2", to="dan")),
            (a, Send(body="5", client_id="a3", to="dan")),
        ]
    )
    assert all(isinstance(r, Posted) and r.created for r in results)
    assert DirectConversation.objects.count() == 4

    def conversation(x, y):
        low, high = sorted((x.pk, y.pk))
        return DirectConversation.objects.get(user_low_id=low, user_high_id=high)

    stored = Message.objects.in_bulk([r.message.id for r in results])
    assert [stored[r.message.id].direct_id for r in results] == [
        conversation(a, b).pk,
        conversation(c, d).pk,
        conversation(a, d).pk,
    ]
    # Each conversation numbers its own messages: a->d continues after its first.
    assert [r.message.seq for r in results] == [1, 1, 2]
    assert conversation(a, d).last_seq == 2 and conversation(c, b).last_seq == 1


@pytest.mark.django_db
def test_retry_returns_the_stored_message_unchanged(alice):
    first = message_store(sender=alice, send=Send(body="one", client_id="k", room="general"))
    again = message_store(sender=alice, send=Send(body="two", client_id="k", to="alice"))
    assert first.created and not again.created
    assert again.message == first.message
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_unknown_room_stores_nothing_and_takes_no_seq(alice):
    with pytest.raises(ChatError) as refused:
        message_store(sender=alice, send=Send(body="x", client_id="k", room="nope"))
    assert refused.value.code == ErrorCode.UNKNOWN_ROOM
    assert Message.objects.count() == 0
    ok = message_store(sender=alice, send=Send(body="x", client_id="k2", room="general"))
    assert ok.message.seq == 1


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_senders_get_gapless_seqs_and_ids_in_seq_order(make_user):
    users = [make_user(f"u{n}") for n in range(4)]
    errors = []

    def send_many(user):
        try:
            for n in range(15):
                message_store(sender=user, send=Send(body="x", client_id=f"c{n}", room="general"))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send_many, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = list(Message.objects.order_by("seq").values_list("seq", "id"))
    assert [seq for seq, _ in rows] == list(range(1, 61))
    ids = [id_ for _, id_ in rows]
    assert ids == sorted(ids)


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_message_cannot_take_an_id_while_an_earlier_one_is_uncommitted(alice):
    held, release = threading.Event(), threading.Event()

    def in_flight_send():
        # Stands for a send that has its id but has not committed yet.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_MESSAGE_ID_LOCK])
            held.set()
            release.wait(10)
        connections.close_all()

    done = threading.Event()

    def second_send():
        message_store(sender=alice, send=Send(body="later", client_id="l", room="general"))
        done.set()
        connections.close_all()

    first = threading.Thread(target=in_flight_send)
    first.start()
    assert held.wait(5)
    second = threading.Thread(target=second_send)
    second.start()
    # Wait until the second send queues for the lock, or finishes because it took none.
    deadline = time.monotonic() + 10
    while not done.wait(0.05) and not _someone_waits_for_the_message_id_lock():
        assert time.monotonic() < deadline, "the second send neither waited nor finished"
    assert not done.is_set(), "the second send took an id while the first was in flight"
    release.set()
    first.join()
    second.join(10)
    assert done.is_set()


def _someone_waits_for_the_message_id_lock() -> bool:
    """Tells whether a session of this database is queued for the message-id lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND (classid::bigint << 32 | objid::bigint) = %s AND objsubid = 1"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [_MESSAGE_ID_LOCK],
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db
def test_a_batch_answers_each_send_in_order(alice, bob):
    from chat.messaging.store import message_store_many

    sends = [
        (alice, Send(body="r1", client_id="a", room="general")),
        (alice, Send(body="d1", client_id="b", to="bob")),
        (bob, Send(body="x", client_id="c", room="nowhere")),
        (alice, Send(body="again", client_id="a", room="general")),
        (bob, Send(body="d2", client_id="d", to="alice")),
        (bob, Send(body="r2", client_id="e", room="general")),
        (bob, Send(body="x", client_id="f", to="nobody")),
    ]
    results = message_store_many(sends=sends)
    kinds = [r.code if isinstance(r, ChatError) else r.created for r in results]
    assert kinds == [True, True, "unknown_room", False, True, True, "unknown_user"]
    # The repeat inside the batch is the first message, not a second one.
    assert results[3].message == results[0].message
    assert [results[i].message.seq for i in (0, 5)] == [1, 2]
    assert [results[i].message.seq for i in (1, 4)] == [1, 2]
    assert Message.objects.count() == 4
    assert Room.objects.get(name="general").last_seq == 2
    ids = [results[i].message.id for i in (0, 1, 4, 5)]
    assert ids == sorted(ids)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_concurrent_sends_of_one_process_share_batches_without_gaps(make_user):
    import asyncio

    from asgiref.sync import sync_to_async

    from chat.messaging.batch import message_send

    users = [await sync_to_async(make_user)(f"s{n}") for n in range(5)]
    sends = [
        message_send(
            sender=users[n % 5],
            send=Send(body="x", client_id=f"k{n}", room="general"),
            acknowledge=_ignore,
        )
        for n in range(100)
    ]
    posted = await asyncio.gather(*sends)
    assert sorted(p.message.seq for p in posted) == list(range(1, 101))
    assert len({p.message.id for p in posted}) == 100
    by_seq = sorted(posted, key=lambda p: p.message.seq)
    assert [p.message.id for p in by_seq] == sorted(p.message.id for p in posted)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_batches_stored_in_one_run_are_announced_in_id_order(make_user, monkeypatch):
    # 450 sends at once are three batches (at most 200 each). One hold of the order
    # lock stores them all, each while the one before it is announced; acks and
    # publishing still follow id order, and every send gets its own answer.
    import asyncio

    from asgiref.sync import sync_to_async

    from chat.messaging import batch

    users = [await sync_to_async(make_user)(f"s{n}") for n in range(5)]
    holds, stores, acked, published = [], [], [], []
    order_lock, store_many, publish_many = (
        batch.order_lock,
        batch.message_store_many,
        batch.publish_many,
    )

    @contextlib.contextmanager
    def counted_lock():
        holds.append(1)
        with order_lock():
            yield

    def counted_store(*, sends):
        stores.append(len(sends))
        return store_many(sends=sends)

    async def recorded_publish(events):
        published.extend(event["text"] for _, event in events)
        await publish_many(events)

    monkeypatch.setattr(batch, "order_lock", counted_lock)
    monkeypatch.setattr(batch, "message_store_many", counted_store)
    monkeypatch.setattr(batch, "publish_many", recorded_publish)
    posted = await asyncio.gather(
        *(
            batch.message_send(
                sender=users[n % 5],
                send=Send(body=f"m{n}", client_id=f"k{n}", room="general"),
                acknowledge=lambda result: acked.append(result.message.id),
            )
            for n in range(450)
        )
    )
    assert (holds, stores) == ([1], [200, 200, 50])
    ids = [p.message.id for p in posted]
    assert [p.message.body for p in posted] == [f"m{n}" for n in range(450)]
    assert acked == sorted(ids)
    published_ids = [json.loads(text)["id"] for text in published]
    assert published_ids == sorted(ids)


def _ignore(posted) -> None:
    """An acknowledgement that goes nowhere."""


# --- One send's failure answers that send alone -----------------------------------


@contextlib.contextmanager
def committed_between_reads_and_insert(action):
    """Commits `action` after the batch read what its sends depend on, before it inserts.

    That is the moment another process's commit races the batch: `action` runs on
    the batch's own connection, in autocommit (so it is committed at once), right
    after the batch's read (`_read_batch`, one statement) and before its next
    statement. Yields the IntegrityErrors the batch's statements then meet.
    """
    seen = {"ran": False}
    clashes: list[IntegrityError] = []
    read_batch = store._read_batch

    def read_then_race(readable):
        facts = read_batch(readable)
        if not seen["ran"]:
            seen["ran"] = True
            assert not connection.in_atomic_block, "the batch read and inserted with no gap"
            action()
        return facts

    def wrapper(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        except IntegrityError as clash:
            clashes.append(clash)
            raise

    store._read_batch = read_then_race
    try:
        with connection.execute_wrapper(wrapper):
            yield clashes
    finally:
        store._read_batch = read_batch
    assert seen["ran"], "the batch never reached its insert"


def kind_of(result) -> str | bool:
    """What a client would be told: True (stored now), False (stored before) or the error."""
    if isinstance(result, Posted):
        return result.created
    if isinstance(result, ChatError):
        return str(result.code)
    return type(result).__name__


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_sends_raced_by_another_process_each_get_their_own_answer(alice, bob, make_user):
    carol, erin = make_user("carol"), make_user("erin")
    sends = [
        (alice, Send(body="a1", client_id="a1", room="general")),
        (bob, Send(body="b1 again", client_id="b1", room="general")),  # stored meanwhile
        (alice, Send(body="to bob", client_id="a2", to="bob")),
        (carol, Send(body="x", client_id="c1", room="nowhere")),
        (erin, Send(body="e1", client_id="e1", room="general")),  # deleted meanwhile
        (alice, Send(body="a1 again", client_id="a1", room="general")),
        (carol, Send(body="c2", client_id="c2", room="general")),
    ]
    other = {}

    def another_process_stores_b1_and_deletes_erin():
        other["posted"] = message_store(
            sender=bob, send=Send(body="b1 first", client_id="b1", room="general")
        )
        get_user_model().objects.filter(pk=erin.pk).delete()

    with committed_between_reads_and_insert(another_process_stores_b1_and_deletes_erin) as clashes:
        results = message_store_many(sends=sends)

    assert clashes, "the batch's insert never met the client_id stored meanwhile"
    assert [kind_of(r) for r in results] == [
        True,
        False,
        True,
        "unknown_room",
        "AccountEnded",
        False,
        True,
    ]
    # Each answer is its own send's message: the right sender, client_id and body.
    for (sender, send), result in zip(sends, results, strict=True):
        if isinstance(result, Posted):
            assert (result.message.sender, result.message.client_id) == (
                sender.username,
                send.client_id,
            )
    assert results[1].message == other["posted"].message
    assert results[1].message.body == "b1 first"
    assert results[5].message == results[0].message
    assert results[3].client_id == "c1"
    # Stored once each, nothing of erin's, and general's seqs still have no gap.
    stored = Message.objects.order_by("id")
    assert [(m.sender.username, m.client_id, m.body) for m in stored] == [
        ("bob", "b1", "b1 first"),
        ("alice", "a1", "a1"),
        ("alice", "a2", "to bob"),
        ("carol", "c2", "c2"),
    ]
    assert sorted(m.seq for m in stored if m.room_id) == [1, 2, 3]
    assert Room.objects.get(name="general").last_seq == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_direct_conversation_deleted_after_the_read_is_made_again(alice, bob, make_user):
    carol = make_user("carol")
    message_store(sender=bob, send=Send(body="first", client_id="b1", to="alice"))
    sends = [
        (alice, Send(body="to bob", client_id="a1", to="bob")),  # its conversation goes
        (carol, Send(body="c1", client_id="c1", room="general")),
    ]

    def another_process_deletes_the_conversation():
        DirectConversation.objects.all().delete()

    with committed_between_reads_and_insert(another_process_deletes_the_conversation):
        results = message_store_many(sends=sends)

    assert [kind_of(r) for r in results] == [True, True]
    # The batch read the old conversation's id; the message is in a new one, first in it.
    (conversation,) = DirectConversation.objects.all()
    stored = Message.objects.get(pk=results[0].message.id)
    assert (stored.direct_id, stored.seq, stored.body) == (conversation.pk, 1, "to bob")
    assert conversation.last_seq == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_lone_new_send_stored_meanwhile_gets_its_own_answer_beside_a_refused_one(alice, bob):
    sends = [
        (alice, Send(body="x", client_id="a1", room="nowhere")),
        (bob, Send(body="b1 again", client_id="b1", room="general")),
    ]

    def another_process_stores_b1():
        message_store(sender=bob, send=Send(body="b1 first", client_id="b1", room="general"))

    with committed_between_reads_and_insert(another_process_stores_b1) as clashes:
        results = message_store_many(sends=sends)

    assert clashes
    assert [kind_of(r) for r in results] == ["unknown_room", False]
    assert (results[1].message.client_id, results[1].message.body) == ("b1", "b1 first")
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_deleted_or_deactivated_sender_gets_account_ended_and_stores_nothing(
    alice, bob, make_user
):
    gone, idle = make_user("gone"), make_user("idle")
    gone_id = gone.pk
    gone.delete()
    gone.pk = gone_id  # the object a socket still holds
    get_user_model().objects.filter(pk=idle.pk).update(is_active=False)
    sends = [
        (alice, Send(body="a1", client_id="a1", room="general")),
        (gone, Send(body="g1", client_id="g1", room="general")),
        (idle, Send(body="i1", client_id="i1", to="alice")),
        (bob, Send(body="b1", client_id="b1", room="general")),
        (idle, Send(body="i2", client_id="i2", room="general")),
    ]
    results = message_store_many(sends=sends)
    assert [kind_of(r) for r in results] == [
        True,
        "AccountEnded",
        "AccountEnded",
        True,
        "AccountEnded",
    ]
    assert [results[i].message.seq for i in (0, 3)] == [1, 2]
    assert sorted(Message.objects.values_list("client_id", flat=True)) == ["a1", "b1"]
    with pytest.raises(AccountEnded):
        message_store(sender=idle, send=Send(body="i3", client_id="i3", room="general"))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("bad", ["\ud800", "\x00"], ids=["lone-surrogate", "nul"])
def test_text_the_database_cannot_store_is_refused_alone_inside_a_batch(alice, bob, bad):
    # The socket refuses such text already; a batch from any other caller holds too.
    sends = [
        (alice, Send(body="a1", client_id="a1", room="general")),
        (bob, Send(body=f"b{bad}1", client_id="b1", room="general")),
        (bob, Send(body="b2", client_id="b2", room=f"general{bad}")),
        (alice, Send(body="a2", client_id="a2", to="bob")),
    ]
    results = message_store_many(sends=sends)
    assert [kind_of(r) for r in results] == [True, "bad_frame", "bad_frame", True]
    assert [r.client_id for r in results[1:3]] == ["b1", "b2"]
    assert sorted(Message.objects.values_list("client_id", flat=True)) == ["a1", "a2"]


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_concurrent_commit_of_the_same_client_id_answers_each_send_of_the_batch(alice, bob):
    earlier = message_store(sender=alice, send=Send(body="a1", client_id="a1", room="general"))
    stored, release = threading.Event(), threading.Event()
    other = {}

    def another_process():
        # Stores bob's b1 and holds the id lock until released, uncommitted.
        try:
            with transaction.atomic():
                other["posted"] = message_store(
                    sender=bob, send=Send(body="b1 first", client_id="b1", room="general")
                )
                stored.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=another_process)
    thread.start()
    assert stored.wait(5)

    def release_once_the_batch_waits():
        # The batch has read (b1 not committed, so not seen) and waits for the id lock.
        with connections["default"].cursor() as cursor:
            for _ in range(500):
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.01)
        release.set()
        connections.close_all()

    watcher = threading.Thread(target=release_once_the_batch_waits)
    watcher.start()
    # b1 is the batch's only new send; the others are answered without an insert.
    results = message_store_many(
        sends=[
            (alice, Send(body="x", client_id="a0", room="nowhere")),
            (bob, Send(body="b1 again", client_id="b1", room="general")),
            (alice, Send(body="a1 again", client_id="a1", to="bob")),
        ]
    )
    thread.join(10)
    watcher.join(10)
    assert [kind_of(r) for r in results] == ["unknown_room", False, False]
    assert results[1].message == other["posted"].message
    assert results[2].message == earlier.message
    assert list(Message.objects.order_by("seq").values_list("client_id", "body", "seq")) == [
        ("a1", "a1", 1),
        ("b1", "b1 first", 2),
    ]
