"""The `hello` greeting, read in hand-written SQL, against the ORM rules it replaced.

chat/messaging/greeting.py answers in one portable SQL statement for speed; the
rules it must follow live on in the ORM selectors (`rooms_visible_to`,
`messages_visible_to`). These tests build a user's world with rooms open, private
and left, direct conversations, deletions, mentions, read positions, notification
levels and last-seen times, and compare the greeting field by field with what the
ORM says, so the SQL cannot drift from the visibility rules unnoticed.
"""

import itertools
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.models import Max, Q
from django.test.utils import CaptureQueriesContext

from chat.last_seen import last_seen_record
from chat.messaging.changes import message_delete, message_edit, message_react
from chat.messaging.greeting import Greeting, greeting
from chat.messaging.notify_levels import notify_level_set
from chat.messaging.read_state import read_mark
from chat.messaging.reads import (
    message_changes_page,
    message_sync_page,
    messages_visible_to,
    stored_messages,
)
from chat.messaging.store import message_store, newest_refresh
from chat.models import (
    DirectConversation,
    LastSeen,
    Message,
    NotificationLevel,
    ReadPosition,
    Room,
)
from chat.protocol import Notify, Send, Unread
from chat.rooms import rooms_visible_to

pytestmark = pytest.mark.django_db

# Open rooms whose order depends on how the database sorts '-', '_' and letters.
OPEN_ROOMS = ("zeta", "alpha-b", "alpha_b", "alphab")
BOB_SEEN = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
_client_ids = itertools.count()


def _say(sender, body: str, **target) -> int:
    """Stores a message as a socket would (`target`: room= or to=); returns its id."""
    send = Send(body=body, client_id=f"c{next(_client_ids)}", **target)
    return message_store(sender=sender, send=send).message.id


def _private(name: str, *members) -> Room:
    """A room with members: private to them."""
    room = Room.objects.create(name=name)
    room.members.add(*members)
    return room


# The oracle: the same answer built with the ORM selectors, one rule at a time.


def _partner(conversation: DirectConversation, user):
    return conversation.user_high if conversation.user_low_id == user.pk else conversation.user_low


def _read_seq(user, **where) -> int:
    found = ReadPosition.objects.filter(user=user, **where).values_list("seq", flat=True).first()
    return found or 0


def _unread_entry(user, *, room=None, direct=None) -> Unread:
    """One conversation's entry: others' live messages after my read position."""
    where = {"room": room} if room is not None else {"direct": direct}
    read = _read_seq(user, **where)
    waiting = Message.objects.filter(seq__gt=read, deleted=False, **where).exclude(sender=user)
    if room is not None:
        name, last_seq, their_read = {"room": room.name, "with_": None}, room.last_seq, None
    else:
        other = _partner(direct, user)
        name, last_seq = {"room": None, "with_": other.username}, direct.last_seq
        notes_to_self = direct.user_low_id == direct.user_high_id
        their_read = None if notes_to_self else _read_seq(other, direct=direct)
    return Unread(
        **name,
        read_seq=read,
        last_seq=last_seq,
        unread=waiting.count(),
        mentions=waiting.filter(mentions=user).count(),
        their_read_seq=their_read,
    )


def _oracle(user) -> Greeting:
    """What the greeting of `user` must say, from the ORM selectors."""
    visible = messages_visible_to(user_id=user.pk).aggregate(last_id=Max("id"), rev=Max("rev"))
    rooms = list(rooms_visible_to(user_id=user.pk))  # Room.Meta orders by name
    directs = list(
        DirectConversation.objects.filter(Q(user_low=user) | Q(user_high=user))
        .select_related("user_low", "user_high")
        .order_by("id")
    )
    newest_first = [_partner(d, user) for d in reversed(directs)]
    levels = NotificationLevel.objects.filter(user=user)
    room_levels = levels.filter(room__in=rooms_visible_to(user_id=user.pk)).order_by("room__name")
    peer_levels = levels.filter(peer__isnull=False).order_by("peer__username")
    return Greeting(
        direct=[partner.username for partner in newest_first],
        last_id=visible["last_id"] or 0,
        rev=visible["rev"] or 0,
        unread=[_unread_entry(user, room=room) for room in rooms]
        + [_unread_entry(user, direct=direct) for direct in directs],
        levels=[Notify(room=n.room.name, with_=None, level=n.level) for n in room_levels]
        + [Notify(room=None, with_=n.peer.username, level=n.level) for n in peer_levels],
        last_seen={
            partner.username: LastSeen.objects.filter(user=partner)
            .values_list("last_seen", flat=True)
            .first()
            for partner in newest_first
        },
    )


