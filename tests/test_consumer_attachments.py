"""Files in messages, through the socket: sending uploads with a message, who receives
them, what is refused, reading them back, and deleting them with their message.
"""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage

from chat.models import Message, Upload
from tests.conversation import change, not_presence, post, revision
from tests.test_messaging_attachments import make_upload

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
async def people(make_user):
    """Three users: alice, bob and carol."""
    return [await sync_to_async(make_user)(name) for name in ("alice", "bob", "carol")]


upload_for = sync_to_async(make_upload)


@sync_to_async
def attached_to(upload: Upload) -> int | None:
    """The message an upload is attached to now, None while it is not."""
    return Upload.objects.values_list("message_id", flat=True).get(pk=upload.pk)


@sync_to_async
def message_count() -> int:
    return Message.objects.count()


def send_files(client_id: str, uploads, body: str = "", **target) -> dict:
    """A `send` frame (to general unless `to=` says otherwise) attaching `uploads`."""
    return {
        "type": "send",
        **(target or {"room": "general"}),
        "body": body,
        "client_id": client_id,
        "attachments": [u.key if isinstance(u, Upload) else u for u in uploads],
    }


async def refused(socket, frame: dict) -> dict:
    """Sends a frame that must be refused; returns its `error` (no ack may come first)."""
    await socket.send(frame)
    earlier, error = await socket.receive_until("error")
    assert [f["type"] for f in not_presence(earlier)] == []
    return error


async def answer_to(socket, client_id: str) -> dict:
    """Receives frames until the `ack` or `error` answering the send `client_id`."""
    while True:
        frame = await socket.receive()
        if frame["type"] in ("ack", "error") and frame.get("client_id") == client_id:
            return frame


# --- Sending files ------------------------------------------------------------------


async def test_files_in_a_direct_message_reach_both_parties_and_no_third_user(people, connect):
    alice, bob, carol = [await connect(user) for user in people]
    photo = await upload_for(people[0], name="beach.png", image=True)
    report = await upload_for(people[0], name="report.pdf")

    await alice.send(send_files("d1", [photo, report], body="from the trip", to="bob"))
    ack = await alice.receive_type("ack")
    frames = [await revision(socket, ack["id"]) for socket in (alice, bob)]
    assert frames[0] == frames[1]
    assert (frames[1]["from"], frames[1]["to"], frames[1]["body"]) == (
        "alice",
        "bob",
        "from the trip",
    )
    assert frames[1]["attachments"] == [
        {
            "id": photo.key,
            "name": "beach.png",
            "size": photo.size,
            "type": "image/png",
            "url": f"/uploads/{photo.key}/",
            "thumb_url": f"/uploads/{photo.key}/thumb/",
            "width": 640,
            "height": 480,
        },
        {
            "id": report.key,
            "name": "report.pdf",
            "size": report.size,
            "type": "application/pdf",
            "url": f"/uploads/{report.key}/",
        },
    ]
    assert await attached_to(photo) == await attached_to(report) == ack["id"]
    # A later room message reaches carol after the direct one would have.
    later = await post(alice, "later", "r1", room="general")
    earlier, _ = await carol.receive_until("message", lambda m: m["id"] == later["id"])
    assert not_presence(earlier) == []


async def test_a_message_of_files_alone_is_sent_with_an_empty_body(people, connect):
    alice, bob = await connect(people[0]), await connect(people[1])
    upload = await upload_for(people[0])
    await alice.send(send_files("f1", [upload], body="  "))
    ack = await alice.receive_type("ack")
    mine, message = await revision(alice, ack["id"]), await revision(bob, ack["id"])
    assert mine == message
    assert (message["body"], message["mentions"]) == ("", [])
    assert [entry["id"] for entry in message["attachments"]] == [upload.key]
    # A message without files still needs text.
    error = await refused(alice, {"type": "send", "room": "general", "body": "", "client_id": "e1"})
    assert (error["code"], error["client_id"]) == ("empty", "e1")


# --- Refusals ----------------------------------------------------------------------


async def test_someone_elses_upload_is_a_bad_attachment_and_nothing_is_stored(people, connect):
    alice, bob = await connect(people[0]), await connect(people[1])
    mine, bobs = await upload_for(people[0]), await upload_for(people[1])

    error = await refused(alice, send_files("f1", [mine, bobs], body="take this"))
    assert (error["code"], error["client_id"]) == ("bad_attachment", "f1")

    history = await alice.ask({"type": "history", "room": "general"})
    assert history["messages"] == []
    assert await message_count() == 0
    assert (await attached_to(mine), await attached_to(bobs)) == (None, None)
    # Bob never saw it: the next message of general is the first he gets.
    later = await post(alice, "later", "r1", room="general")
    earlier, _ = await bob.receive_until("message", lambda m: m["id"] == later["id"])
    assert not_presence(earlier) == []
    assert later["seq"] == 1


async def test_an_upload_attached_already_or_unknown_is_a_bad_attachment(people, connect):
    alice = await connect(people[0])
    used = await upload_for(people[0])
    await alice.send(send_files("f1", [used], body="first"))
    first = await revision(alice, (await alice.receive_type("ack"))["id"])
    for client_id, ids in [("f2", [used]), ("f3", ["NoSuchUpload"])]:
        error = await refused(alice, send_files(client_id, ids, body="again"))
        assert (error["code"], error["client_id"]) == ("bad_attachment", client_id)
    assert await attached_to(used) == first["id"]
    assert await message_count() == 1


