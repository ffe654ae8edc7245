"""Files in messages, below the socket: which uploads a send may attach, attaching them
with the message in one transaction, reading them back, and letting them go on delete.
"""

import io
import secrets
import threading

import pytest
from django.core.files.base import ContentFile
from django.db import connection, connections
from PIL import Image

from chat.errors import ChatError, ErrorCode
from chat.messaging import reads
from chat.messaging.changes import message_delete, message_edit
from chat.messaging.search import message_search
from chat.messaging.store import Posted, message_store, message_store_many
from chat.models import Message, Room, Upload
from chat.protocol import Send
from tests.test_messaging_store import committed_between_reads_and_insert, kind_of

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL behaviour (runs in the PostgreSQL pass)"
)

IMAGE_SIZE = (640, 480)


def make_upload(owner, *, name: str = "notes.pdf", image: bool = False) -> Upload:
    """Stores a file for `owner` the way the upload endpoint does: bytes on disk, one row.

    An image gets its real width and height and a real thumbnail beside it.
    """
    key = secrets.token_urlsafe(16)
    if image:
        buffer = io.BytesIO()
        Image.new("RGB", IMAGE_SIZE, "teal").save(buffer, "PNG")
        data, content_type = buffer.getvalue(), "image/png"
    else:
        data, content_type = b"%PDF-1.4\n% a small document\n", "application/pdf"
    upload = Upload(owner=owner, key=key, name=name, size=len(data), content_type=content_type)
    upload.file.save(f"{key}-{name}", ContentFile(data), save=False)
    if image:
        picture = Image.open(io.BytesIO(data))
        picture.thumbnail((320, 320))
        thumb = io.BytesIO()
        picture.save(thumb, "PNG")
        upload.thumb.save(f"{key}-thumb.png", ContentFile(thumb.getvalue()), save=False)
        upload.width, upload.height = IMAGE_SIZE
    upload.save()
    return upload


def stored_form(upload: Upload) -> dict:
    """How a message stores an upload (`Message.attachments`), and how the wire builds on it."""
    entry = {
        "id": upload.key,
        "name": upload.name,
        "size": upload.size,
        "type": upload.content_type,
    }
    if upload.width is not None:
        entry.update(width=upload.width, height=upload.height)
    entry["thumb"] = bool(upload.thumb)
    return entry


def attached_to(upload: Upload) -> int | None:
    """The id of the message an upload is attached to now, None while it is not."""
    return Upload.objects.values_list("message_id", flat=True).get(pk=upload.pk)


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


def files(body: str = "", *, client_id: str, uploads, **target) -> Send:
    """A send (to general unless `to=` says otherwise) attaching `uploads`."""
    target = target or {"room": "general"}
    return Send(
        body=body,
        client_id=client_id,
        attachments=tuple(u.key for u in uploads),
        **target,
    )


# --- Attaching ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_send_attaches_its_uploads_in_the_order_named(alice):
    photo, report = make_upload(alice, name="beach.png", image=True), make_upload(alice)
    posted = message_store(
        sender=alice, send=files("holiday", client_id="f1", uploads=[report, photo])
    )
    assert posted.created
    expected = (stored_form(report), stored_form(photo))
    assert posted.message.attachments == expected
    assert expected[1] == {
        "id": photo.key,
        "name": "beach.png",
        "size": photo.size,
        "type": "image/png",
        "width": 640,
        "height": 480,
        "thumb": True,
    }
    assert "width" not in expected[0] and expected[0]["thumb"] is False
    message = Message.objects.get(pk=posted.message.id)
    assert message.attachments == list(expected)
    assert attached_to(photo) == attached_to(report) == message.pk


@pytest.mark.django_db
def test_a_files_only_message_has_an_empty_body_no_mentions_and_leaves_search_alone(alice):
    upload = make_upload(alice)
    message_store(sender=alice, send=Send(body="found it", client_id="t1", room="general"))
    posted = message_store(sender=alice, send=files(client_id="f1", uploads=[upload]))
    assert (posted.message.body, posted.message.mentions) == ("", ())
    assert Message.objects.get(pk=posted.message.id).mentions.count() == 0
    found, _ = message_search(user_id=alice.pk, words=("found",), limit=20)
    assert [m.client_id for m in found] == ["t1"]