def _assert_same(actual: Greeting, expected: Greeting) -> None:
    """Compares field by field, so a failure names the field that drifted."""
    assert actual.direct == expected.direct
    assert actual.last_id == expected.last_id
    assert actual.rev == expected.rev
    assert [(u.room, u.with_) for u in actual.unread] == [
        (u.room, u.with_) for u in expected.unread
    ]
    for got, want in zip(actual.unread, expected.unread, strict=True):
        assert got == want
    assert actual.levels == expected.levels
    assert actual.last_seen == expected.last_seen


def _by_conversation(entries: list[Unread]) -> dict:
    return {entry.room or f"@{entry.with_}": entry for entry in entries}


@pytest.fixture
def world(make_user):
    """ann's world: what she may see, what she may not, and what she has read."""
    ann, bob, carol = make_user("ann"), make_user("bob"), make_user("carol")
    for name in OPEN_ROOMS:  # "general" comes with the database
        Room.objects.create(name=name)
    _private("inner", ann, bob)
    _private("hidden", bob, carol)
    left = _private("left", ann, bob)

    # Open rooms: others' messages, ann's own, a mention, a deleted mention.
    _say(bob, "hi", room="general")
    _say(carol, "@ann look", room="general")
    _say(ann, "mine, @ann", room="general")
    gone = _say(bob, "@ann soon gone", room="general")
    _say(carol, "more", room="general")
    message_delete(user_id=bob.pk, message_id=gone)
    for body in ("z1", "z2 @ann", "z3"):
        _say(bob, body, room="zeta")
    later_mention = _say(carol, "plain", room="alpha-b")
    message_edit(user_id=carol.pk, message_id=later_mention, body="now @ann")
    _say(bob, "underscore", room="alpha_b")
    _say(carol, "@bob, not her", room="alpha_b")
    # Private rooms: hers, one she left, one never hers.
    _say(bob, "@ann secret", room="inner")
    _say(ann, "ok", room="inner")
    _say(ann, "before leaving", room="left")
    _say(bob, "@ann still there?", room="left")
    _say(bob, "@ann behind her back", room="hidden")
    _say(carol, "indeed", room="hidden")

    # Direct conversations, oldest first: bob, ann's notes, carol; bob with carol.
    _say(bob, "dm1 @ann", to="ann")
    _say(ann, "dm2", to="bob")
    _say(bob, "dm3", to="ann")
    unsaid = _say(bob, "dm4 @ann", to="ann")
    _say(ann, "note 1 @ann", to="ann")
    _say(ann, "note 2", to="ann")
    _say(carol, "c1", to="ann")
    newest_seen = _say(carol, "c2 @ann", to="ann")
    _say(bob, "not for ann @ann", to="carol")

    read_mark(user=ann, room="general", with_=None, seq=2)  # behind
    read_mark(user=ann, room="zeta", with_=None, seq=99)  # caught up (capped at 3)
    read_mark(user=ann, room=None, with_="bob", seq=1)
    read_mark(user=bob, room=None, with_="ann", seq=2)  # "seen" part of it
    read_mark(user=bob, room="general", with_=None, seq=5)  # bob's, not ann's

    notify_level_set(user=ann, room="zeta", with_=None, level="none")
    notify_level_set(user=ann, room="inner", with_=None, level="all")
    notify_level_set(user=ann, room="left", with_=None, level="all")
    notify_level_set(user=ann, room=None, with_="bob", level="all")
    notify_level_set(user=ann, room=None, with_="ann", level="none")
    notify_level_set(user=bob, room="general", with_=None, level="none")
    left.members.remove(ann)  # her level there stays stored, out of sight

    last_seen_record(username="bob", at=BOB_SEEN)

    # Newest of what she sees: a deletion after the last message she may see...
    message_delete(user_id=bob.pk, message_id=unsaid)
    # ...then newer ids and revs she may not see.
    _say(carol, "newest of all", room="hidden")
    _say(bob, "newer still @ann", room="left")
    _say(carol, "between them", to="bob")
    return {
        "ann": ann,
        "newest_seen": newest_seen,
        "unsaid": Message.objects.get(pk=unsaid),
    }


