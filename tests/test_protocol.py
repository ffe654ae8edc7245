"""The wire frames of /ws/chat/: what chat.protocol accepts, refuses and builds.

Pure unit tests: no database, no socket. Each refused frame is checked by the
`error` a client would see (its code, and its client_id when it had one).
"""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chat.protocol import (
    ErrorCode,
    History,
    Ping,
    ProtocolError,
    Search,
    Send,
    StoredMessage,
    Sync,
    Users,
    ack_frame,
    encode,
    encode_hello,
    error_frame,
    format_time,
    hello_frame,
    history_frame,
    message_frame,
    parse_client_frame,
    search_frame,
    sync_frame,
)

MAX_CURSOR = 2**63 - 1
SENT_AT = datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC)
MISSING = object()  # a field left out of the frame


def parse(frame: dict):
    """Parses a frame given as a dict, the way a client would send it."""
    return parse_client_frame(json.dumps(frame))


def refusal(frame: dict | str | None) -> dict:
    """Returns the `error` frame a client gets for a refused frame (dict or raw text)."""
    text = frame if frame is None or isinstance(frame, str) else json.dumps(frame)
    with pytest.raises(ProtocolError) as caught:
        parse_client_frame(text)
    return error_frame(caught.value)


def send(**fields) -> dict:
    """A valid `send` to general, with `fields` replacing, adding or (MISSING) removing keys."""
    frame = {"type": "send", "room": "general", "body": "hi", "client_id": "k1", **fields}
    return {key: value for key, value in frame.items() if value is not MISSING}


def stored(**fields) -> StoredMessage:
    """A stored room message, with `fields` replacing attributes."""
    values = {
        "id": 119,
        "seq": 57,
        "sender": "bob",
        "body": "hi",
        "sent_at": SENT_AT,
        "client_id": "k1",
        "room": "general",
        **fields,
    }
    return StoredMessage(**values)


# --- Every client frame of the contract ---------------------------------------


@pytest.mark.parametrize(
    ("frame", "parsed"),
    [
        (
            {"type": "send", "room": "general", "body": "hi", "client_id": "k1"},
            Send(body="hi", client_id="k1", room="general"),
        ),
        (
            {"type": "send", "to": "alice", "body": "hi", "client_id": "k2"},
            Send(body="hi", client_id="k2", to="alice"),
        ),
        (
            {"type": "history", "room": "general", "before": 57, "limit": 50},
            History(room="general", with_=None, before=57, after=None, limit=50),
        ),
        (
            {"type": "history", "room": "general", "after": 50, "limit": 20},
            History(room="general", with_=None, before=None, after=50, limit=20),
        ),
        (
            {"type": "history", "with": "alice", "before": 12},
            History(room=None, with_="alice", before=12, after=None, limit=50),
        ),
        ({"type": "sync", "after": 118}, Sync(after=118)),
        ({"type": "users"}, Users()),
        ({"type": "ping"}, Ping()),
        # Unknown extra fields are ignored, so clients may add their own.
        (send(colour="blue", sent=12), Send(body="hi", client_id="k1", room="general")),
    ],
    ids=[
        "send-room",
        "send-direct",
        "history-before",
        "history-after",
        "history-with-default-limit",
        "sync",
        "users",
        "ping",
        "extra-fields-ignored",
    ],
)
def test_contract_frame_is_understood(frame, parsed):
    assert parse(frame) == parsed


# --- Frames that are not a JSON object with a known type --------------------


@pytest.mark.parametrize(
    "text",
    [
        None,  # a binary frame
        "hello",
        '[{"type": "ping"}]',
        "{}",
        '{"type": "shout"}',
        '{"type": 5}',
        # NaN and Infinity are not JSON, even in a field that would be ignored.
        '{"type": "ping", "sent": NaN}',
        '{"type": "ping", "sent": Infinity}',
        "[" * 100_000,
        '{"type": "sync", "after": ' + "9" * 5000 + "}",
    ],
    ids=[
        "binary",
        "not-json",
        "not-an-object",
        "no-type",
        "unknown-type",
        "type-not-a-string",
        "nan",
        "infinity",
        "deeply-nested",
        "5000-digit-number",
    ],
)
def test_malformed_frame_is_refused_as_bad_frame(text):
    error = refusal(text)
    assert error["type"] == "error"
    assert error["code"] == "bad_frame"
    assert error["detail"]
    assert "client_id" not in error