@pytest.mark.django_db
def test_a_direct_message_attaches_files_too(alice, bob):
    upload = make_upload(alice)
    posted = message_store(sender=alice, send=files(client_id="d1", uploads=[upload], to="bob"))
    assert posted.message.to == "bob"
    assert posted.message.attachments == (stored_form(upload),)


@pytest.mark.django_db
@pytest.mark.parametrize("whose", ["someone-elses", "unknown-id", "attached-already"])
def test_an_upload_that_is_not_mine_to_attach_refuses_the_send_and_stores_nothing(
    alice, bob, whose
):
    mine = make_upload(alice)
    if whose == "someone-elses":
        bad_key = make_upload(bob).key
    elif whose == "unknown-id":
        bad_key = "no-such-upload"
    else:
        used = make_upload(alice)
        message_store(sender=alice, send=files(client_id="f0", uploads=[used]))
        bad_key = used.key
    before = Message.objects.count()
    send = Send(body="", client_id="f1", room="general", attachments=(mine.key, bad_key))
    with pytest.raises(ChatError) as refused:
        message_store(sender=alice, send=send)
    assert (refused.value.code, refused.value.client_id) == (ErrorCode.BAD_ATTACHMENT, "f1")
    assert Message.objects.count() == before
    # Nothing was claimed: my own upload is still free, and no seq was taken.
    assert attached_to(mine) is None
    later = message_store(sender=alice, send=files(client_id="f2", uploads=[mine]))
    assert later.message.seq == before + 1
    assert attached_to(mine) == later.message.id


@pytest.mark.django_db
def test_one_id_named_twice_in_one_send_is_a_bad_attachment(alice):
    # The socket refuses such a frame as bad_frame already; other callers meet the store.
    upload = make_upload(alice)
    send = Send(body="", client_id="f1", room="general", attachments=(upload.key, upload.key))
    with pytest.raises(ChatError) as refused:
        message_store(sender=alice, send=send)
    assert refused.value.code == ErrorCode.BAD_ATTACHMENT
    assert attached_to(upload) is None


@pytest.mark.django_db
def test_a_retry_of_a_send_with_files_is_the_same_message_not_a_bad_attachment(alice):
    upload = make_upload(alice)
    first = message_store(sender=alice, send=files("x", client_id="f1", uploads=[upload]))
    again = message_store(sender=alice, send=files("x", client_id="f1", uploads=[upload]))
    assert (first.created, again.created) == (True, False)
    assert again.message == first.message
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_in_a_batch_the_first_send_naming_an_upload_gets_it_and_no_other(alice, bob):
    shared, other, bobs = make_upload(alice), make_upload(alice), make_upload(bob)
    sends = [
        (alice, Send(body="text", client_id="a0", room="general")),
        (alice, files(client_id="a1", uploads=[shared])),
        (alice, files(client_id="a2", uploads=[other, shared])),  # shared is a1's
        (bob, files(client_id="b1", uploads=[bobs, shared])),  # not bob's either
        (alice, files(client_id="a1", uploads=[shared])),  # a1 again: its message
        (alice, files(client_id="a3", uploads=[other], to="bob")),  # a2 claimed nothing
        (bob, files("mine", client_id="b2", uploads=[bobs])),
    ]
    results = message_store_many(sends=sends)
    assert [kind_of(r) for r in results] == [
        True,
        True,
        "bad_attachment",
        "bad_attachment",
        False,
        True,
        True,
    ]
    assert [results[i].client_id for i in (2, 3)] == ["a2", "b1"]
    assert results[4].message == results[1].message
    # The refused sends took no seq: general has no hole.
    assert [results[i].message.seq for i in (0, 1, 6)] == [1, 2, 3]
    assert Room.objects.get(name="general").last_seq == 3
    assert attached_to(shared) == results[1].message.id
    assert attached_to(other) == results[5].message.id
    assert attached_to(bobs) == results[6].message.id
    assert sorted(Message.objects.values_list("client_id", flat=True)) == [
        "a0",
        "a1",
        "a3",
        "b2",
    ]