def test_greeting_matches_the_orm_rules_on_a_rich_world(world):
    ann = world["ann"]
    actual = greeting(user_id=ann.pk)
    _assert_same(actual, _oracle(ann))


def test_greeting_of_the_rich_world_holds_the_expected_values(world):
    ann, newest_seen, unsaid = world["ann"], world["newest_seen"], world["unsaid"]
    actual = greeting(user_id=ann.pk)

    visible_ids = messages_visible_to(user_id=ann.pk).values_list("id", flat=True)
    assert actual.last_id == max(visible_ids) == newest_seen
    assert actual.rev == unsaid.rev  # the deletion came after the last message she sees
    assert actual.last_id < Message.objects.aggregate(Max("id"))["id__max"]
    assert actual.rev < Message.objects.aggregate(Max("rev"))["rev__max"]

    assert actual.direct == ["carol", "ann", "bob"]
    rooms = [entry.room for entry in actual.unread if entry.room is not None]
    assert sorted(rooms) == sorted(["general", *OPEN_ROOMS, "inner"])
    assert rooms == list(
        Room.objects.filter(name__in=rooms).order_by("name").values_list("name", flat=True)
    )
    entries = _by_conversation(actual.unread)
    # general: bob, carol's @ann, ann's own, bob's deleted @ann, carol; read to 2.
    assert entries["general"] == Unread("general", None, 2, 5, 1, 0, None)
    assert entries["zeta"] == Unread("zeta", None, 3, 3, 0, 0, None)
    assert entries["alpha-b"] == Unread("alpha-b", None, 0, 1, 1, 1, None)
    assert entries["alpha_b"] == Unread("alpha_b", None, 0, 2, 2, 0, None)
    assert entries["alphab"] == Unread("alphab", None, 0, 0, 0, 0, None)
    assert entries["inner"] == Unread("inner", None, 0, 2, 1, 1, None)
    # bob: dm1 (read), dm2 (hers), dm3, dm4 (deleted); bob read to 2.
    assert entries["@bob"] == Unread(None, "bob", 1, 4, 1, 0, 2)
    assert entries["@ann"] == Unread(None, "ann", 0, 2, 0, 0, None)
    assert entries["@carol"] == Unread(None, "carol", 0, 2, 2, 1, 0)

    # The level of the room she left is still stored, but not hers to see.
    assert NotificationLevel.objects.filter(user=ann, room__name="left").exists()
    assert actual.levels == [
        Notify("inner", None, "all"),
        Notify("zeta", None, "none"),
        Notify(None, "ann", "none"),
        Notify(None, "bob", "all"),
    ]
    assert actual.last_seen == {"carol": None, "ann": None, "bob": BOB_SEEN}


