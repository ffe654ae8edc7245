"""Messages that change, through the socket: edits, deletions (tombstones), reactions,
who may change what, and `sync since` bringing every change made while away.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chat.messaging.store import message_store_many
from chat.models import Message
from chat.protocol import Send
from tests.conversation import change, not_presence, post, react, revision, sync_since

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
async def people(make_user):
    """Three users: alice, bob and carol."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]


@sync_to_async
def _row(message_id: int) -> dict:
    """The stored state of a message, its mention rows included."""
    message = Message.objects.get(pk=message_id)
    return {
        "seq": message.seq,
        "body": message.body,
        "rev": message.rev,
        "deleted": message.deleted,
        "reactions": message.reactions,
        "mentioned": message.mentioned,
        "mention_rows": message.mentions.count(),
    }


def _edit(message: dict, body: str) -> dict:
    return {"type": "edit", "id": message["id"], "body": body}


def _delete(message: dict) -> dict:
    return {"type": "delete", "id": message["id"]}


# --- Edits ------------------------------------------------------------------------


async def test_edit_by_the_author_reaches_every_tab_of_everyone(people, connect):
    alice, alice_tab2 = await connect(people[0]), await connect(people[0])
    bob, carol = await connect(people[1]), await connect(people[2])
    original = await post(alice, "helo all", "e1", room="general")
    for socket in (alice_tab2, bob, carol):
        await revision(socket, original["id"])

    await alice.send(_edit(original, "  hello all \n"))
    revs = set()
    for socket in (alice, alice_tab2, bob, carol):
        edited = await revision(socket, original["id"], above=original["rev"])
        revs.add(edited["rev"])
        # The same message (id, seq, sender, client_id...) with a new body and revision.
        assert edited == {
            **original,
            "body": "hello all",
            "rev": edited["rev"],
            "edited_at": edited["edited_at"],
        }
        assert edited["rev"] > original["rev"]
        assert edited["edited_at"].endswith("Z") and edited["edited_at"] >= original["sent_at"]
    assert revs == {edited["rev"]}  # one change, one revision, the same in every tab
    row = await _row(original["id"])
    assert (row["body"], row["rev"]) == ("hello all", edited["rev"])


async def test_edit_of_a_direct_message_reaches_both_parties_and_no_third_user(people, connect):
    alice, bob, carol = [await connect(user) for user in people]
    original = await post(alice, "psst", "d1", to="bob")
    await revision(bob, original["id"])
    await alice.send(_edit(original, "psst, lunch?"))
    for socket in (alice, bob):
        edited = await revision(socket, original["id"], above=original["rev"])
        assert (edited["body"], edited["to"], edited["from"]) == ("psst, lunch?", "bob", "alice")
    # A later room message reaches carol after the edit would have.
    later = await post(bob, "later", "r1", room="general")
    earlier = await carol.receive_until("message", lambda m: m["id"] == later["id"])
    assert not_presence(earlier[0]) == []


@pytest.mark.parametrize("kind", ["edit", "delete"])
async def test_edit_or_delete_of_someone_elses_message_is_forbidden(people, connect, kind):
    alice, bob = await connect(people[0]), await connect(people[1])
    original = await post(alice, "mine", "m1", room="general")
    await revision(bob, original["id"])
    before = await _row(original["id"])
    frame = _edit(original, "yours now") if kind == "edit" else _delete(original)
    error = await bob.ask(frame, "error")
    assert error["code"] == "forbidden" and error["id"] == original["id"] and error["detail"]
    assert await _row(original["id"]) == before
    # Nothing was published: alice's next frame for it is her own later edit.
    edited = await change(alice, _edit(original, "still mine"), original)
    assert edited["body"] == "still mine"


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "edit", "body": "found you"},
        {"type": "delete"},
        {"type": "react", "emoji": "👀", "on": True},
    ],
    ids=["edit", "delete", "react"],
)
async def test_change_of_another_pairs_direct_message_is_not_found_like_no_message(
    people, connect, frame
):
    alice, bob, carol = [await connect(user) for user in people]
    secret = await post(alice, "between us", "s1", to="bob")
    await revision(bob, secret["id"])
    before = await _row(secret["id"])
    hidden = await carol.ask({**frame, "id": secret["id"]}, "error")
    missing_id = secret["id"] + 1000
    missing = await carol.ask({**frame, "id": missing_id}, "error")
    assert hidden["code"] == missing["code"] == "not_found"
    assert hidden["id"] == secret["id"]
    # Word for word the answer about a message that does not exist: nothing revealed.
    assert hidden["detail"].replace(str(secret["id"]), "#") == missing["detail"].replace(
        str(missing_id), "#"
    )
    assert "between us" not in hidden["detail"]
    assert await _row(secret["id"]) == before