# --- send ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [{"type": "send", "body": "hi", "client_id": "k1"}, send(to="alice")],
    ids=["neither-room-nor-to", "both-room-and-to"],
)
def test_send_needs_exactly_one_of_room_and_to(frame):
    error = refusal(frame)
    assert (error["code"], error["client_id"]) == ("bad_frame", "k1")


def test_send_body_is_stripped_of_surrounding_white_space():
    assert parse(send(body="\n\t  hello  world \r\n")).body == "hello  world"


def test_send_of_white_space_only_is_refused_as_empty_echoing_client_id():
    error = refusal(send(body=" \n\t\r ", client_id="blank-1"))
    assert (error["code"], error["client_id"]) == ("empty", "blank-1")


def test_send_of_4000_characters_after_stripping_is_accepted():
    assert parse(send(body="  " + "é" * 4000 + "\n")).body == "é" * 4000


def test_send_of_4001_characters_is_refused_as_too_long_echoing_client_id():
    error = refusal(send(body="  " + "x" * 4001 + "  ", client_id="long-1"))
    assert (error["code"], error["client_id"]) == ("too_long", "long-1")


@pytest.mark.parametrize("body", [5, MISSING], ids=["number", "missing"])
def test_send_with_a_body_that_is_not_a_string_is_refused(body):
    error = refusal(send(body=body))
    assert (error["code"], error["client_id"]) == ("bad_frame", "k1")


def test_send_accepts_a_64_character_client_id_of_letters_digits_dash_and_underscore():
    client_id = "AZaz09_-" * 8
    assert parse(send(client_id=client_id)).client_id == client_id


@pytest.mark.parametrize(
    "client_id",
    ["x" * 65, "", "has space", 5, MISSING],
    ids=["65-chars", "empty", "space", "not-a-string", "missing"],
)
def test_send_with_an_invalid_client_id_is_refused_without_echoing_it(client_id):
    error = refusal(send(client_id=client_id))
    assert error["code"] == "bad_frame"
    assert "client_id" not in error


def test_send_with_a_room_that_is_not_a_string_echoes_client_id():
    error = refusal(send(room=5, client_id="typed-1"))
    assert (error["code"], error["client_id"]) == ("bad_frame", "typed-1")


# --- Text the databases cannot store, and bodies that show nothing -------------

# Characters no database stores; json.dumps writes each as the escape a client sends.
UNSTORABLE = {"lone-high-surrogate": "\ud800", "lone-low-surrogate": "\udfff", "nul": "\x00"}


def with_text(bad: str) -> list[tuple[str, dict]]:
    """Frames that each carry `bad` inside one text field, named by that field."""
    return [
        ("send.body", send(body=f"hi {bad} there")),
        ("send.body-alone", send(body=bad)),
        ("send.room", send(room=f"general{bad}")),
        ("send.to", send(room=MISSING, to=f"alice{bad}")),
        ("history.room", {"type": "history", "room": f"general{bad}"}),
        ("history.with", {"type": "history", "with": f"{bad}alice"}),
        ("send.extra-field", send(note=bad)),
        ("ping.nested-key", {"type": "ping", "meta": [{f"k{bad}": 1}]}),
    ]


@pytest.mark.parametrize(
    ("frame", "echoes"),
    [
        pytest.param(frame, field.startswith("send."), id=f"{name}-in-{field}")
        for name, bad in UNSTORABLE.items()
        for field, frame in with_text(bad)
    ],
)
def test_text_the_database_cannot_store_is_a_bad_frame_in_every_field(frame, echoes):
    text = json.dumps(frame)  # the escapes \ud800 and \u0000, as they travel
    assert "\\u" in text
    error = refusal(text)
    assert error["code"] == "bad_frame"
    assert error.get("client_id") == ("k1" if echoes else None)


def test_a_surrogate_pair_written_as_json_escapes_is_one_valid_character():
    text = '{"type": "send", "room": "general", "body": "\\ud83d\\ude00", "client_id": "k1"}'
    assert parse_client_frame(text).body == "\N{GRINNING FACE}"


def test_unstorable_text_with_an_invalid_client_id_does_not_echo_it():
    error = refusal(send(client_id="k\ud800"))
    assert error["code"] == "bad_frame"
    assert "client_id" not in error


