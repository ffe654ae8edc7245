"""Searching messages through the socket, and jumping to a message with `history` `around`.

Search sees what the user may see and nothing else: rooms and their own direct
messages, never another pair's; deleted text is gone from the index; edited text
is found by its new words only.
"""

import itertools

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from chat.messaging import search
from chat.messaging.changes import message_delete, message_edit
from chat.messaging.store import message_store
from chat.protocol import Send

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

_client_ids = (f"k{number}" for number in itertools.count())


@pytest.fixture
async def people(make_user):
    """Three users: alice, bob and carol."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]


@sync_to_async
def _post(sender, *bodies: str, room: str | None = None, to: str | None = None) -> list[int]:
    """Stores messages from `sender` through the storing service; returns their ids."""
    ids = []
    for body in bodies:
        send = Send(body=body, client_id=next(_client_ids), room=room, to=to)
        ids.append(message_store(sender=sender, send=send).message.id)
    return ids


@sync_to_async
def _edit(user, message_id: int, body: str) -> None:
    message_edit(user_id=user.pk, message_id=message_id, body=body)


@sync_to_async
def _delete(user, message_id: int) -> None:
    message_delete(user_id=user.pk, message_id=message_id)


async def _search(socket, q: str, **fields) -> dict:
    return await socket.ask({"type": "search", "q": q, **fields})


def _bodies(frame: dict) -> list[str]:
    return [message["body"] for message in frame["messages"]]


async def _refusal(socket, frame: dict) -> dict:
    return await socket.ask(frame, "error")


# --- Matching -------------------------------------------------------------------


async def test_search_finds_messages_holding_every_word_newest_first(people, connect):
    alice, bob, _ = people
    await _post(alice, "Deploy on Friday", "deploy today", "friday lunch", room="general")
    await _post(bob, "the FRIDAY deploy went fine", room="general")
    socket = await connect(alice)
    answer = await _search(socket, "deploy friday")
    assert answer["type"] == "search" and answer["q"] == "deploy friday"
    assert _bodies(answer) == ["the FRIDAY deploy went fine", "Deploy on Friday"]
    assert answer["has_more"] is False
    ids = [message["id"] for message in answer["messages"]]
    assert ids == sorted(ids, reverse=True)
    # Each message is shaped like a live `message` frame.
    assert answer["messages"][0]["from"] == "bob" and answer["messages"][0]["room"] == "general"
    assert {"seq", "rev", "sent_at", "edited_at", "deleted", "reactions"} <= set(
        answer["messages"][0]
    )


async def test_the_last_word_may_be_a_prefix_and_the_others_must_be_whole(people, connect):
    alice = people[0]
    await _post(alice, "deployment tomorrow", "deploy now", room="general")
    socket = await connect(alice)
    assert _bodies(await _search(socket, "depl")) == ["deploy now", "deployment tomorrow"]
    assert _bodies(await _search(socket, "deploy")) == ["deploy now", "deployment tomorrow"]
    assert _bodies(await _search(socket, "depl now")) == []
    assert _bodies(await _search(socket, "deploy no")) == ["deploy now"]
    assert _bodies(await _search(socket, "xyz")) == []


async def test_cyrillic_is_found_in_any_case_and_by_its_start(people, connect):
    alice = people[0]
    await _post(alice, "Привет, мир!", "ПРИВЕТСТВУЮ всех", "пока", room="general")
    socket = await connect(alice)
    assert _bodies(await _search(socket, "привет")) == ["ПРИВЕТСТВУЮ всех", "Привет, мир!"]
    assert _bodies(await _search(socket, "прив")) == ["ПРИВЕТСТВУЮ всех", "Привет, мир!"]
    assert _bodies(await _search(socket, "МИР привет")) == ["Привет, мир!"]
    assert _bodies(await _search(socket, "Мир")) == ["Привет, мир!"]


async def test_punctuation_in_the_search_only_separates_words(people, connect):
    alice = people[0]
    await _post(alice, "deploy friday", room="general")
    socket = await connect(alice)
    assert _bodies(await _search(socket, "'deploy' & !friday:*")) == ["deploy friday"]
    assert _bodies(await _search(socket, '"deploy" OR fri*')) == []


# --- Who sees what --------------------------------------------------------------


async def test_another_pairs_direct_messages_never_match_for_a_third_user(people, connect):
    alice, bob, carol = people
    await _post(alice, "secret plan for bob", to="bob")
    await _post(bob, "secret plan reply", to="alice")
    await _post(carol, "secret plan public", room="general")
    await _post(carol, "secret plan to myself", to="carol")
    third = await connect(carol)
    answer = await _search(third, "secret plan")
    assert _bodies(answer) == ["secret plan to myself", "secret plan public"]
    assert _bodies(await _search(third, "secret", **{"with": "alice"})) == []
    for user in (alice, bob):
        socket = await connect(user)
        assert _bodies(await _search(socket, "secret plan")) == [
            "secret plan public",
            "secret plan reply",
            "secret plan for bob",
        ]


async def test_search_within_one_room_or_one_direct_conversation(people, connect, make_user):
    alice = people[0]
    await sync_to_async(_make_room)("random")
    await _post(alice, "lunch in general", room="general")
    await _post(alice, "lunch in random", room="random")
    await _post(alice, "lunch with bob", to="bob")
    await _post(alice, "lunch with carol", to="carol")
    socket = await connect(alice)
    room = await _search(socket, "lunch", room="random")
    assert room["room"] == "random" and _bodies(room) == ["lunch in random"]
    direct = await _search(socket, "lunch", **{"with": "bob"})
    assert direct["with"] == "bob" and _bodies(direct) == ["lunch with bob"]
    assert len((await _search(socket, "lunch"))["messages"]) == 4
    # Someone alice never wrote to: an empty answer, not an error.
    await sync_to_async(make_user)("dave")
    assert _bodies(await _search(socket, "lunch", **{"with": "dave"})) == []
    assert (await _refusal(socket, {"type": "search", "q": "x", "room": "nope"}))[
        "code"
    ] == "unknown_room"
    assert (await _refusal(socket, {"type": "search", "q": "x", "with": "nobody"}))[
        "code"
    ] == "unknown_user"


def _make_room(name: str) -> None:
    from chat.models import Room

    Room.objects.create(name=name)


# --- Messages that change -------------------------------------------------------


async def test_an_edited_message_matches_its_new_words_and_not_its_old_ones(people, connect):
    alice = people[0]
    (message_id,) = await _post(alice, "meeting on tuesday", room="general")
    await _edit(alice, message_id, "meeting on wednesday")
    socket = await connect(alice)
    assert _bodies(await _search(socket, "tuesday")) == []
    assert _bodies(await _search(socket, "wednesday")) == ["meeting on wednesday"]
    assert _bodies(await _search(socket, "meeting")) == ["meeting on wednesday"]


async def test_a_deleted_message_never_matches_for_anyone(people, connect):
    alice, bob, _ = people
    deleted, edited_then_deleted, _ = await _post(
        alice, "launch codes alpha", "launch codes beta", "launch party", room="general"
    )
    await _delete(alice, deleted)
    await _edit(alice, edited_then_deleted, "launch codes gamma")
    await _delete(alice, edited_then_deleted)
    for user in (alice, bob):
        socket = await connect(user)
        assert _bodies(await _search(socket, "launch")) == ["launch party"]
        for word in ("codes", "alpha", "beta", "gamma"):
            assert _bodies(await _search(socket, word)) == []
    assert await sync_to_async(_indexed)("codes") == 0


def _indexed(word: str) -> int:
    """How many entries of the SQLite index hold `word` (PostgreSQL indexes the body itself)."""
    if connection.vendor != "sqlite":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM chat_message_search WHERE chat_message_search MATCH %s",
            [f'"{word}"'],
        )
        return cursor.fetchone()[0]


async def test_messages_of_a_deleted_user_leave_the_index(people, connect):
    alice, bob, _ = people
    await _post(bob, "farewell message", room="general")
    await sync_to_async(bob.delete)()
    socket = await connect(alice)
    assert _bodies(await _search(socket, "farewell")) == []
    assert await sync_to_async(_indexed)("farewell") == 0


# --- Paging and bounds ----------------------------------------------------------


@pytest.fixture
def small_steps(monkeypatch):
    """Makes the search read the newest messages, and the index, in steps of a few rows.

    So a handful of messages walks every path a million would: past the newest
    window to the index (PostgreSQL), chunk after chunk of matches (SQLite).
    """
    monkeypatch.setattr(search, "PG_RECENT_WINDOW", 4)
    monkeypatch.setattr(search, "FTS_FIRST_CHUNK", 2)
    monkeypatch.setattr(search, "FTS_LARGEST_CHUNK", 4)


async def test_old_matches_behind_many_newer_messages_are_found_in_order(
    people, connect, small_steps
):
    alice, bob, carol = people
    old = await _post(alice, *[f"rare word {n}" for n in range(7)], room="general")
    # Newer matches carol may not see, then many newer messages without the word.
    await _post(alice, *[f"rare secret {n}" for n in range(9)], to="bob")
    await _post(bob, *[f"common chatter {n}" for n in range(12)], room="general")
    socket = await connect(carol)
    seen, before = [], None
    while True:
        frame = {"q": "rare", "limit": 3} | ({"before": before} if before else {})
        page = await _search(socket, **frame)
        seen += [message["id"] for message in page["messages"]]
        if not page["has_more"]:
            break
        before = page["messages"][-1]["id"]
    assert seen == old[::-1]
    # The same search in the room alone, and alice finding her direct messages too.
    assert len((await _search(socket, "rare", room="general", limit=50))["messages"]) == 7
    mine = await connect(alice)
    assert len((await _search(mine, "rare", limit=50))["messages"]) == 16
    assert _bodies(await _search(mine, "rare", **{"with": "bob"}, limit=1)) == ["rare secret 8"]


async def test_before_pages_back_until_has_more_is_false(people, connect):
    alice = people[0]
    ids = await _post(alice, *[f"report number {n}" for n in range(1, 26)], room="general")
    await _post(alice, "unrelated", room="general")
    socket = await connect(alice)
    seen, before = [], None
    while True:
        frame = {"q": "report", "limit": 10} | ({"before": before} if before else {})
        page = await _search(socket, **frame)
        seen += [message["id"] for message in page["messages"]]
        if not page["has_more"]:
            break
        assert len(page["messages"]) == 10
        before = page["messages"][-1]["id"]
    assert seen == ids[::-1]


async def test_limit_defaults_to_20_and_allows_1_to_50(people, connect):
    alice = people[0]
    await _post(alice, *[f"note {n}" for n in range(60)], room="general")
    socket = await connect(alice)
    assert len((await _search(socket, "note"))["messages"]) == 20
    assert len((await _search(socket, "note", limit=50))["messages"]) == 50
    one = await _search(socket, "note", limit=1)
    assert _bodies(one) == ["note 59"] and one["has_more"] is True
    for limit in (0, 51, -1, "5", True):
        refusal = await _refusal(socket, {"type": "search", "q": "note", "limit": limit})
        assert refusal["code"] == "bad_frame" and "limit" in refusal["detail"]


@pytest.mark.parametrize(
    ("q", "detail"),
    [("", "word"), ("   ", "word"), ("?!… —", "word"), ("a" * 201, "200"), (None, "string")],
)
async def test_a_search_without_words_or_too_long_is_a_bad_frame(people, connect, q, detail):
    socket = await connect(people[0])
    refusal = await _refusal(socket, {"type": "search", "q": q})
    assert refusal["code"] == "bad_frame" and detail in refusal["detail"]
    # The socket stays open and answers the next search.
    assert (await _search(socket, "a" * 200))["messages"] == []


async def test_a_search_names_at_most_one_conversation(people, connect):
    socket = await connect(people[0])
    refusal = await _refusal(socket, {"type": "search", "q": "x", "room": "general", "with": "bob"})
    assert refusal["code"] == "bad_frame"


async def test_searches_count_against_the_read_limit(people, connect, settings):
    settings.CHAT_READ_RATE_LIMIT = (2, 60)
    socket = await connect(people[0])
    await _search(socket, "a")
    await socket.ask({"type": "history", "room": "general"})
    refusal = await _refusal(socket, {"type": "search", "q": "a"})
    assert refusal["code"] == "rate_limited" and refusal["retry_after"] > 0


# --- The index of messages stored before it existed -------------------------------


@sync_to_async
def _migrate_with_messages_stored_before_the_index(sender_id: int, bodies: list[str]) -> None:
    """Goes back before the search migration, stores messages there, and migrates forward."""
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate([("chat", "0003_messages_that_change")])
    executor.loader.build_graph()
    apps = executor.loader.project_state([("chat", "0003_messages_that_change")]).apps
    Message = apps.get_model("chat", "Message")
    Room = apps.get_model("chat", "Room")
    room = Room.objects.get(name="general")
    for number, body in enumerate(bodies, start=1):
        Message.objects.create(
            sender_id=sender_id,
            room=room,
            body=body,
            client_id=f"old-{number}",
            seq=room.last_seq + number,
            sent_at="2026-01-01T00:00:00Z",
            rev=10_000 + number,
        )
    Room.objects.filter(pk=room.pk).update(last_seq=room.last_seq + len(bodies))
    executor = MigrationExecutor(connection)
    executor.migrate(leaves)


async def test_messages_stored_before_the_index_existed_are_found(people, connect):
    alice = people[0]
    await _migrate_with_messages_stored_before_the_index(
        alice.pk, ["archived quarterly numbers", "архивные данные"]
    )
    socket = await connect(alice)
    assert _bodies(await _search(socket, "quarterly")) == ["archived quarterly numbers"]
    assert _bodies(await _search(socket, "архив")) == ["архивные данные"]


# --- history around -------------------------------------------------------------


async def _around(socket, around: int, limit: int, **where) -> dict:
    where = where or {"room": "general"}
    return await socket.ask({"type": "history", **where, "around": around, "limit": limit})


def _seqs(frame: dict) -> list[int]:
    return [message["seq"] for message in frame["messages"]]


async def test_history_around_a_seq_gives_about_half_before_and_half_after(people, connect):
    alice = people[0]
    await _post(alice, *[f"m{n}" for n in range(1, 101)], room="general")
    socket = await connect(alice)
    page = await _around(socket, 57, 10)
    assert _seqs(page) == list(range(53, 63))
    assert page["around"] == 57 and page["room"] == "general"
    assert page["has_older"] is True and page["has_newer"] is True and page["has_more"] is True
    # The page holds the message itself, oldest first.
    assert "m57" in _bodies(page)


async def test_history_around_near_the_start_fills_the_page_with_newer_messages(people, connect):
    alice = people[0]
    await _post(alice, *[f"m{n}" for n in range(1, 31)], room="general")
    socket = await connect(alice)
    page = await _around(socket, 2, 10)
    assert _seqs(page) == list(range(1, 11))
    assert page["has_older"] is False and page["has_more"] is False and page["has_newer"] is True
    # Paging on with `after` continues right after the page.
    rest = await socket.ask({"type": "history", "room": "general", "after": 10, "limit": 50})
    assert _seqs(rest) == list(range(11, 31))


async def test_history_around_near_the_end_fills_the_page_with_older_messages(people, connect):
    alice = people[0]
    await _post(alice, *[f"m{n}" for n in range(1, 31)], room="general")
    socket = await connect(alice)
    page = await _around(socket, 29, 10)
    assert _seqs(page) == list(range(21, 31))
    assert page["has_older"] is True and page["has_newer"] is False
    whole = await _around(socket, 15, 30)
    assert _seqs(whole) == list(range(1, 31))
    assert whole["has_older"] is False and whole["has_newer"] is False


async def test_history_around_in_a_direct_conversation(people, connect):
    alice, bob, carol = people
    await _post(alice, *[f"d{n}" for n in range(1, 8)], to="bob")
    socket = await connect(bob)
    page = await _around(socket, 4, 3, **{"with": "alice"})
    assert page["with"] == "alice" and _seqs(page) == [3, 4, 5]
    assert page["has_older"] is True and page["has_newer"] is True
    third = await connect(carol)
    empty = await _around(third, 4, 3, **{"with": "alice"})
    assert empty["messages"] == [] and empty["has_older"] is False and empty["has_newer"] is False


@pytest.mark.parametrize("other", ["before", "after"])
async def test_history_around_excludes_before_and_after(people, connect, other):
    socket = await connect(people[0])
    frame = {"type": "history", "room": "general", "around": 5, other: 3}
    refusal = await _refusal(socket, frame)
    assert refusal["code"] == "bad_frame" and "around" in refusal["detail"]
