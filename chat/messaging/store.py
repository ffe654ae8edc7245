"""Storing messages: once per client_id, with `seq`s that have no gaps and ids that
commit in order, and the lock that keeps store and publish in one order across
processes.
"""

import collections
import contextlib
import fcntl
import logging
import zlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from chat import metrics
from chat.db import rows_sql
from chat.errors import OUTAGES, AccountEnded, ChatError, ErrorCode
from chat.messaging import reads
from chat.messaging.attachments import attachment_list, uploads_attach, uploads_for_batch
from chat.messaging.mentions import mentioned_users
from chat.messaging.search import search_index_update
from chat.models import Counter, DirectConversation, Message, Room
from chat.moderation import mute_check_many, muted_error, muted_sql
from chat.protocol import Send, StoredMessage, is_storable
from chat.rooms import room_hidden_sql

logger = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock that makes message ids commit in id order.
_MESSAGE_ID_LOCK = zlib.crc32(b"chat.message.id")
# Whether this thread's connection holds that lock at session level right now.
_order_locked: ContextVar[bool] = ContextVar("chat_order_locked", default=False)


# The Counter row that hands out message revisions (created by a migration).
REV_COUNTER = "rev"

# Failures that belong to the data of some send in a batch, not to the database: a
# client_id another process stored meanwhile, a sender, recipient or room deleted
# since the batch was read, a value the database refuses.
SEND_FAILURES = (IntegrityError, DataError)


@dataclass(frozen=True, slots=True)
class Posted:
    """The outcome of a send: the stored message, and whether this call created it."""

    message: StoredMessage
    created: bool
    recipient_id: int | None = None


def _lock_message_ids() -> None:
    """Serialises the id-to-commit step of every message.

    PostgreSQL hands out ids at insert time, so two concurrent sends could commit
    in the other order; a client that keeps "the largest id seen" would then skip
    the late one during `sync`. Holding this lock from insert to commit makes ids
    visible in increasing order. SQLite already admits one writer at a time.
    Under `order_lock` (same key, held by the session) this is redundant
    and skipped: one round trip less per batch.
    """
    if connection.vendor == "postgresql" and not _order_locked.get():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_MESSAGE_ID_LOCK])


def message_store(*, sender, send: Send) -> Posted:
    """Stores a message once per (sender, client_id) and returns it.

    Raises ChatError for an unknown room or recipient, AccountEnded for a
    sender whose account ended; stores nothing then.
    """
    (result,) = message_store_many(sends=[(sender, send)])
    if isinstance(result, Exception):
        raise result
    return result


def message_store_many(*, sends: list[tuple[Any, Send]]) -> list[Posted | Exception]:
    """Stores a batch of sends in one transaction; returns one result per send, in order.

    A send whose (sender, client_id) is already stored, earlier or in this batch,
    gets that message back with `created` false. A send refused on its own gets,
    instead of a Posted, the exception that answers it and takes no seq: a
    ChatError (unknown room or user), AccountEnded (its sender was deactivated
    or deleted), or an outage met after the sends before it were stored. Only an
    outage before anything was stored is raised, for the whole batch.
    A send's attachments must be its sender's own unattached uploads, named by
    no earlier send of the batch; otherwise it is refused with `bad_attachment`.
    """
    return _store(sends, each_alone_on_failure=True)


