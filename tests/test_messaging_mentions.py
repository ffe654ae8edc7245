"""Mentions: `@name`s of existing users, outside code and e-mail addresses, in the
`mentions` of message frames and as rows that count a user's unread mentions.
"""

import pytest
from asgiref.sync import sync_to_async

from chat.messaging.mentions import mention_candidates, mentioned_users
from chat.models import Message
from tests.conversation import change, post


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("hi @bob", ["bob"]),
        ("@bob and @carol, then @bob again", ["bob", "carol"]),
        ("thanks @bob.", ["bob"]),
        ("(@bob) @carol! @dave?", ["bob", "carol", "dave"]),
        ("@first.last and @with_underscore-dash+plus", ["first.last", "with_underscore-dash+plus"]),
        ("@Élodie et @Дмитрий", ["Élodie", "Дмитрий"]),
        ("mail bob@example.com or bob.smith@example.com", []),
        ("inline `@bob` code", []),
        ("```\nfenced @bob\nblock @carol\n```\nbut @dave", ["dave"]),
        ("`@bob` and @carol", ["carol"]),
        ("an @ alone, and @", []),
        # A name may end a sentence or a clause: the punctuation is not part of it.
        (
            "@bob. @carol, @dave! @erin? @frank: @gina;",
            ["bob", "carol", "dave", "erin", "frank", "gina"],
        ),
        ("ask @bob...", ["bob"]),
        # The same person twice is one mention.
        ("@bob @bob, @bob.", ["bob"]),
        # A possessive names the person, with either apostrophe: `@bob's` mentions bob.
        ("@bob's idea and @carol\u2019s", ["bob", "carol"]),
        # Addresses mention nobody, also next to real mentions.
        ("write to bob@example.com, @carol", ["carol"]),
        # Code spans of any backtick run, and a fence left open runs to the end.
        ("``@bob`` and ``a ` @carol`` but @dave", ["dave"]),
        ("@dave first\n```\n@bob never closed\n@carol", ["dave"]),
        ("a run of ``` mid-line is no fence: @bob", ["bob"]),
        ("`a\n@bob` spans lines, `@carol\n\n", ["carol"]),
    ],
)
def test_mention_candidates_are_the_names_after_at_outside_code_and_addresses(body, names):
    assert mention_candidates(body) == names


@pytest.mark.django_db
def test_mentioned_users_keeps_existing_users_only_in_order_of_mention(make_user):
    bob, carol = make_user("bob"), make_user("carol")
    assert mentioned_users(["@nobody @carol @bob", "no one", "`@bob` @ghost", "@Bob @BOB"]) == [
        {"carol": carol.pk, "bob": bob.pk},
        {},
        {},
        # Usernames are exact: `@Bob` is not bob (sign-up refuses lookalike names).
        {},
    ]
    assert list(mentioned_users(["@carol @bob"])[0]) == ["carol", "bob"]


@sync_to_async
def _mention_rows(message_id: int) -> set[str]:
    return set(Message.objects.get(pk=message_id).mentions.values_list("username", flat=True))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_message_frames_carry_mentions_of_existing_users_and_edits_renew_them(
    make_user, connect
):
    alice, _, _ = [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]
    socket = await connect(alice)
    body = "@bob look, `@carol` is code, ask carol@example.com or @nobody, and @carol"
    message = await post(socket, body, "m1", room="general")
    assert message["mentions"] == ["bob", "carol"]
    assert await _mention_rows(message["id"]) == {"bob", "carol"}

    history = await socket.ask({"type": "history", "room": "general"})
    assert history["messages"][0]["mentions"] == ["bob", "carol"]

    edited = await change(
        socket, {"type": "edit", "id": message["id"], "body": "@alice only"}, message
    )
    assert edited["mentions"] == ["alice"]
    assert await _mention_rows(message["id"]) == {"alice"}

    direct = await post(socket, "@bob, psst", "d1", to="bob")
    assert direct["mentions"] == ["bob"]


def _mention_counts(hello: dict) -> dict:
    """`hello.unread` as {room or user: (unread, mentions)}."""
    return {
        entry.get("room", entry.get("with")): (entry["unread"], entry["mentions"])
        for entry in hello["unread"]
    }


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
async def test_an_edit_that_drops_a_mention_drops_it_from_the_unread_mention_count(
    make_user, connect
):
    alice, bob = [await sync_to_async(make_user)(name) for name in ("alice", "bob")]
    sender = await connect(alice)
    first = await post(sender, "@bob, look", "m1", room="general")
    second = await post(sender, "and @bob again", "m2", room="general")
    assert _mention_counts((await connect(bob)).hello)["general"] == (2, 2)

    edited = await change(sender, {"type": "edit", "id": first["id"], "body": "look"}, first)
    assert edited["mentions"] == []
    assert await _mention_rows(first["id"]) == set()
    assert _mention_counts((await connect(bob)).hello)["general"] == (2, 1)

    # A deleted message mentions nobody and is not unread either.
    await change(sender, {"type": "delete", "id": second["id"]}, second)
    assert await _mention_rows(second["id"]) == set()
    assert _mention_counts((await connect(bob)).hello)["general"] == (1, 0)