@pytest.mark.parametrize(
    "body",
    [
        "\u200b",  # zero-width space
        "\u200b\u200c\u200d\u2060\ufeff",  # zero-width (non-)joiners, word joiner, BOM
        "\u202e",  # right-to-left override
        "\u2066\u2067\u2068\u2069",  # bidi isolates
        "\u200e\u200f\u061c",  # left-to-right, right-to-left and Arabic letter marks
        "  \u200b \u202e\t\u2066 \u3000\n",  # mixed with spaces of several kinds
        "\u2028\u2029\xa0\x85",  # line and paragraph separators, no-break space, NEL
        "\u3164\u115f\ufe0f\u034f",  # Hangul fillers, a variation selector, CGJ
        "\U000e0041\U000e007f",  # tag characters
    ],
    ids=[
        "zero-width-space",
        "zero-width-family",
        "rlo",
        "bidi-isolates",
        "direction-marks",
        "mixed-with-spaces",
        "separators",
        "fillers-and-selectors",
        "tags",
    ],
)
def test_a_body_of_invisible_characters_only_is_empty_echoing_client_id(body):
    error = refusal(send(body=body, client_id="blank-2"))
    assert (error["code"], error["client_id"]) == ("empty", "blank-2")


@pytest.mark.parametrize(
    "body",
    [
        "\N{WOMAN}\u200d\N{PERSONAL COMPUTER}",  # an emoji ZWJ sequence
        "\N{HEAVY BLACK HEART}\ufe0f",  # an emoji with its variation selector
        "\u200bhi\u200b",  # visible text between zero-width spaces
        "\u202eabc",  # an override before visible text (the page isolates it)
        "\u0301",  # a lone combining accent still draws a mark
    ],
    ids=["zwj-sequence", "variation-selector", "zero-width-around", "rlo-before-text", "accent"],
)
def test_a_body_with_something_visible_is_kept_as_sent(body):
    assert parse(send(body=body)).body == body


# --- history ------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "history"},
        {"type": "history", "room": "general", "with": "alice"},
        {"type": "history", "room": "general", "before": 5, "after": 2},
    ],
    ids=["no-conversation", "room-and-with", "before-and-after"],
)
def test_history_needs_one_conversation_and_at_most_one_direction(frame):
    assert refusal(frame)["code"] == "bad_frame"


def test_history_limit_defaults_to_50():
    assert parse({"type": "history", "room": "general"}).limit == 50


@pytest.mark.parametrize("limit", [1, 100])
def test_history_limit_of_1_to_100_is_accepted(limit):
    assert parse({"type": "history", "room": "general", "limit": limit}).limit == limit


@pytest.mark.parametrize("limit", [0, 101, True, 1.5, "5"], ids=repr)
def test_history_limit_outside_1_to_100_or_not_an_integer_is_refused(limit):
    assert refusal({"type": "history", "room": "general", "limit": limit})["code"] == "bad_frame"


@pytest.mark.parametrize(
    ("cursor", "value"),
    [("before", -1), ("after", -1), ("before", MAX_CURSOR + 1), ("after", MAX_CURSOR + 1)],
)
def test_history_cursor_that_is_negative_or_above_64_bits_is_refused(cursor, value):
    assert refusal({"type": "history", "room": "general", cursor: value})["code"] == "bad_frame"


def test_history_cursor_may_be_the_largest_64_bit_integer():
    page = parse({"type": "history", "with": "alice", "before": MAX_CURSOR})
    assert page.before == MAX_CURSOR


# --- history around -------------------------------------------------------------


def test_history_around_is_parsed_with_its_limit():
    page = parse({"type": "history", "room": "general", "around": 57, "limit": 20})
    assert page == History(room="general", with_=None, before=None, after=None, limit=20, around=57)
    assert parse({"type": "history", "with": "alice"}).around is None


@pytest.mark.parametrize("other", ["before", "after"])
def test_history_around_with_before_or_after_is_refused(other):
    error = refusal({"type": "history", "room": "general", "around": 5, other: 3})
    assert error["code"] == "bad_frame" and "around" in error["detail"]


@pytest.mark.parametrize("around", [-1, MAX_CURSOR + 1, "5", True, 1.5], ids=repr)
def test_history_around_that_is_not_a_seq_is_refused(around):
    assert refusal({"type": "history", "room": "general", "around": around})["code"] == "bad_frame"


def test_history_frame_around_a_seq_tells_older_and_newer():
    message = stored()
    frame = history_frame(
        room="general",
        with_=None,
        messages=[message],
        has_more=True,
        around=57,
        has_newer=False,
    )
    assert frame == {
        "type": "history",
        "room": "general",
        "messages": [message_frame(message)],
        "has_more": True,
        "around": 57,
        "has_older": True,
        "has_newer": False,
    }


