"""Files on the wire: the `attachments` of a `send`, and of every message frame.

Pure unit tests of chat.protocol, as in tests/test_protocol.py: no database, no socket.
"""

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from chat.protocol import (
    MAX_ATTACHMENTS,
    Edit,
    ProtocolError,
    Search,
    Send,
    StoredMessage,
    error_frame,
    history_frame,
    message_frame,
    parse_client_frame,
    search_frame,
    sync_frame,
    upload_urls,
)

SENT_AT = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)
PHOTO = {
    "id": "Zm9vYmFyYmF6cXV4",
    "name": "beach.jpg",
    "size": 48213,
    "type": "image/jpeg",
    "width": 1600,
    "height": 1200,
    "thumb": True,
}
REPORT = {
    "id": "cmVwb3J0LTIwMjY",
    "name": "report.pdf",
    "size": 9000,
    "type": "application/pdf",
    "thumb": False,
}


def parse(frame: dict):
    """Parses a frame given as a dict, the way a client would send it."""
    return parse_client_frame(json.dumps(frame))


def refusal(frame: dict) -> dict:
    """The `error` frame a client gets for a refused frame."""
    with pytest.raises(ProtocolError) as refused:
        parse(frame)
    return error_frame(refused.value)


def send(**fields) -> dict:
    """A `send` to general with a body, changed by `fields` (None leaves one out)."""
    frame = {"type": "send", "room": "general", "body": "look", "client_id": "f1", **fields}
    return {key: value for key, value in frame.items() if value is not None}


def stored(**fields) -> StoredMessage:
    values = {
        "id": 119,
        "seq": 57,
        "sender": "bob",
        "body": "hi",
        "sent_at": SENT_AT,
        "client_id": "k1",
        "room": "general",
    }
    values.update(fields)
    return StoredMessage(**values)


# --- The `send` frame -----------------------------------------------------------


def test_send_with_attachments_keeps_their_ids_in_order():
    ids = ["b", "A-_9", "x" * 32]
    assert parse(send(attachments=ids)) == Send(
        body="look", client_id="f1", room="general", attachments=tuple(ids)
    )


def test_send_without_attachments_has_none():
    assert parse(send()).attachments == ()
    assert parse(send(attachments=None)).attachments == ()


@pytest.mark.parametrize(
    "body",
    ["", "   \n", "\u200b\u200e", None],
    ids=["empty", "white-space", "invisible", "left-out"],
)
def test_a_send_with_files_may_have_no_text(body):
    frame = send(body=body, attachments=["abc"])
    if body is None:
        frame.pop("body", None)
    assert parse(frame) == Send(body="", client_id="f1", room="general", attachments=("abc",))


def test_a_send_with_files_keeps_its_text_stripped_and_within_the_limit():
    assert parse(send(body="  see attached \n", attachments=["abc"])).body == "see attached"
    error = refusal(send(body="x" * 4001, attachments=["abc"]))
    assert (error["code"], error["client_id"]) == ("too_long", "f1")
    assert refusal(send(body=7, attachments=["abc"]))["code"] == "bad_frame"


def test_a_send_without_files_still_needs_text():
    error = refusal(send(body="  "))
    assert (error["code"], error["client_id"]) == ("empty", "f1")


def test_up_to_ten_attachments_are_accepted():
    ids = [f"id{n}" for n in range(MAX_ATTACHMENTS)]
    assert MAX_ATTACHMENTS == 10
    assert parse(send(attachments=ids)).attachments == tuple(ids)


@pytest.mark.parametrize(
    "attachments",
    [
        [f"id{n}" for n in range(11)],
        [],
        "abc",
        {"id": "abc"},
        7,
        ["abc", "abc"],
        ["abc", 7],
        ["abc", None],
        [""],
        ["x" * 33],
        ["a/b"],
        ["a.b"],
        ["a b"],
        ["../etc"],
        ["é"],
    ],
    ids=[
        "eleven",
        "empty-list",
        "string",
        "object",
        "number",
        "same-id-twice",
        "number-inside",
        "null-inside",
        "empty-id",
        "33-chars",
        "slash",
        "dot",
        "space",
        "path",
        "non-ascii",
    ],
)
def test_attachments_must_be_one_to_ten_different_upload_ids(attachments):
    error = refusal(send(attachments=attachments))
    assert (error["code"], error["client_id"]) == ("bad_frame", "f1")


def test_an_edit_may_leave_the_body_blank_for_the_service_to_judge():
    # Only a message with files may lose its text; the service knows the message.
    assert parse({"type": "edit", "id": 7, "body": " \u200b "}) == Edit(id=7, body="")
    assert refusal({"type": "edit", "id": 7, "body": "x" * 4001})["code"] == "too_long"


# --- Message frames ---------------------------------------------------------------


def test_every_message_frame_lists_attachments_even_when_there_are_none():
    assert message_frame(stored())["attachments"] == []
    assert message_frame(stored(deleted=True, body=""))["attachments"] == []


def test_an_image_attachment_has_its_urls_and_size_a_file_has_its_url_only():
    frame = message_frame(stored(body="", attachments=(PHOTO, REPORT)))
    assert frame["body"] == ""
    assert frame["attachments"] == [
        {
            "id": PHOTO["id"],
            "name": "beach.jpg",
            "size": 48213,
            "type": "image/jpeg",
            "url": f"/uploads/{PHOTO['id']}/",
            "thumb_url": f"/uploads/{PHOTO['id']}/thumb/",
            "width": 1600,
            "height": 1200,
        },
        {
            "id": REPORT["id"],
            "name": "report.pdf",
            "size": 9000,
            "type": "application/pdf",
            "url": f"/uploads/{REPORT['id']}/",
        },
    ]


def test_an_image_without_a_thumbnail_has_no_thumb_url_but_keeps_its_size():
    entry = message_frame(stored(attachments=({**PHOTO, "thumb": False},)))["attachments"][0]
    assert "thumb_url" not in entry
    assert (entry["width"], entry["height"]) == (1600, 1200)


def test_upload_urls_are_the_routes_of_the_file_and_its_thumbnail():
    for key in ("abc", PHOTO["id"], "A-_z" * 8):
        assert upload_urls(key) == (
            reverse("upload-file", args=[key]),
            reverse("upload-thumb", args=[key]),
        )


def test_history_sync_and_search_answers_carry_attachments():
    message = stored(attachments=(REPORT,))
    expected = message_frame(message)["attachments"]
    answers = [
        history_frame(room="general", with_=None, messages=[message], has_more=False),
        sync_frame(messages=[message], has_more=False, after=None, since=0),
        search_frame(
            search=Search(q="hi", words=("hi",), room=None, with_=None, before=None, limit=20),
            messages=[message],
            has_more=False,
        ),
    ]
    for answer in answers:
        assert [m["attachments"] for m in answer["messages"]] == [expected]
