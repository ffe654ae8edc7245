"""What `hello` tells a new socket from the database, in one statement.

Every handshake reads it, and in a reconnect storm every socket at once, so it is
written in SQL rather than built with the ORM: building and compiling the ORM's
querysets for these reads cost about ten times what the database took to answer
them (profiled during a storm: 20 ms of Python a handshake against 2 ms of queries),
and it held the interpreter lock that the event loop needs. The rules are those of
chat/rooms.py (`rooms_visible_to`) and chat/messaging/reads.py (`_visible_to`);
tests/test_greeting.py compares the two on the same data, so they cannot drift.

The SQL is portable between PostgreSQL and SQLite: no FILTER, no NULLS LAST, no
arrays, no LATERAL; each conversation's unread counts are scalar subqueries on its
own row.
"""

from datetime import UTC, datetime
from typing import NamedTuple

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from chat.loop_db import Query, Steps, run_steps
from chat.models import (
    DirectConversation,
    LastSeen,
    Message,
    NotificationLevel,
    ReadPosition,
    Room,
)
from chat.protocol import Notify, Unread

# How many direct partners `hello` lists, newest conversation first.
DIRECT_PARTNERS = 100

# Unread counts stop here: counting every unread message of a room with a million
# the user never opened cost the database 150 ms a handshake at 300,000. Mentions
# are counted in full: there are few of them, and they are found from the user's side.
UNREAD_LIMIT = 1000


class Greeting(NamedTuple):
    """What `hello` reads from the database."""

    direct: list[str]
    last_id: int
    rev: int
    unread: list[Unread]
    levels: list[Notify]
    # When each direct partner was last online (None: never recorded).
    last_seen: dict[str, datetime | None]


def _tables() -> dict[str, str]:
    members = Room._meta.get_field("members").remote_field.through._meta.db_table
    mentions = Message._meta.get_field("mentions").remote_field.through._meta.db_table
    return {
        "room": Room._meta.db_table,
        "members": members,
        "direct": DirectConversation._meta.db_table,
        "user": get_user_model()._meta.db_table,
        "read": ReadPosition._meta.db_table,
        "seen": LastSeen._meta.db_table,
        "message": Message._meta.db_table,
        "mentions": mentions,
        "level": NotificationLevel._meta.db_table,
    }


# Unread messages of others after the read position, up to UNREAD_LIMIT, and the
# unread ones among them that mention the user (all of those: there are few, found
# from the user's side), as two columns of a conversation's row. The CASE skips both
# where nothing is unread, which is most conversations of most handshakes. The count
# goes in `seq` order so that PostgreSQL walks the conversation's (room, seq) or
# (direct, seq) index and stops at the limit: without an order, a plan made for a
# conversation of average size read the message table from its start, and behind
# 1,000,000 messages of other rooms that was 150 ms a handshake.
#
# Prepared, the statement should be planned once for every user (a generic plan):
# planning it cost PostgreSQL more than running it (about 3 ms against 0.5).
# PostgreSQL plans it again for each user (a custom plan) whenever the generic
# plan's estimate is the dearer, and every comparison with the user made it so: a
# plan for one user is priced with that user's own figures (how many messages they
# sent, how many direct conversations they have), the generic plan with an average
# user's. So the user is never a constant to the planner: _ME is a scalar subquery
# whose value PostgreSQL learns only when the statement runs, priced the same either
# way, and still an index condition. The limit and `NOT m.deleted` are written into
# the text, not passed, for the same reason: as parameters, each made the generic
# plan the dearer (tests/test_greeting.py).
_ME = "(SELECT %(user)s)"

_UNREAD = """
CASE WHEN {last} > {read} THEN (
  SELECT COUNT(*) FROM (
    SELECT 1 FROM {{message}} m
    WHERE m.{column} = {id} AND m.seq > {read}
      AND NOT m.deleted AND m.sender_id <> {me}
    ORDER BY m.seq
    LIMIT {{limit:d}}
  ) AS unread
) ELSE 0 END AS unread,
CASE WHEN {last} > {read} THEN (
  SELECT COUNT(*) FROM {{mentions}} mm JOIN {{message}} m ON m.id = mm.message_id
  WHERE mm.user_id = {me} AND m.{column} = {id} AND m.seq > {read}
    AND NOT m.deleted AND m.sender_id <> {me}
) ELSE 0 END AS mentions"""