# --- search ---------------------------------------------------------------------


def test_search_is_parsed_into_lower_case_words_with_defaults():
    frame = parse({"type": "search", "q": "  Deploy, FRIDAY!  "})
    assert frame == Search(
        q="  Deploy, FRIDAY!  ",
        words=("deploy", "friday"),
        room=None,
        with_=None,
        before=None,
        limit=20,
    )


def test_search_words_are_letters_and_digits_of_any_script():
    frame = parse({"type": "search", "q": "Привет_мир v2.0 'x' & y:* ¿qué?", "with": "alice"})
    assert frame.words == ("привет", "мир", "v2", "0", "x", "y", "qué")
    assert frame.with_ == "alice"


def test_search_takes_a_room_before_and_limit():
    frame = parse({"type": "search", "q": "a", "room": "general", "before": 900, "limit": 50})
    assert (frame.room, frame.before, frame.limit) == ("general", 900, 50)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "search"},
        {"type": "search", "q": 5},
        {"type": "search", "q": ""},
        {"type": "search", "q": " \t "},
        {"type": "search", "q": "?! — ..."},
        {"type": "search", "q": "\u200b"},
        {"type": "search", "q": "a" * 201},
        {"type": "search", "q": "a", "room": "general", "with": "alice"},
        {"type": "search", "q": "a", "room": 5},
        {"type": "search", "q": "a", "limit": 0},
        {"type": "search", "q": "a", "limit": 51},
        {"type": "search", "q": "a", "limit": "5"},
        {"type": "search", "q": "a", "before": -1},
        {"type": "search", "q": "a", "before": True},
    ],
    ids=repr,
)
def test_a_bad_search_is_refused(frame):
    assert refusal(frame)["code"] == "bad_frame"


def test_a_search_of_200_characters_is_accepted():
    assert parse({"type": "search", "q": "a" * 200}).words == ("a" * 200,)


def test_search_frame_echoes_the_search_and_its_conversation():
    message = stored()
    search = parse({"type": "search", "q": "Hi there", "room": "general"})
    assert search_frame(search=search, messages=[message], has_more=False) == {
        "type": "search",
        "q": "Hi there",
        "room": "general",
        "messages": [message_frame(message)],
        "has_more": False,
    }
    direct = parse({"type": "search", "q": "hi", "with": "alice"})
    assert search_frame(search=direct, messages=[], has_more=True) == {
        "type": "search",
        "q": "hi",
        "with": "alice",
        "messages": [],
        "has_more": True,
    }


# --- sync ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "sync"},
        {"type": "sync", "after": -1},
        {"type": "sync", "after": True},
        {"type": "sync", "after": "118"},
    ],
    ids=["missing", "negative", "boolean", "string"],
)
def test_sync_without_a_non_negative_integer_after_is_refused(frame):
    assert refusal(frame)["code"] == "bad_frame"


# --- Server frames ------------------------------------------------------------


def test_message_frame_of_a_room_message_names_the_room():
    assert message_frame(stored()) == {
        "type": "message",
        "id": 119,
        "seq": 57,
        "room": "general",
        "from": "bob",
        "body": "hi",
        "sent_at": "2026-11-24T10:00:00.123Z",
        "client_id": "k1",
        "rev": 0,
        "edited_at": None,
        "deleted": False,
        "reactions": [],
        "mentions": [],
        "attachments": [],
    }


def test_message_frame_of_a_direct_message_names_the_recipient_and_no_room():
    message = stored(id=120, seq=12, room=None, to="alice", client_id="k2")
    assert message_frame(message) == {
        "type": "message",
        "id": 120,
        "seq": 12,
        "to": "alice",
        "from": "bob",
        "body": "hi",
        "sent_at": "2026-11-24T10:00:00.123Z",
        "client_id": "k2",
        "rev": 0,
        "edited_at": None,
        "deleted": False,
        "reactions": [],
        "mentions": [],
        "attachments": [],
    }


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (
            datetime(
                2026, 11, 24, 11, 30, 5, 7000, tzinfo=timezone(timedelta(hours=1, minutes=30))
            ),
            "2026-11-24T10:00:05.007Z",
        ),
        (
            datetime(2026, 11, 23, 21, 0, 0, 999999, tzinfo=timezone(timedelta(hours=-13))),
            "2026-11-24T10:00:00.999Z",
        ),
    ],
    ids=["east-of-utc", "west-of-utc-day-before"],
)
def test_format_time_gives_utc_with_milliseconds_and_z(moment, text):
    assert format_time(moment) == text