def test_a_user_with_nothing_sees_only_empty_open_rooms(make_user):
    bob, carol, dave = make_user("bob"), make_user("carol"), make_user("dave")
    for name in OPEN_ROOMS:
        Room.objects.create(name=name)
    _private("hidden", bob, carol)
    # Others' messages, levels and last-seen times, none of them dave's.
    _say(bob, "@dave private", room="hidden")
    _say(carol, "@dave between us", to="bob")
    _say(bob, "note", to="bob")
    notify_level_set(user=bob, room="hidden", with_=None, level="all")
    notify_level_set(user=carol, room=None, with_="dave", level="none")
    last_seen_record(username="bob", at=BOB_SEEN)

    actual = greeting(user_id=dave.pk)

    _assert_same(actual, _oracle(dave))
    assert actual.last_id == 0
    assert actual.rev == 0
    assert actual.direct == []
    assert actual.levels == []
    assert actual.last_seen == {}
    open_rooms = list(Room.objects.filter(members=None).values_list("name", flat=True))
    assert sorted(open_rooms) == sorted(["general", *OPEN_ROOMS])
    assert actual.unread == [Unread(name, None, 0, 0, 0, 0, None) for name in open_rooms]


def test_a_user_with_no_conversation_at_all_is_greeted_with_nothing(make_user):
    erin = make_user("erin")
    Room.objects.all().delete()  # not even "general"

    actual = greeting(user_id=erin.pk)

    _assert_same(actual, _oracle(erin))
    assert actual == Greeting(direct=[], last_id=0, rev=0, unread=[], levels=[], last_seen={})


def test_levels_for_people_without_a_conversation_and_for_rooms_come_in_order(make_user):
    erin = make_user("erin")
    for name in ("yak", "ant"):
        make_user(name)
        Room.objects.create(name=f"room-{name}")
        notify_level_set(user=erin, room=f"room-{name}", with_=None, level="none")
        notify_level_set(user=erin, room=None, with_=name, level="all")  # never talked to

    actual = greeting(user_id=erin.pk)

    _assert_same(actual, _oracle(erin))
    assert actual.levels == [
        Notify("room-ant", None, "none"),
        Notify("room-yak", None, "none"),
        Notify(None, "ant", "all"),
        Notify(None, "yak", "all"),
    ]
    assert actual.direct == []


def test_unread_stops_at_the_limit_and_mentions_are_counted_in_full(make_user, monkeypatch):
    from chat.messaging import greeting as greeting_module

    monkeypatch.setattr(greeting_module, "UNREAD_LIMIT", 3)
    ann, bob = make_user("ann"), make_user("bob")
    # Six unread messages of bob's; the first and the last mention her, beyond the
    # limit too. Two of hers are never counted.
    _say(bob, "@ann first", room="general")
    for n in range(4):
        _say(bob, f"middle {n}", room="general")
    _say(ann, "mine", room="general")
    _say(bob, "again @ann", room="general")
    _say(ann, "mine too", room="general")
    # A direct conversation under the limit keeps its exact count.
    _say(bob, "hi", to="ann")
    _say(bob, "@ann there", to="ann")

    entries = _by_conversation(greeting(user_id=ann.pk).unread)
    assert entries["general"] == Unread("general", None, 0, 8, 3, 2, None)
    assert entries["@bob"] == Unread(None, "bob", 0, 2, 2, 1, 0)


# The sync pages read the same rule in SQL (`reads.visible_sql`): page by page, each
# must be what the ORM's `messages_visible_to` gives, in order and field by field.


def _orm_page(user, *, cursor: str, after: int, limit: int) -> tuple[list, bool]:
    rows = stored_messages(
        messages_visible_to(user_id=user.pk)
        .filter(**{f"{cursor}__gt": after})
        .order_by(cursor)[: limit + 1]
    )
    return rows[:limit], len(rows) > limit