@pytest.mark.django_db
def test_a_batch_of_refused_sends_only_stores_nothing(alice, bob):
    bobs = make_upload(bob)
    results = message_store_many(sends=[(alice, files(client_id="a1", uploads=[bobs]))])
    assert [kind_of(r) for r in results] == ["bad_attachment"]
    assert Message.objects.count() == 0
    assert Room.objects.get(name="general").last_seq == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_send_whose_files_another_process_attached_to_it_meanwhile_is_its_retry(alice):
    upload = make_upload(alice)
    other = {}

    def another_process_stores_f1():
        other["posted"] = message_store(
            sender=alice, send=files("first", client_id="f1", uploads=[upload])
        )

    with committed_between_reads_and_insert(another_process_stores_f1):
        results = message_store_many(
            sends=[(alice, files("again", client_id="f1", uploads=[upload]))]
        )
    assert [kind_of(r) for r in results] == [False]
    assert results[0].message == other["posted"].message
    assert Message.objects.count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_sends_of_one_upload_attach_it_once(alice):
    upload = make_upload(alice)
    start = threading.Barrier(2)
    results = {}

    def send(client_id: str):
        try:
            start.wait(5)
            results[client_id] = message_store_many(
                sends=[(alice, files(client_id=client_id, uploads=[upload]))]
            )[0]
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(f"c{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    kinds = sorted(str(kind_of(r)) for r in results.values())
    assert kinds == ["True", "bad_attachment"]
    (winner,) = [r for r in results.values() if isinstance(r, Posted)]
    assert attached_to(upload) == winner.message.id
    assert Message.objects.count() == 1


# --- Reading back -----------------------------------------------------------------


@pytest.mark.django_db
def test_history_sync_and_a_changed_message_carry_attachments(alice, bob):
    upload = make_upload(alice, name="plan.png", image=True)
    posted = message_store(
        sender=alice, send=files("plan", client_id="d1", uploads=[upload], to="bob")
    )
    expected = (stored_form(upload),)
    page, _ = reads.history_for_user(
        user_id=bob.pk, room=None, with_="alice", before=None, after=None, limit=50
    )
    synced, _ = reads.message_sync_page(user_id=bob.pk, after=0)
    changes, _ = reads.message_changes_page(user_id=bob.pk, since=0)
    found, _ = message_search(user_id=bob.pk, words=("plan",), limit=20)
    for messages in (page, synced, changes, found):
        assert [m.attachments for m in messages] == [expected]
    edited = message_edit(user_id=alice.pk, message_id=posted.message.id, body="the plan")
    assert edited.message.attachments == expected
    assert reads.messages_by_client_id(keys={(alice.pk, "d1")})[alice.pk, "d1"] == edited.message


# --- Edits and deletion -----------------------------------------------------------


@pytest.mark.django_db
def test_an_edit_may_empty_the_body_of_a_message_with_files_only(alice):
    upload = make_upload(alice)
    with_files = message_store(
        sender=alice, send=files("caption", client_id="f1", uploads=[upload])
    )
    text_only = message_store(sender=alice, send=Send(body="words", client_id="t1", room="general"))

    emptied = message_edit(user_id=alice.pk, message_id=with_files.message.id, body="")
    assert emptied.changed and emptied.message.body == ""
    assert emptied.message.attachments == (stored_form(upload),)

    with pytest.raises(ChatError) as refused:
        message_edit(user_id=alice.pk, message_id=text_only.message.id, body="")
    assert (refused.value.code, refused.value.message_id) == (ErrorCode.EMPTY, text_only.message.id)
    assert Message.objects.get(pk=text_only.message.id).body == "words"


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["author", "staff"])
def test_deleting_a_message_deletes_its_uploads_and_empties_its_attachments(alice, make_user, who):
    uploads = [make_upload(alice), make_upload(alice, name="a.png", image=True)]
    kept = make_upload(alice)  # not attached: deleting the message leaves it alone
    posted = message_store(sender=alice, send=files("two", client_id="f1", uploads=uploads))
    actor = alice if who == "author" else make_user("mod", is_staff=True)

    change = message_delete(user_id=actor.pk, message_id=posted.message.id, as_staff=actor.is_staff)

    assert change.message.deleted and change.message.attachments == ()
    message = Message.objects.get(pk=posted.message.id)
    assert (message.deleted, message.attachments) == (True, [])
    assert list(Upload.objects.values_list("key", flat=True)) == [kept.key]