def _store(
    sends: list[tuple[Any, Send]], *, each_alone_on_failure: bool
) -> list[Posted | Exception]:
    """Stores sends as message_store_many describes.

    With `each_alone_on_failure` false (a send's own retry), a failure of a send's
    data is raised to the caller instead of retried.
    """
    results: list[Posted | Exception | None] = [None] * len(sends)
    # Text no database can store never gets as far as a query, where it would fail
    # the batch (the socket refuses it already; other callers may not).
    for index, (_, send) in enumerate(sends):
        texts = (send.body, send.client_id, send.room or "", send.to or "", *send.attachments)
        if not all(map(is_storable, texts)):
            client_id = send.client_id if is_storable(send.client_id) else None
            results[index] = ChatError(
                ErrorCode.BAD_FRAME,
                "the message holds text that cannot be stored",
                client_id=client_id,
            )
    readable = [
        (index, sender, send)
        for index, ((sender, send), result) in enumerate(zip(sends, results, strict=True))
        if result is None
    ]
    facts = _read_batch(readable)
    # What only a retry or a muted sender needs is read in full, for those sends alone.
    previous = reads.messages_by_client_id(
        keys={(u.pk, s.client_id) for i, u, s in readable if facts[i].stored_before}
    )
    muted = mute_check_many(
        places={(u.pk, facts[i].room_id) for i, u, _ in readable if facts[i].muted}
    )
    room_ids = {s.room: facts[i].room_id for i, _, s in readable if facts[i].room_id is not None}
    recipient_ids = {
        s.to: facts[i].recipient_id for i, _, s in readable if facts[i].recipient_id is not None
    }
    # The direct conversations the read found; the insert creates the missing ones.
    direct_ids = {
        reads.direct_pair(u.pk, facts[i].recipient_id): facts[i].direct_id
        for i, u, _ in readable
        if facts[i].direct_id is not None
    }
    first: dict[tuple[int, str], int] = {}  # the position that stores each key
    for index, sender, send in readable:
        fact = facts[index]
        key = (sender.pk, send.client_id)
        if not fact.sender_active:
            results[index] = AccountEnded(f"the account of user {sender.pk} ended")
        elif key in previous:
            results[index] = Posted(message=previous[key], created=False)
        elif key in first:
            continue  # a repeat inside this batch: answered below, once the first is stored
        elif send.room is not None and (fact.room_id is None or fact.hidden):
            # A private room is, to a sender who is not its member, a room that does not exist.
            results[index] = ChatError(
                ErrorCode.UNKNOWN_ROOM, f"no room named {send.room!r}", client_id=send.client_id
            )
        elif send.to is not None and fact.recipient_id is None:
            results[index] = ChatError(
                ErrorCode.UNKNOWN_USER, f"no user named {send.to!r}", client_id=send.client_id
            )
        elif (until := muted.get((sender.pk, fact.room_id))) is not None:
            results[index] = muted_error(until, client_id=send.client_id)
        else:
            first[key] = index

    if first:
        batch = [(index, *sends[index]) for index in first.values()]
        try:
            with transaction.atomic():
                stored = _insert(batch, room_ids, recipient_ids, direct_ids)
            metrics.MESSAGES_STORED.inc(sum(isinstance(r, Posted) for r in stored.values()))
        except SEND_FAILURES:
            if not each_alone_on_failure:
                raise
            # One send's failure rolled the whole batch back. Each send again in a
            # transaction of its own, after fresh reads, so each gets its own answer.
            stored = _store_each_alone(batch)
        for index, result in stored.items():
            results[index] = result

    for index, (sender, send) in enumerate(sends):
        if results[index] is None:
            original = results[first[sender.pk, send.client_id]]
            results[index] = (
                Posted(message=original.message, created=False)
                if isinstance(original, Posted)
                else original
            )
    return results


@dataclass(frozen=True, slots=True)
class _Facts:
    """What storing one send depends on, as read for the whole batch at once."""

    sender_active: bool
    stored_before: bool  # a message under its (sender, client_id) exists
    room_id: int | None  # its room's id; None for a direct message or no such room
    hidden: bool  # the room is private and the sender not its member
    recipient_id: int | None  # its recipient's id, when an active user of that name exists
    direct_id: int | None  # the direct conversation of sender and recipient, if it exists
    muted: bool  # the sender is muted there now