@pytest.mark.parametrize(
    ("cursor", "read_page"),
    [("id", message_sync_page), ("rev", message_changes_page)],
    ids=["after id", "since rev"],
)
def test_sync_pages_match_the_orm_rules_on_a_rich_world(world, cursor, read_page):
    ann = world["ann"]
    carol = Message.objects.get(pk=world["newest_seen"]).sender
    message_react(user_id=carol.pk, message_id=world["newest_seen"], emoji="👍", on=True)
    message_react(user_id=ann.pk, message_id=world["newest_seen"], emoji="🎉", on=True)
    after, pages, seen = 0, 0, []
    while True:
        kwargs = {"after": after} if cursor == "id" else {"since": after}
        page, more = read_page(user_id=ann.pk, limit=4, **kwargs)
        assert (page, more) == _orm_page(ann, cursor=cursor, after=after, limit=4)
        seen += page
        pages += 1
        if not more:
            break
        after = getattr(page[-1], cursor)
    assert pages > 3
    assert {m.id for m in seen} == set(
        messages_visible_to(user_id=ann.pk).values_list("id", flat=True)
    )
    reacted = next(m for m in seen if m.id == world["newest_seen"])
    assert reacted.reactions and reacted.mentions and reacted.sent_at.tzinfo is not None
    assert any(m.deleted for m in seen) and any(m.edited_at for m in seen)


def _newest(conversation) -> tuple[int, int]:
    messages = Message.objects.filter(
        Q(room=conversation) if isinstance(conversation, Room) else Q(direct=conversation)
    )
    newest = messages.aggregate(last_id=Max("id"), last_rev=Max("rev"))
    return newest["last_id"] or 0, newest["last_rev"] or 0


def test_each_conversation_keeps_the_id_and_rev_of_its_newest_message_and_change(make_user):
    bob, carol = make_user("bob"), make_user("carol")
    first = _say(bob, "one", room="general")
    _say(carol, "two", room="general")
    dm = _say(bob, "hello", to="carol")
    _say(carol, "hi", to="bob")
    # A change gives an older message the newest revision of its conversation.
    message_edit(user_id=bob.pk, message_id=first, body="one, edited")
    message_react(user_id=carol.pk, message_id=dm, emoji="👍", on=True)
    general = Room.objects.get(name="general")
    direct = DirectConversation.objects.get()

    for conversation in (general, direct):
        conversation.refresh_from_db()
        assert (conversation.last_id, conversation.last_rev) == _newest(conversation)
    assert general.last_rev == Message.objects.get(pk=first).rev
    assert direct.last_rev == Message.objects.get(pk=dm).rev

    # Rows written by other means are caught up with in one call (the benchmark's seed).
    Room.objects.update(last_id=0, last_rev=0)
    DirectConversation.objects.update(last_id=0, last_rev=0)
    newest_refresh()
    for conversation in (general, direct):
        conversation.refresh_from_db()
        assert (conversation.last_id, conversation.last_rev) == _newest(conversation)


def _message_scans(sql: str) -> list[dict]:
    """The nodes of PostgreSQL's executed plan for `sql` that read the message table
    (by itself or through one of its indexes), with how often each ran."""
    table = Message._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        (plan,) = cursor.fetchone()[0]
    found, nodes = [], [plan["Plan"]]
    while nodes:
        node = nodes.pop()
        nodes += node.get("Plans", [])
        if node.get("Relation Name") == table:
            found.append(node)
    return found


def test_a_greeting_reads_no_message_rows_however_many_others_wrote(make_user):
    """The newest id and rev come from the conversations' rows: one statement, which
    reads no message row when nothing is unread."""
    ann, bob, carol = make_user("ann"), make_user("bob"), make_user("carol")
    _private("hidden", bob, carol)
    mine = _say(ann, "mine", room="general")
    for n in range(30):  # newer than hers, none of them hers to see
        _say(bob, f"dm {n}", to="carol")
        _say(carol, f"secret {n}", room="hidden")
    read_mark(user=ann, room="general", with_=None, seq=1)

    with CaptureQueriesContext(connection) as queries:
        actual = greeting(user_id=ann.pk)

    assert actual.last_id == mine
    assert actual.rev == Message.objects.get(pk=mine).rev
    assert len(queries) == 1
    _assert_same(actual, _oracle(ann))
    if connection.vendor == "postgresql":
        scans = _message_scans(queries[0]["sql"])
        assert scans, "the unread counts name the message table"
        assert [node["Actual Loops"] for node in scans] == [0] * len(scans)