def test_ack_frame_tells_the_sender_id_seq_and_time():
    assert ack_frame(stored()) == {
        "type": "ack",
        "client_id": "k1",
        "id": 119,
        "seq": 57,
        "sent_at": "2026-11-24T10:00:00.123Z",
    }


def test_history_frame_of_a_direct_conversation_names_the_other_user():
    message = stored(room=None, to="alice")
    assert history_frame(room=None, with_="alice", messages=[message], has_more=True) == {
        "type": "history",
        "with": "alice",
        "messages": [message_frame(message)],
        "has_more": True,
    }


def test_history_frame_of_a_room_keeps_messages_oldest_first():
    older, newer = stored(id=1, seq=1), stored(id=2, seq=2)
    frame = history_frame(room="general", with_=None, messages=[older, newer], has_more=False)
    assert frame == {
        "type": "history",
        "room": "general",
        "messages": [message_frame(older), message_frame(newer)],
        "has_more": False,
    }


@pytest.mark.parametrize(
    ("after", "ids", "last_id"),
    [(100, [119, 121, 120], 121), (118, [], 118)],
    ids=["largest-id-of-page", "empty-page-keeps-after"],
)
def test_sync_frame_last_id_is_where_the_next_page_starts(after, ids, last_id):
    messages = [stored(id=i, seq=i) for i in ids]
    frame = sync_frame(messages=messages, has_more=False, after=after)
    assert frame == {
        "type": "sync",
        "messages": [message_frame(m) for m in messages],
        "has_more": False,
        "last_id": last_id,
    }


@pytest.mark.parametrize(
    ("error", "frame"),
    [
        (
            ProtocolError(ErrorCode.BAD_FRAME, "not JSON"),
            {"type": "error", "code": "bad_frame", "detail": "not JSON"},
        ),
        (
            ProtocolError(ErrorCode.RATE_LIMITED, "slow down", client_id="k9", retry_after=1.5),
            {
                "type": "error",
                "code": "rate_limited",
                "detail": "slow down",
                "client_id": "k9",
                "retry_after": 1.5,
            },
        ),
    ],
    ids=["plain", "with-client-id-and-retry-after"],
)
def test_error_frame_carries_client_id_and_retry_after_only_when_known(error, frame):
    assert error_frame(error) == frame


def test_encode_keeps_non_ascii_text_as_is():
    text = encode({"type": "message", "body": "héllo ☃ 你好 🎉"})
    assert "héllo ☃ 你好 🎉" in text
    assert "\\u" not in text
    assert json.loads(text) == {"type": "message", "body": "héllo ☃ 你好 🎉"}


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "edit", "id": 7, "body": "x" * 4001},
        {"type": "react", "id": 7, "emoji": "a b", "on": True},
        {"type": "react", "id": 7, "emoji": "👍", "on": "yes"},
    ],
)
def test_a_refused_change_names_its_message(frame):
    with pytest.raises(ProtocolError) as refused:
        parse_client_frame(json.dumps(frame))
    assert error_frame(refused.value)["id"] == 7


# --- hello ----------------------------------------------------------------------


def _hello(online: list[str], away: list[str]) -> dict:
    return hello_frame(
        user="ann",
        online=online,
        rooms=["general"],
        direct=["bob"],
        last_id=7,
        rev=9,
        unread=[],
        staff=False,
        away=away,
        last_seen={"bob": SENT_AT, "zoë": None},
    )


def test_a_hello_encodes_to_the_frame_it_was_built_from():
    frame = _hello(["ann", "zoë", "\u4e2d\u6587"], ["zoë"])
    assert json.loads(encode_hello(frame)) == json.loads(encode(frame))
    assert json.loads(encode_hello(_hello([], []))) == json.loads(encode(_hello([], [])))


def test_hellos_sharing_the_lists_of_one_read_each_say_what_their_lists_say():
    # Handshakes that read the online list together share the list objects; one that
    # read later holds new lists, and must never get an earlier read's names.
    shared_online, shared_away = ["ann", "bob"], ["bob"]
    first = encode_hello(_hello(shared_online, shared_away))
    assert encode_hello(_hello(shared_online, shared_away)) == first
    for n in range(20):  # more reads than the encodings kept
        online = ["ann", "bob", f"user{n}"]
        assert json.loads(encode_hello(_hello(online, [])))["online"] == online
    assert json.loads(encode_hello(_hello(["carol"], ["carol"])))["away"] == ["carol"]