def _read_batch(readable: list[tuple[int, Any, Send]]) -> dict[int, _Facts]:
    """Reads what each (index, sender, send) of a batch depends on, in one statement.

    One round trip and no query compiling per batch: this runs for every batch
    of the live path, ahead of its lock and insert. The room and mute rules come
    from their own modules (`room_hidden_sql`, `muted_sql`).
    """
    if not readable:
        return {}
    quote = connection.ops.quote_name
    user_meta = get_user_model()._meta
    users = quote(user_meta.db_table)
    username = user_meta.get_field(get_user_model().USERNAME_FIELD).column
    message_meta = Message._meta
    messages = quote(message_meta.db_table)
    sender_id = message_meta.get_field("sender").column
    client_id = message_meta.get_field("client_id").column
    rooms = quote(Room._meta.db_table)
    direct_meta = DirectConversation._meta
    directs = quote(direct_meta.db_table)
    low = direct_meta.get_field("user_low").column
    high = direct_meta.get_field("user_high").column
    muted, muted_params = muted_sql(user="w.sender", room="r.id")
    wanted, params = rows_sql(
        ("bigint", "bigint", "text", "text", "text"),
        [(i, sender.pk, send.client_id, send.room, send.to) for i, sender, send in readable],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH wanted(i, sender, client_id, room, recipient) AS ({wanted}) "
            f"SELECT w.i, s.id IS NOT NULL, EXISTS (SELECT 1 FROM {messages} m "
            f"WHERE m.{sender_id} = w.sender AND m.{client_id} = w.client_id), "
            f"r.id, {room_hidden_sql(room='r.id', user='w.sender')}, t.id, d.id, {muted} "
            f"FROM wanted w "
            f"LEFT JOIN {users} s ON s.id = w.sender AND s.is_active "
            f"LEFT JOIN {rooms} r ON r.name = w.room "
            f"LEFT JOIN {users} t ON t.{username} = w.recipient AND t.is_active "
            # The pair as DirectConversation stores it, lower id first (`direct_pair`).
            f"LEFT JOIN {directs} d ON d.{low} = CASE WHEN w.sender <= t.id "
            f"THEN w.sender ELSE t.id END "
            f"AND d.{high} = CASE WHEN w.sender <= t.id THEN t.id ELSE w.sender END",
            params + muted_params,
        )
        return {
            index: _Facts(
                bool(active), bool(before), room, bool(hidden), recipient, direct, bool(mute)
            )
            for index, active, before, room, hidden, recipient, direct, mute in cursor.fetchall()
        }


def _store_each_alone(batch: list[tuple[int, Any, Send]]) -> dict[int, Posted | Exception]:
    """Stores each send of a batch in its own transaction; returns each one's result by index."""
    results: dict[int, Posted | Exception] = {}
    for position, (index, sender, send) in enumerate(batch):
        try:
            try:
                (results[index],) = _store([(sender, send)], each_alone_on_failure=False)
            except SEND_FAILURES as failure:
                results[index] = _stored_meanwhile(sender, send, failure)
        except OUTAGES as outage:
            # The sends before this one have their answers (the stored ones will be
            # acknowledged); this one and the rest are not stored, and say so.
            for later, _, _ in batch[position:]:
                results[later] = outage
            break
    return results


def _stored_meanwhile(sender, send: Send, failure: Exception) -> Posted | ChatError:
    """Answers a send whose own transaction failed: the message stored meanwhile, or a refusal.

    Another process may have stored the same client_id; otherwise this send alone
    is refused, with nothing stored.
    """
    found = reads.messages_by_client_id(keys={(sender.pk, send.client_id)})
    if found:
        return Posted(message=next(iter(found.values())), created=False)
    # The class only: a database's message may quote the body.
    logger.warning(
        "message %r of user %s not stored: %s", send.client_id, sender.pk, type(failure).__name__
    )
    if isinstance(failure, IntegrityError):
        # Lost a race twice (a row it needs deleted between read and commit): a
        # retry reads afresh.
        return ChatError(
            ErrorCode.UNAVAILABLE, "the message was not stored; retry", client_id=send.client_id
        )
    return ChatError(
        ErrorCode.BAD_FRAME, "the database cannot store this message", client_id=send.client_id
    )


