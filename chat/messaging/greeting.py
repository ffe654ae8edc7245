"""What `hello` tells a new socket from the database, in one statement (three when the
user has something unread).

Every handshake reads it, and in a reconnect storm every socket at once, so it is
written in SQL rather than built with the ORM: building and compiling the ORM's
querysets for these reads cost about ten times what the database took to answer
them (profiled during a storm: 20 ms of Python a handshake against 2 ms of queries),
and it held the interpreter lock that the event loop needs. The rules are those of
chat/rooms.py (`rooms_visible_to`) and chat/messaging/reads.py (`_visible_to`);
tests/test_greeting.py compares the two on the same data, so they cannot drift.

The SQL is portable between PostgreSQL and SQLite: no FILTER, no NULLS LAST, no
arrays; the conversations' list of conditions is written out from the first
statement's rows.
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


# What every greeting reads, in one statement (each statement costs a round trip,
# the larger part of a handshake's reads: docs/performance.md, eighteenth step):
# - every conversation of the user with its read positions: the rooms they may see
#   (open rooms, and private rooms they are in; kind 0), by name, then their direct
#   conversations (kind 1), oldest first, each with the other party, how far the
#   other party has read, and when they were last seen;
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
       g.kind, g.level, g.last_id, g.last_rev
FROM (
  SELECT r.id AS room_id, NULL AS direct_id, r.name AS name, r.last_seq AS last_seq,
         COALESCE(mine.seq, 0) AS read_seq, NULL AS their_read, NULL AS last_seen,
         0 AS kind, r.name AS sort_name, NULL AS level, r.last_id AS last_id,
         r.last_rev AS last_rev
  FROM {room} r
  LEFT JOIN {read} mine ON mine.room_id = r.id AND mine.user_id = %(user)s
  WHERE NOT EXISTS (SELECT 1 FROM {members} m WHERE m.room_id = r.id)
     OR EXISTS (SELECT 1 FROM {members} m WHERE m.room_id = r.id AND m.user_id = %(user)s)
  UNION ALL
  SELECT NULL, d.id, other.username, d.last_seq, COALESCE(mine.seq, 0),
         CASE WHEN d.user_low_id = d.user_high_id THEN NULL ELSE COALESCE(theirs.seq, 0) END,
         seen.last_seen, 1, NULL, NULL, d.last_id, d.last_rev
  FROM {direct} d
  JOIN {user} other ON other.id = CASE WHEN d.user_low_id = %(user)s
                                       THEN d.user_high_id ELSE d.user_low_id END
  LEFT JOIN {read} mine ON mine.direct_id = d.id AND mine.user_id = %(user)s
  LEFT JOIN {read} theirs ON theirs.direct_id = d.id AND theirs.user_id <> %(user)s
  LEFT JOIN {seen} seen ON seen.user_id = other.id
  WHERE d.user_low_id = %(user)s OR d.user_high_id = %(user)s
  UNION ALL
  SELECT n.room_id, NULL, COALESCE(r.name, peer.username), NULL, NULL, NULL, NULL,
         CASE WHEN n.room_id IS NULL THEN 3 ELSE 2 END, COALESCE(r.name, peer.username),
         n.level, NULL, NULL
  FROM {level} n
  LEFT JOIN {room} r ON r.id = n.room_id
  LEFT JOIN {user} peer ON peer.id = n.peer_id
  WHERE n.user_id = %(user)s
) g
ORDER BY g.kind, g.sort_name, g.direct_id
"""

# What a row of _GREETING is, by its kind.
_ROOM, _PERSON, _ROOM_LEVEL, _PERSON_LEVEL = 0, 1, 2, 3
_KIND = 7


# Unread messages of others in one conversation with something after the read
# position, up to UNREAD_LIMIT; one such branch per conversation, joined with
# UNION ALL, each stopping at the limit.
_UNREAD_IN = """
SELECT {n}, COUNT(*) FROM (
  SELECT 1 FROM {message} m
  WHERE {after} AND m.deleted = %(false)s AND m.sender_id <> %(user)s
  LIMIT %(limit)s
) AS unread{n}
"""

# Unread messages of others that mention the user, in the conversations with
# something after the read position ({behind} lists them), from the user's mentions.
_MENTIONED = """
SELECT m.room_id, m.direct_id, COUNT(*)
FROM {mentions} mm
JOIN {message} m ON m.id = mm.message_id
WHERE mm.user_id = %(user)s AND m.deleted = %(false)s AND m.sender_id <> %(user)s
  AND ({behind})
GROUP BY m.room_id, m.direct_id
"""


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
    tables = _tables()
    params = {"user": user_id, "false": False}
    rows = yield Query(_GREETING.format(**tables), params)
    conversations = [row for row in rows if row[_KIND] in (_ROOM, _PERSON)]
    last_id = max((row[-2] for row in conversations), default=0)
    rev = max((row[-1] for row in conversations), default=0)
    level_rows = [row for row in rows if row[_KIND] in (_ROOM_LEVEL, _PERSON_LEVEL)]
    branches, behind, behind_params = [], [], {"limit": UNREAD_LIMIT}
    for n, (room_id, direct_id, _, last_seq, read, *_) in enumerate(conversations):
        if last_seq > read:
            column = "room_id" if room_id is not None else "direct_id"
            after = f"(m.{column} = %(c{n})s AND m.seq > %(r{n})s)"
            branches.append(_UNREAD_IN.format(n=n, after=after, **tables))
            behind.append(after)
            behind_params[f"c{n}"] = room_id if room_id is not None else direct_id
            behind_params[f"r{n}"] = read
    counts, mentioned = {}, {}
    if branches:
        all_params = {**params, **behind_params}
        counts = dict((yield Query(" UNION ALL ".join(branches), all_params)))
        rows = yield Query(_MENTIONED.format(behind=" OR ".join(behind), **tables), all_params)
        mentioned = {(room, direct): count for room, direct, count in rows}
    rooms = {room_id for room_id, *_ in conversations if room_id is not None}
    unread = []
    partners = []  # (conversation id, name, last seen)
    for n, (room_id, direct_id, name, last_seq, read, their_read, seen, *_) in enumerate(
        conversations
    ):
        count, mentions = counts.get(n, 0), mentioned.get((room_id, direct_id), 0)
        unread.append(
            Unread(
                room=name if room_id is not None else None,
                with_=name if direct_id is not None else None,
                read_seq=read,
                last_seq=last_seq,
                unread=count,
                mentions=mentions,
                their_read_seq=their_read,
            )
        )
        if direct_id is not None:
            partners.append((direct_id, name, _when(seen)))
    partners.sort(reverse=True)  # the newest conversation first
    partners = partners[:DIRECT_PARTNERS]
    return Greeting(
        direct=[name for _, name, _ in partners],
        last_id=last_id or 0,
        rev=rev or 0,
        unread=unread,
        levels=[
            Notify(
                room=name if room_id is not None else None,
                with_=name if room_id is None else None,
                level=level,
            )
            for room_id, _, name, *_, level, _, _ in level_rows
            if room_id is None or room_id in rooms
        ],
        last_seen={name: seen for _, name, seen in partners},
    )