async def test_edit_follows_the_rules_of_send(people, connect):
    alice = await connect(people[0])
    original = await post(alice, "draft", "m1", room="general")
    for body, code in [(" \n\t ", "empty"), ("\u200b\u200e", "empty"), ("x" * 4001, "too_long")]:
        error = await alice.ask(_edit(original, body), "error")
        assert error["code"] == code
    for frame in [
        {"type": "edit", "body": "no id"},
        {"type": "edit", "id": "1", "body": "id as text"},
        {"type": "edit", "id": original["id"]},
        {"type": "delete", "id": True},
    ]:
        assert (await alice.ask(frame, "error"))["code"] == "bad_frame"
    assert (await _row(original["id"]))["body"] == "draft"
    # A body of exactly 4000 characters is fine.
    edited = await change(alice, _edit(original, "y" * 4000), original)
    assert edited["body"] == "y" * 4000


async def test_a_change_that_changes_nothing_is_answered_to_the_asker_only(people, connect):
    alice, alice_tab2 = await connect(people[0]), await connect(people[0])
    original = await post(alice, "same", "m1", room="general")
    await revision(alice_tab2, original["id"])
    reacted = await react(alice, original, "👍")
    await revision(alice_tab2, original["id"], above=original["rev"])

    for frame in [
        _edit(reacted, "  same "),
        {"type": "react", "id": reacted["id"], "emoji": "👍", "on": True},
        {"type": "react", "id": reacted["id"], "emoji": "🎉", "on": False},
    ]:
        await alice.send(frame)
        _, answer = await alice.receive_until("message", lambda m: m["id"] == reacted["id"])
        assert answer == reacted  # as it stands: the same revision
    assert (await _row(reacted["id"]))["rev"] == reacted["rev"]
    # The other tab heard nothing of them: its next frame for the message is a real change.
    changed = await react(alice, reacted, "🎉")
    earlier, frame = await alice_tab2.receive_until("message", lambda m: m["id"] == reacted["id"])
    assert frame == changed
    assert not_presence(earlier) == []


# --- Deletions ----------------------------------------------------------------------


async def test_delete_leaves_a_tombstone_and_removes_the_text_from_the_database(people, connect):
    alice, bob = await connect(people[0]), await connect(people[1])
    first = await post(alice, "one", "m1", room="general")
    doomed = await post(alice, "two, @bob and @carol", "m2", room="general")
    third = await post(alice, "three", "m3", room="general")
    assert doomed["mentions"] == ["bob", "carol"]
    for message in (first, doomed, third):
        await revision(bob, message["id"])
    reacted = await react(bob, doomed, "😮")
    await revision(alice, doomed["id"], above=doomed["rev"])

    await alice.send(_delete(doomed))
    for socket in (alice, bob):
        tombstone = await revision(socket, doomed["id"], above=reacted["rev"])
        assert tombstone == {
            **doomed,
            "rev": tombstone["rev"],
            "body": "",
            "deleted": True,
            "reactions": [],
            "mentions": [],
        }
    assert await _row(doomed["id"]) == {
        "seq": 2,
        "body": "",
        "rev": tombstone["rev"],
        "deleted": True,
        "reactions": [],
        "mentioned": [],
        "mention_rows": 0,
    }
    # The conversation has no hole: history shows the tombstone at its seq, and the
    # next message takes the next seq.
    history = await bob.ask({"type": "history", "room": "general"})
    assert [(m["seq"], m["body"], m["deleted"]) for m in history["messages"]] == [
        (1, "one", False),
        (2, "", True),
        (3, "three", False),
    ]
    assert history["messages"][1] == tombstone
    after = await post(alice, "four", "m4", room="general")
    assert after["seq"] == 4