def _insert(
    batch, room_ids: dict, recipient_ids: dict, direct_ids: dict
) -> dict[int, Posted | ChatError]:
    """Inserts the batch in the current transaction: seqs without gaps, ids in commit order.

    `room_ids` and `recipient_ids` give the id of each room and recipient the batch
    names; `direct_ids` the id of each direct conversation already read, by (low,
    high) pair.

    A send refused for its attachments gets its ChatError instead, and takes no seq.
    """
    _lock_message_ids()
    # The uploads of every send, read and locked in one query (after the order lock,
    # which every other writer of messages takes first too).
    claims = uploads_for_batch(batch=batch)
    refused = {index: claim for index, claim in claims.items() if isinstance(claim, ChatError)}
    if refused:
        batch = [entry for entry in batch if entry[0] not in refused]
        if not batch:
            return dict(refused)
    # Direct conversations: one row per pair, created on the first message.
    pairs = {
        reads.direct_pair(sender.pk, recipient_ids[send.to])
        for _, sender, send in batch
        if send.to is not None
    }
    directs = {pair: direct_ids[pair] for pair in pairs if pair in direct_ids}
    directs |= _directs_created(pairs - directs.keys())

    def conversation(sender, send) -> tuple[str, int]:
        if send.room is not None:
            return Room._meta.db_table, room_ids[send.room]
        pair = reads.direct_pair(sender.pk, recipient_ids[send.to])
        return DirectConversation._meta.db_table, directs[pair]

    # Each conversation's counter moves once by its number of new messages.
    counts = collections.Counter(conversation(sender, send) for _, sender, send in batch)
    next_seq = {}
    for table in {table for table, _ in counts}:
        wanted = {pk: count for (name, pk), count in counts.items() if name == table}
        for pk, first in _take_seqs(table, wanted).items():
            next_seq[table, pk] = first
    if counts.keys() - next_seq.keys():
        # A conversation row deleted since the batch was read (a room removed by
        # staff, a user deleted): nothing to number its messages with.
        raise IntegrityError("a conversation of the batch was deleted meanwhile")

    now = timezone.now()
    first_rev = take_revs(len(batch))
    mentioned = mentioned_users([send.body for _, _, send in batch])
    messages = []
    for position, (index, sender, send) in enumerate(batch):
        key = conversation(sender, send)
        seq, next_seq[key] = next_seq[key], next_seq[key] + 1
        recipient_id = recipient_ids[send.to] if send.to is not None else None
        messages.append(
            _NewMessage(
                sender_id=sender.pk,
                room_id=room_ids[send.room] if send.room is not None else None,
                recipient_id=recipient_id,
                direct_id=key[1] if recipient_id is not None else None,
                body=send.body,
                client_id=send.client_id,
                seq=seq,
                rev=first_rev + position,
                mentioned=list(mentioned[position]),
                attachments=attachment_list(claims.get(index, [])),
            )
        )
    # Rows are inserted in batch order, so ids (and revs) rise with seq inside each
    # conversation.
    _insert_rows(messages, sent_at=now)
    _note_newest(messages)
    search_index_update(messages=[(message.pk, message.body) for message in messages])
    Message.mentions.through.objects.bulk_create(
        Message.mentions.through(message_id=message.pk, user_id=user_id)
        for message, users in zip(messages, mentioned, strict=True)
        for user_id in users.values()
    )
    uploads_attach(
        attached=[
            (message.pk, claims[index])
            for (index, _, _), message in zip(batch, messages, strict=True)
            if index in claims
        ]
    )
    posted: dict[int, Posted | ChatError] = dict(refused)
    for (index, sender, send), message in zip(batch, messages, strict=True):
        posted[index] = Posted(
            message=StoredMessage(
                id=message.pk,
                seq=message.seq,
                sender=sender.get_username(),
                body=message.body,
                sent_at=now,
                client_id=message.client_id,
                room=send.room,
                to=send.to,
                rev=message.rev,
                mentions=tuple(message.mentioned),
                attachments=tuple(message.attachments),
            ),
            created=True,
            recipient_id=message.recipient_id,
        )
    return posted


@dataclass(slots=True)
class _NewMessage:
    """A message row about to be inserted; `pk` is set by the insert."""

    sender_id: int
    room_id: int | None
    recipient_id: int | None
    direct_id: int | None
    body: str
    client_id: str
    seq: int
    rev: int
    mentioned: list[str]
    attachments: list[dict]
    pk: int | None = None


