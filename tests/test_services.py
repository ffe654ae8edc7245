"""Storing messages: seq without gaps, idempotency, and ids that commit in order."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from chat.models import DirectConversation, Message, Room
from chat.protocol import ErrorCode, ProtocolError, Send
from chat.services import _MESSAGE_ID_LOCK, message_store

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
def test_direct_conversation_is_one_row_whoever_writes_first(alice, bob):
    message_store(sender=bob, send=Send(body="hi", client_id="b1", to="alice"))
    message_store(sender=alice, send=Send(body="hey", client_id="a1", to="bob"))
    assert DirectConversation.objects.count() == 1
    assert list(Message.objects.order_by("id").values_list("seq", flat=True)) == [1, 2]


@pytest.mark.django_db
def test_retry_returns_the_stored_message_unchanged(alice):
    first = message_store(sender=alice, send=Send(body="one", client_id="k", room="general"))
    again = message_store(sender=alice, send=Send(body="two", client_id="k", to="alice"))
    assert first.created and not again.created
    assert again.message == first.message
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_unknown_room_stores_nothing_and_takes_no_seq(alice):
    with pytest.raises(ProtocolError) as refused:
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
    time.sleep(0.5)
    assert not done.is_set(), "the second send took an id while the first was in flight"
    release.set()
    first.join()
    second.join(10)
    assert done.is_set()


@pytest.mark.django_db
def test_a_batch_answers_each_send_in_order(alice, bob):
    from chat.services import message_store_many

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
    kinds = [r.code if isinstance(r, ProtocolError) else r.created for r in results]
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

    from chat.services import message_send

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


async def _ignore(posted) -> None:
    """An acknowledgement that goes nowhere."""