async def test_a_deleted_message_cannot_be_changed_again(people, connect):
    alice = await connect(people[0])
    original = await post(alice, "gone soon", "m1", room="general")
    tombstone = await change(alice, _delete(original), original)
    for frame in [
        _edit(tombstone, "back"),
        _delete(tombstone),
        {"type": "react", "id": tombstone["id"], "emoji": "👍", "on": True},
    ]:
        error = await alice.ask(frame, "error")
        assert error["code"] == "forbidden" and error["id"] == tombstone["id"]
    assert await _row(tombstone["id"]) == {
        "seq": 1,
        "body": "",
        "rev": tombstone["rev"],
        "deleted": True,
        "reactions": [],
        "mentioned": [],
        "mention_rows": 0,
    }


async def test_staff_may_delete_any_message_through_the_socket(people, connect, make_user):
    root = await sync_to_async(make_user)("root", is_staff=True)
    alice, bob = await connect(people[0]), await connect(people[1])
    moderator = await connect(root)
    assert moderator.hello["staff"] is True and alice.hello["staff"] is False
    original = await post(alice, "spam spam spam", "m1", room="general")
    await revision(bob, original["id"])
    await revision(moderator, original["id"])
    await moderator.send(_delete(original))
    for socket in (moderator, alice, bob):
        tombstone = await revision(socket, original["id"], above=original["rev"])
        assert (tombstone["deleted"], tombstone["body"], tombstone["from"]) == (True, "", "alice")
    assert (await _row(original["id"]))["body"] == ""
    # Staff delete; they do not edit other people's words.
    reply = await post(bob, "hello", "b1", room="general")
    await revision(moderator, reply["id"])
    error = await moderator.ask(_edit(reply, "rewritten"), "error")
    assert error["code"] == "forbidden"


# --- Reactions ----------------------------------------------------------------------


async def test_reactions_keep_each_emojis_first_use_and_users_in_order_of_reacting(people, connect):
    alice, bob, carol = [await connect(user) for user in people]
    message = await post(alice, "lunch?", "m1", room="general")
    steps = [
        (alice, "👍", True, [("👍", ["alice"])]),
        (bob, "🎉", True, [("👍", ["alice"]), ("🎉", ["bob"])]),
        (bob, "👍", True, [("👍", ["alice", "bob"]), ("🎉", ["bob"])]),
        (carol, "👍", True, [("👍", ["alice", "bob", "carol"]), ("🎉", ["bob"])]),
        # Taking a reaction back and giving it again puts the user last.
        (alice, "👍", False, [("👍", ["bob", "carol"]), ("🎉", ["bob"])]),
        (alice, "👍", True, [("👍", ["bob", "carol", "alice"]), ("🎉", ["bob"])]),
        # An emoji nobody uses any more is gone; used again, it comes last.
        (bob, "🎉", False, [("👍", ["bob", "carol", "alice"])]),
        (carol, "🎉", True, [("👍", ["bob", "carol", "alice"]), ("🎉", ["carol"])]),
    ]
    for socket, emoji, on, expected in steps:
        message = await react(socket, message, emoji, on)
        assert message["reactions"] == [{"emoji": e, "users": users} for e, users in expected]
    assert (await _row(message["id"]))["reactions"] == message["reactions"]