@pytest.mark.parametrize(
    "attachments",
    [[f"id{n}" for n in range(11)], "SAME", [], "abc", ["a/b"]],
    ids=["eleven", "same-id-twice", "empty-list", "not-a-list", "not-an-id"],
)
async def test_malformed_attachments_are_a_bad_frame(people, connect, attachments):
    alice = await connect(people[0])
    upload = await upload_for(people[0])
    if attachments == "SAME":
        # Named twice in one send: the frame is malformed, whoever owns the upload.
        attachments = [upload.key, upload.key]
    frame = {**send_files("f1", [], body="x"), "attachments": attachments}
    error = await refused(alice, frame)
    assert (error["code"], error["client_id"]) == ("bad_frame", "f1")
    assert await attached_to(upload) is None
    assert await message_count() == 0


async def test_a_retry_with_the_same_client_id_is_the_same_message_and_no_error(people, connect):
    alice = await connect(people[0])
    upload = await upload_for(people[0])
    frame = send_files("f1", [upload], body="once")
    await alice.send(frame)
    first = await alice.receive_type("ack")
    await revision(alice, first["id"])

    await alice.send(frame)  # its uploads are now attached: to this very message
    second = await alice.receive_type("ack")
    assert second == first
    # No error and no second message came before the answer to a later ping.
    await alice.send({"type": "ping"})
    earlier, _ = await alice.receive_until("pong")
    assert not_presence(earlier) == []
    assert await message_count() == 1


async def test_two_tabs_sending_one_upload_at_once_attach_it_to_one_message(people, connect):
    tab1, tab2 = await connect(people[0]), await connect(people[0])
    upload = await upload_for(people[0])
    # Sent at once, the two usually share one batch; either way one of them wins.
    await asyncio.gather(
        tab1.send(send_files("t1", [upload], body="one")),
        tab2.send(send_files("t2", [upload], body="two")),
    )
    answers = [await answer_to(tab1, "t1"), await answer_to(tab2, "t2")]
    assert sorted(a["type"] for a in answers) == ["ack", "error"]
    (ack,) = [a for a in answers if a["type"] == "ack"]
    (error,) = [a for a in answers if a["type"] == "error"]
    assert error["code"] == "bad_attachment"
    assert await attached_to(upload) == ack["id"]
    assert await message_count() == 1


# --- Reading back --------------------------------------------------------------------


async def test_history_and_sync_bring_the_attachments(people, connect):
    alice = await connect(people[0])
    upload = await upload_for(people[0], name="chart.png", image=True)
    await alice.send(send_files("d1", [upload], body="chart", to="bob"))
    live = await revision(alice, (await alice.receive_type("ack"))["id"])

    bob = await connect(people[1])
    history = await bob.ask({"type": "history", "with": "alice"})
    by_id = await bob.ask({"type": "sync", "after": 0})
    by_rev = await bob.ask({"type": "sync", "since": 0})
    for answer in (history, by_id, by_rev):
        assert answer["messages"] == [live]
    assert live["attachments"][0]["thumb_url"] == f"/uploads/{upload.key}/thumb/"


# --- Changes --------------------------------------------------------------------------


async def test_deleting_a_message_deletes_its_files_for_everyone(people, connect):
    alice, bob = await connect(people[0]), await connect(people[1])
    uploads = [await upload_for(people[0]), await upload_for(people[0], image=True)]
    await alice.send(send_files("f1", uploads, body="both"))
    original = await revision(alice, (await alice.receive_type("ack"))["id"])
    await revision(bob, original["id"])
    assert len(original["attachments"]) == 2
    stored_files = [name for u in uploads for name in (u.file.name, u.thumb.name) if name]
    assert len(stored_files) == 3 and all(map(default_storage.exists, stored_files))

    tombstone = await change(alice, {"type": "delete", "id": original["id"]}, original)
    assert await revision(bob, original["id"], above=original["rev"]) == tombstone
    assert (tombstone["deleted"], tombstone["body"], tombstone["attachments"]) == (True, "", [])
    assert await sync_to_async(Upload.objects.count)() == 0
    # The bytes left storage when the deletion committed, before it was published.
    assert not any(map(default_storage.exists, stored_files))
    (history,) = (await bob.ask({"type": "history", "room": "general"}))["messages"]
    assert history["attachments"] == []


async def test_an_edit_may_empty_the_text_of_a_message_with_files_only(people, connect):
    alice = await connect(people[0])
    upload = await upload_for(people[0])
    await alice.send(send_files("f1", [upload], body="caption"))
    with_files = await revision(alice, (await alice.receive_type("ack"))["id"])
    text_only = await post(alice, "words", "t1", room="general")

    emptied = await change(alice, {"type": "edit", "id": with_files["id"], "body": " "}, with_files)
    assert (emptied["body"], emptied["attachments"]) == ("", with_files["attachments"])
    assert emptied["edited_at"] is not None

    error = await refused(alice, {"type": "edit", "id": text_only["id"], "body": " "})
    assert (error["code"], error["id"]) == ("empty", text_only["id"])