# The columns `_insert_rows` fills, by field name, with each one's PostgreSQL type;
# the rest take their defaults.
_INSERTED = (
    ("sender", "bigint"), ("room", "bigint"), ("recipient", "bigint"), ("direct", "bigint"),
    ("body", "text"), ("client_id", "text"), ("seq", "bigint"), ("sent_at", "timestamptz"),
    ("rev", "bigint"), ("deleted", "boolean"), ("reactions", "jsonb"), ("mentioned", "jsonb"),
    ("attachments", "jsonb"),
)  # fmt: skip


def _row(m: _NewMessage, sent, no_reactions) -> tuple:
    """The values of one new message, in `_INSERTED`'s order, as the database takes them."""
    adapt = connection.ops.adapt_json_value
    return (
        m.sender_id, m.room_id, m.recipient_id, m.direct_id, m.body, m.client_id, m.seq,
        sent, m.rev, False, no_reactions, adapt(m.mentioned, None), adapt(m.attachments, None),
    )  # fmt: skip


def _insert_rows(messages: list[_NewMessage], *, sent_at) -> None:
    """Inserts new message rows in one statement and sets each one's `pk`.

    The live path's insert, written out: the ORM's bulk_create spent more of the
    database thread than the database did, preparing every value of every field
    of every model instance. The values here are what those fields would store:
    JSON adapted by the backend, the time adapted once for the whole batch.
    """
    if not messages:
        return
    meta = Message._meta
    quote = connection.ops.quote_name
    names = [name for name, _ in _INSERTED]
    columns = ", ".join(quote(meta.get_field(name).column) for name in names)
    ops = connection.ops
    sent = ops.adapt_datetimefield_value(sent_at)
    no_reactions = ops.adapt_json_value([], None)
    new, params = rows_sql(
        [kind for _, kind in _INSERTED],
        [_row(m, sent, no_reactions) for m in messages],
    )
    rev = quote(meta.get_field("rev").column)
    with connection.cursor() as cursor:
        # In revision order, which is batch order: ids rise with seq in each
        # conversation. Each row is told by its revision, whatever order RETURNING keeps.
        cursor.execute(
            f"WITH new({', '.join(names)}) AS ({new}) "
            f"INSERT INTO {quote(meta.db_table)} ({columns}) "
            f"SELECT {', '.join(names)} FROM new ORDER BY rev "
            f"RETURNING {quote(meta.pk.column)}, {rev}",
            params,
        )
        ids = {rev: pk for pk, rev in cursor.fetchall()}
    for m in messages:
        m.pk = ids[m.rev]


def _note_newest(messages: list[_NewMessage]) -> None:
    """Records the newest id and revision of each conversation the batch wrote to."""
    newest: dict[tuple[str, int], tuple[int, int]] = {}
    for m in messages:
        if m.room_id is not None:
            key = Room._meta.db_table, m.room_id
        else:
            key = DirectConversation._meta.db_table, m.direct_id
        last_id, last_rev = newest.get(key, (0, 0))
        newest[key] = max(last_id, m.pk), max(last_rev, m.rev)
    for table in sorted({table for table, _ in newest}):
        rows = [(pk, *ids) for (name, pk), ids in newest.items() if name == table]
        _newest_update(table, rows)


def newest_noted(message: Message) -> None:
    """Records a changed message's new revision as its conversation's newest, if it is."""
    if message.room_id is not None:
        _newest_update(Room._meta.db_table, [(message.room_id, 0, message.rev)])
    elif message.direct_id is not None:
        _newest_update(DirectConversation._meta.db_table, [(message.direct_id, 0, message.rev)])


def _newest_update(table: str, rows: list[tuple[int, int, int]]) -> None:
    """Raises `last_id` and `last_rev` of conversations of `table` to at least the
    (conversation id, id, rev) of `rows`, in one statement.

    Writers hold the order lock, so the values only rise; the comparison keeps a
    conversation's newest even if a writer ever came late.
    """
    newest, params = rows_sql(("bigint", "bigint", "bigint"), rows)
    greater = "CASE WHEN newest.{0} > {1}.{0} THEN newest.{0} ELSE {1}.{0} END"
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH newest(id, last_id, last_rev) AS ({newest}) "
            f"UPDATE {table} SET last_id = {greater.format('last_id', table)}, "
            f"last_rev = {greater.format('last_rev', table)} "
            f"FROM newest WHERE {table}.id = newest.id",
            params,
        )