async def test_concurrent_reactions_converge_to_the_same_list_in_every_tab(people, connect):
    sockets = {
        "alice": [await connect(people[0]), await connect(people[0])],
        "bob": [await connect(people[1]), await connect(people[1])],
        "carol": [await connect(people[2])],
    }
    everyone = [socket for tabs in sockets.values() for socket in tabs]
    message = await post(sockets["alice"][0], "vote!", "m1", room="general")
    for socket in everyone[1:]:
        await revision(socket, message["id"])
    # Each user's reactions are theirs alone to change, so every one of these frames is
    # a real change (one revision each) whatever order the users' frames meet in.
    plans = {
        "alice": [("👍", True), ("🎉", True), ("👍", False), ("👀", True), ("👍", True)],
        "bob": [("🎉", True), ("👍", True), ("🚀", True), ("🎉", False)],
        "carol": [("👍", True), ("👍", False), ("👍", True), ("🎉", True)],
    }

    async def play(name: str) -> None:
        for emoji, on in plans[name]:
            frame = {"type": "react", "id": message["id"], "emoji": emoji, "on": on}
            await sockets[name][0].send(frame)

    await asyncio.gather(*(play(name) for name in plans))
    changes = sum(len(plan) for plan in plans.values())
    finals = []
    for socket in everyone:
        revs, frame = [], message
        for _ in range(changes):
            frame = await revision(socket, message["id"], above=message["rev"])
            revs.append(frame["rev"])
        # Every tab hears every change once, in revision order.
        assert revs == sorted(set(revs)), revs
        finals.append(frame)
    assert all(final == finals[0] for final in finals)
    final = finals[0]
    assert {entry["emoji"]: set(entry["users"]) for entry in final["reactions"]} == {
        "👍": {"alice", "bob", "carol"},
        "🎉": {"alice", "carol"},
        "👀": {"alice"},
        "🚀": {"bob"},
    }
    assert (await _row(message["id"]))["reactions"] == final["reactions"]
    synced, _ = await sync_since(sockets["carol"][0], message["rev"])
    assert synced == [final]


async def test_a_message_takes_at_most_twenty_different_reactions(people, connect, settings):
    settings.CHAT_RATE_LIMIT = None
    alice, bob = await connect(people[0]), await connect(people[1])
    message = await post(alice, "react away", "m1", room="general")
    emoji = [chr(0x1F600 + n) for n in range(21)]
    for symbol in emoji[:20]:
        message = await react(alice, message, symbol)
    assert len(message["reactions"]) == 20
    await bob.send({"type": "react", "id": message["id"], "emoji": emoji[20], "on": True})
    _, error = await bob.receive_until("error")
    assert error["code"] == "forbidden" and error["id"] == message["id"]
    # One more user on an emoji already there is no new reaction.
    message = await react(bob, message, emoji[0])
    assert message["reactions"][0] == {"emoji": emoji[0], "users": ["alice", "bob"]}
    assert [entry["emoji"] for entry in (await _row(message["id"]))["reactions"]] == emoji[:20]


@pytest.mark.parametrize(
    "emoji",
    ["", " ", "👍 ", "a b", "\t", "\u3000", "\u200b", "x" * 17, 7, None],
    ids=[
        "empty",
        "space",
        "trailing-space",
        "inner-space",
        "tab",
        "ideographic-space",
        "zero-width",
        "seventeen",
        "number",
        "missing",
    ],
)
async def test_emoji_must_be_1_to_16_characters_without_white_space(people, connect, emoji):
    alice = await connect(people[0])
    message = await post(alice, "react", "m1", room="general")
    frame = {"type": "react", "id": message["id"], "on": True}
    if emoji is not None:
        frame["emoji"] = emoji
    assert (await alice.ask(frame, "error"))["code"] == "bad_frame"
    assert (await _row(message["id"]))["reactions"] == []


async def test_emoji_of_16_characters_and_on_as_a_boolean_are_accepted(people, connect):
    alice = await connect(people[0])
    message = await post(alice, "react", "m1", room="general")
    family = "👨\u200d👩\u200d👧\u200d👦"  # one emoji of seven characters
    message = await react(alice, message, family)
    message = await react(alice, message, "z" * 16)
    assert [entry["emoji"] for entry in message["reactions"]] == [family, "z" * 16]
    error = await alice.ask(
        {"type": "react", "id": message["id"], "emoji": "👍", "on": "yes"}, "error"
    )
    assert error["code"] == "bad_frame"


async def test_reactions_on_a_direct_message_never_reach_a_third_user(people, connect):
    alice, bob, carol = [await connect(user) for user in people]
    dm = await post(alice, "coffee?", "d1", to="bob")
    await revision(bob, dm["id"])
    reacted = await react(bob, dm, "☕")
    assert (await revision(alice, dm["id"], above=dm["rev"]))["reactions"] == [
        {"emoji": "☕", "users": ["bob"]}
    ]
    tombstone = await change(alice, _delete(reacted), reacted)
    assert (await revision(bob, dm["id"], above=reacted["rev"])) == tombstone
    later = await post(bob, "later", "r1", room="general")
    earlier, _ = await carol.receive_until("message", lambda m: m["id"] == later["id"])
    assert not_presence(earlier) == []