def test_a_greeting_with_something_unread_is_still_one_statement(make_user):
    """Unread counts and mentions come on the conversations' rows, read only in the
    conversations with something unread."""
    ann, bob = make_user("ann"), make_user("bob")
    _say(bob, "before", room="general")
    read_mark(user=ann, room="general", with_=None, seq=1)
    _say(bob, "hello @ann", room="general")
    _say(bob, "a word", to="ann")
    _say(ann, "mine", room="general")
    _private("quiet", ann, bob)  # nothing in it: nothing to count

    with CaptureQueriesContext(connection) as queries:
        actual = greeting(user_id=ann.pk)

    assert len(queries) == 1
    counts = {(u.room, u.with_): (u.unread, u.mentions) for u in actual.unread}
    assert counts[("general", None)] == (1, 1)
    assert counts[(None, "bob")] == (1, 0)
    assert counts[("quiet", None)] == (0, 0)
    _assert_same(actual, _oracle(ann))
    if connection.vendor == "postgresql":
        # Two counts (unread, mentions) in each of the two conversations behind.
        ran = [node for node in _message_scans(queries[0]["sql"]) if node["Actual Loops"]]
        assert len(ran) == 4


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plan cache")
def test_postgresql_keeps_one_plan_of_the_greeting_for_everyone(make_user):
    """Prepared, the greeting is planned once for all users: a plan for each user
    (a custom plan) cost PostgreSQL more than the statement's own work, and it
    chooses one whenever the user's own figures make the generic plan look dearer."""
    ann, bob = make_user("ann"), make_user("bob")
    for n in range(40):
        _say(bob, f"hello {n}", room="general")
    for n in range(60):
        _say(bob, "hi", to=make_user(f"friend{n}").username)
    _say(ann, "mine", room="general")
    with connection.cursor() as cursor:
        # Statistics on who sent what and who talks with whom: the figures a custom
        # plan is made from (ann has no direct conversation, bob has sixty).
        cursor.execute("ANALYZE")
    # psycopg prepares a statement on its fifth use, and PostgreSQL makes five custom
    # plans before it weighs a generic one. A user with less than the average (ann)
    # is the one whose own plan looks cheaper than the generic one.
    for _ in range(16):
        greeting(user_id=ann.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            ["%g.last_rev, g.unread%"],
        )
        ((generic, custom),) = cursor.fetchall()
    assert generic > 0, (generic, custom)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans")
def test_unread_is_counted_along_the_conversations_index_behind_other_rooms(make_user):
    """Behind thousands of other rooms' messages, the unread count walks the room's
    (room, seq) index and stops at the limit. Without an order, plans made for a room
    of average size read the message table from its start, or every entry of the
    room's index before the limit could stop them."""
    from bench.seed import search_history  # the benchmark's bulk writer

    ann, bob, carol = make_user("ann"), make_user("bob"), make_user("carol")
    # Rooms and direct conversations of others, their messages interleaved, all of
    # them read by ann (the benchmark's search seed: carol is its searcher).
    search_history(100_000, carol.username)
    for n in range(30):
        _say(bob, f"hello {n}", room="general")
    with connection.cursor() as cursor:
        # As autovacuum would by now: the plans are made from these figures.
        cursor.execute(f"ANALYZE {Message._meta.db_table}")

    with CaptureQueriesContext(connection) as queries:
        actual = greeting(user_id=ann.pk)

    counts = {u.room: u.unread for u in actual.unread if u.unread}
    assert counts == {"general": 30}
    ran = [node for node in _message_scans(queries[0]["sql"]) if node["Actual Loops"]]
    assert ran and {node["Node Type"] for node in ran} <= {"Index Scan", "Index Only Scan"}, [
        (node["Node Type"], node.get("Index Name")) for node in ran
    ]