def newest_refresh() -> None:
    """Sets every conversation's newest id and revision from its messages: for rows
    written by other means than this module (the benchmark's bulk seeding)."""
    message = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        for table, column in (
            (Room._meta.db_table, "room_id"),
            (DirectConversation._meta.db_table, "direct_id"),
        ):
            newest = f"FROM {message} m WHERE m.{column} = {table}.id"
            cursor.execute(
                f"UPDATE {table} SET last_id = COALESCE((SELECT MAX(m.id) {newest}), 0), "
                f"last_rev = COALESCE((SELECT MAX(m.rev) {newest}), 0)"
            )


def take_revs(count: int) -> int:
    """Reserves `count` consecutive message revisions; returns the first.

    The counter row stays locked until commit, so revisions, like ids under the
    order lock, become visible in increasing order.
    """
    table = Counter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET value = value + %s WHERE name = %s RETURNING value",
            [count, REV_COUNTER],
        )
        row = cursor.fetchone()
    if row is None:
        raise IntegrityError(f"the {REV_COUNTER!r} counter row is missing")
    return row[0] - count + 1


def _directs_created(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """Creates the DirectConversations of (low, high) pairs the batch's read did not find.

    Returns each one's id; a row another process created meanwhile is kept, not doubled.
    """
    if not pairs:
        return {}
    DirectConversation.objects.bulk_create(
        [DirectConversation(user_low_id=low, user_high_id=high) for low, high in pairs],
        ignore_conflicts=True,
    )
    return _direct_rows(pairs)


def _direct_rows(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """The ids of the conversations of exactly these (low, high) pairs, in one statement.

    Matched as pairs in SQL: filtering lows and highs separately read every
    conversation among all of them (hundreds of rows for a batch of 50 messages)
    to keep a few.
    """
    table = DirectConversation._meta.db_table
    low = DirectConversation._meta.get_field("user_low").column
    high = DirectConversation._meta.get_field("user_high").column
    wanted, params = rows_sql(("bigint", "bigint"), list(pairs))
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH wanted(low, high) AS ({wanted}) "
            f"SELECT d.{low}, d.{high}, d.id FROM {table} d "
            f"JOIN wanted ON d.{low} = wanted.low AND d.{high} = wanted.high",
            params,
        )
        return {(a, b): pk for a, b, pk in cursor.fetchall()}


def _take_seqs(table: str, counts: dict[int, int]) -> dict[int, int]:
    """Reserves seqs for several conversations of one table in one statement.

    `counts` maps a conversation id to how many seqs it needs; returns the first
    reserved seq of each. The rows stay locked until commit.
    """
    wanted, params = rows_sql(("bigint", "bigint"), list(counts.items()))
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH wanted(id, n) AS ({wanted}) "
            f"UPDATE {table} SET last_seq = {table}.last_seq + wanted.n FROM wanted "
            f"WHERE {table}.id = wanted.id RETURNING {table}.id, {table}.last_seq",
            params,
        )
        return {pk: last - counts[pk] + 1 for pk, last in cursor.fetchall()}


@contextlib.contextmanager
def order_lock():
    """Holds the message-order lock across store and publish (a batch, an edit, a reaction).

    PostgreSQL: a session-level advisory lock on the same key as the
    per-transaction one in `_lock_message_ids`, so it also spans the commit.
    SQLite: several processes may share one database file (with Redis), and
    SQLite's write lock ends at commit, before the publish; an exclusive lock on a
    file beside the database spans both. An in-memory database has one process.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_MESSAGE_ID_LOCK])
        locked = _order_locked.set(True)
        try:
            yield
        finally:
            _order_locked.reset(locked)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_MESSAGE_ID_LOCK])
    elif connection.vendor == "sqlite" and not connection.is_in_memory_db():
        with open(f"{connection.settings_dict['NAME']}.publish-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    else:
        yield