async def test_edits_and_reactions_count_against_the_send_rate_limit(people, connect, settings):
    settings.CHAT_RATE_LIMIT = (3, 60)
    alice = await connect(people[0])
    message = await post(alice, "one", "m1", room="general")
    message = await change(alice, _edit(message, "two"), message)
    message = await react(alice, message, "👍")
    for frame in [
        _edit(message, "four"),
        {"type": "react", "id": message["id"], "emoji": "🎉", "on": True},
    ]:
        error = await alice.ask(frame, "error")
        assert error["code"] == "rate_limited" and 0 < error["retry_after"] <= 60
        assert error["id"] == message["id"]
    row = await _row(message["id"])
    assert (row["body"], row["rev"]) == ("two", message["rev"])


# --- sync since ---------------------------------------------------------------------


async def test_sync_since_brings_each_change_made_while_away_once_in_its_final_state(
    people, connect
):
    alice, bob = await connect(people[0]), await connect(people[1])
    seen = await post(alice, "seen before leaving", "m0", room="general")
    await revision(bob, seen["id"])
    since = seen["rev"]
    await bob.close()

    m1 = await post(alice, "first", "m1", room="general")
    m2 = await post(alice, "second", "m2", room="general")
    m3 = await post(alice, "third", "m3", room="general")
    other_pair = await post(alice, "for carol only", "d1", to="carol")
    m2 = await react(alice, m2, "👍")
    m3 = await change(alice, _delete(m3), m3)
    seen = await change(alice, _edit(seen, "seen, then edited"), seen)
    m1 = await change(alice, _edit(m1, "first, edited"), m1)
    m1 = await change(alice, _edit(m1, "first, edited twice"), m1)
    other_pair = await change(alice, _edit(other_pair, "still for carol only"), other_pair)

    bob = await connect(people[1])
    # The newest revision bob may see, not that of carol's direct message.
    assert bob.hello["rev"] == m1["rev"] < other_pair["rev"]
    messages, answers = await sync_since(bob, since)
    assert len(answers) == 1 and answers[0]["has_more"] is False
    # Each once, in its current state, oldest revision first; never another pair's.
    assert messages == [m2, m3, seen, m1]
    assert answers[0]["last_rev"] == m1["rev"]
    empty = await bob.ask({"type": "sync", "since": answers[0]["last_rev"]})
    assert (empty["messages"], empty["has_more"], empty["last_rev"]) == ([], False, m1["rev"])


async def test_sync_since_pages_with_last_rev_and_has_more(people, connect):
    alice, carol = people[0], people[2]
    sends = [(alice, Send(body=f"n{n}", client_id=f"n{n}", room="general")) for n in range(130)]
    sends.insert(60, (carol, Send(body="not for bob", client_id="c1", to="alice")))
    stored = [posted.message for posted in await sync_to_async(message_store_many)(sends=sends)]
    # An early message edited now comes last, in its new state.
    alice_socket = await connect(alice)
    early = {"type": "message", "id": stored[3].id, "rev": stored[3].rev}
    edited = await change(alice_socket, _edit(early, "n3, edited"), early)
    bob = await connect(people[1])

    messages, answers = await sync_since(bob, 0)
    assert [len(a["messages"]) for a in answers] == [100, 30]
    assert [a["has_more"] for a in answers] == [True, False]
    for answer in answers:
        assert answer["last_rev"] == answer["messages"][-1]["rev"]
    revs = [m["rev"] for m in messages]
    assert revs == sorted(revs)
    expected = [m.id for m in stored if m.to is None and m.id != edited["id"]] + [edited["id"]]
    assert [m["id"] for m in messages] == expected
    assert messages[-1] == edited
    assert answers[-1]["last_rev"] == bob.hello["rev"] == edited["rev"]