# What every greeting reads, in one statement (each statement costs a round trip,
# the larger part of a handshake's reads: docs/performance.md, eighteenth step and
# twenty-first):
# - every conversation of the user with its read positions: the rooms they may see
#   (open rooms, and private rooms they are in; kind 0), by name, then their direct
#   conversations (kind 1), oldest first, each with the other party, how far the
#   other party has read, when they were last seen, and what is unread (_UNREAD);
# - then the user's levels other than the default: rooms by name (kind 2), then
#   people (kind 3). A private room they have left keeps its level, out of their
#   sight (filtered in Python);
# - on every conversation's row, the id and rev of its newest message and newest
#   change, kept with the conversation by the writers (chat/messaging/store.py):
#   the newest the user may see is the greatest of them. Walking the message table
#   down from its newest row to the first the user may see cost a row for every
#   newer message of other people's conversations (docs/performance.md, twentieth
#   step of issue #16).
_GREETING = """
SELECT g.room_id, g.direct_id, g.name, g.last_seq, g.read_seq, g.their_read, g.last_seen,
       g.kind, g.level, g.last_id, g.last_rev, g.unread, g.mentions
FROM (
  SELECT r.id AS room_id, NULL AS direct_id, r.name AS name, r.last_seq AS last_seq,
         COALESCE(mine.seq, 0) AS read_seq, NULL AS their_read, NULL AS last_seen,
         0 AS kind, r.name AS sort_name, NULL AS level, r.last_id AS last_id,
         r.last_rev AS last_rev,
         {room_unread}
  FROM {{room}} r
  LEFT JOIN {{read}} mine ON mine.room_id = r.id AND mine.user_id = {me}
  WHERE NOT EXISTS (SELECT 1 FROM {{members}} m WHERE m.room_id = r.id)
     OR EXISTS (SELECT 1 FROM {{members}} m WHERE m.room_id = r.id AND m.user_id = {me})
  UNION ALL
  SELECT NULL, d.id, other.username, d.last_seq, COALESCE(mine.seq, 0),
         CASE WHEN d.user_low_id = d.user_high_id THEN NULL ELSE COALESCE(theirs.seq, 0) END,
         seen.last_seen, 1, NULL, NULL, d.last_id, d.last_rev,
         {direct_unread}
  FROM {{direct}} d
  JOIN {{user}} other ON other.id = CASE WHEN d.user_low_id = {me}
                                         THEN d.user_high_id ELSE d.user_low_id END
  LEFT JOIN {{read}} mine ON mine.direct_id = d.id AND mine.user_id = {me}
  LEFT JOIN {{read}} theirs ON theirs.direct_id = d.id AND theirs.user_id <> {me}
  LEFT JOIN {{seen}} seen ON seen.user_id = other.id
  WHERE d.user_low_id = {me} OR d.user_high_id = {me}
  UNION ALL
  SELECT n.room_id, NULL, COALESCE(r.name, peer.username), NULL, NULL, NULL, NULL,
         CASE WHEN n.room_id IS NULL THEN 3 ELSE 2 END, COALESCE(r.name, peer.username),
         n.level, NULL, NULL, NULL, NULL
  FROM {{level}} n
  LEFT JOIN {{room}} r ON r.id = n.room_id
  LEFT JOIN {{user}} peer ON peer.id = n.peer_id
  WHERE n.user_id = {me}
) g
ORDER BY g.kind, g.sort_name, g.direct_id
""".format(
    me=_ME,
    room_unread=_UNREAD.format(
        me=_ME, column="room_id", id="r.id", last="r.last_seq", read="COALESCE(mine.seq, 0)"
    ),
    direct_unread=_UNREAD.format(
        me=_ME, column="direct_id", id="d.id", last="d.last_seq", read="COALESCE(mine.seq, 0)"
    ),
)


class _Row(NamedTuple):
    """A row of _GREETING; a level row (kind 2 or 3) has only the ids, name, kind and
    level."""

    room_id: int | None
    direct_id: int | None
    name: str
    last_seq: int | None
    read_seq: int | None
    their_read: int | None
    last_seen: object
    kind: int
    level: str | None
    last_id: int | None
    last_rev: int | None
    unread: int | None
    mentions: int | None


# What a row of _GREETING is, by its kind.
_ROOM, _PERSON, _ROOM_LEVEL, _PERSON_LEVEL = 0, 1, 2, 3


def _when(value) -> datetime | None:
    # SQLite hands back the text it stores from a UNION: UTC, without a zone.
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = parse_datetime(value)
    return timezone.make_aware(value, UTC) if timezone.is_naive(value) else value


def greeting(*, user_id: int) -> Greeting:
    """Direct partners, newest id and rev, unread, notification levels and last seen,
    read on the calling thread's connection (`greeting_steps`)."""
    return run_steps(greeting_steps(user_id=user_id))


def greeting_steps(*, user_id: int) -> Steps:
    """Reads the greeting: steps (chat/loop_db.py), so that a handshake can run them on
    the event loop.

    Unread counts the messages of others after the read position that are not
    deleted, up to UNREAD_LIMIT; mentions, all those among them that mention the user.
    """
    params = {"user": user_id}
    rows = [
        _Row._make(row)
        for row in (yield Query(_GREETING.format(**_tables(), limit=UNREAD_LIMIT), params))
    ]
    conversations = [row for row in rows if row.kind in (_ROOM, _PERSON)]
    rooms = {row.room_id for row in conversations if row.room_id is not None}
    unread = []
    partners = []  # (conversation id, name, last seen)
    for row in conversations:
        unread.append(
            Unread(
                room=row.name if row.room_id is not None else None,
                with_=row.name if row.direct_id is not None else None,
                read_seq=row.read_seq,
                last_seq=row.last_seq,
                unread=row.unread,
                mentions=row.mentions,
                their_read_seq=row.their_read,
            )
        )
        if row.direct_id is not None:
            partners.append((row.direct_id, row.name, _when(row.last_seen)))
    partners.sort(reverse=True)  # the newest conversation first
    partners = partners[:DIRECT_PARTNERS]
    return Greeting(
        direct=[name for _, name, _ in partners],
        last_id=max((row.last_id for row in conversations), default=0),
        rev=max((row.last_rev for row in conversations), default=0),
        unread=unread,
        levels=[
            Notify(
                room=row.name if row.room_id is not None else None,
                with_=row.name if row.room_id is None else None,
                level=row.level,
            )
            for row in rows
            if row.kind in (_ROOM_LEVEL, _PERSON_LEVEL)
            and (row.room_id is None or row.room_id in rooms)
        ],
        last_seen={name: seen for _, name, seen in partners},
    )
