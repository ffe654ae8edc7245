"""The terminal client's pure parts: frames to lines, typed lines to commands, the
bookkeeping of revisions and sync pages, the backoff, and its independence of Django.
"""

import subprocess
import sys

import pytest

from chat.client.connection import (
    BACKOFF_CAP_SECONDS,
    RESTART_DELAY_SECONDS,
    Connection,
    backoff_delay,
    reconnect_delay,
)
from chat.client.lines import (
    Conversation,
    ErrorEvent,
    Invalid,
    Join,
    MessageEvent,
    OnlineEvent,
    PresenceEvent,
    Quit,
    Rooms,
    Send,
    Who,
    error_line,
    event_line,
    message_line,
    online_line,
    parse_input,
    presence_line,
)
from chat.client.session import Session
from chat.client.state import ChatState
from tests.server import ROOT


def message(id_: int, rev: int, body: str = "hi", seq: int | None = None, **extra) -> dict:
    frame = {"type": "message", "id": id_, "seq": seq or id_, "rev": rev, "from": "bob"}
    return {"room": "general", "body": body, **frame, **extra}


# ---- lines -------------------------------------------------------------------------------


def test_room_and_direct_messages_print_as_the_contract_says():
    assert message_line(message(1, 1), "alice") == "#general <bob> hi"
    direct = {"id": 2, "from": "bob", "to": "alice", "body": "hi"}
    assert message_line(direct, "alice") == "@bob <bob> hi"
    # My own direct message is named by the other party too.
    mine = {"id": 3, "from": "alice", "to": "bob", "body": "yo"}
    assert message_line(mine, "alice") == "@bob <alice> yo"


def test_edited_and_deleted_messages_are_marked():
    edited = message(1, 5, "fixed", edited_at="2026-11-24T10:00:00Z")
    assert message_line(edited, "alice") == "#general <bob> fixed (edited)"
    deleted = message(1, 6, "", deleted=True)
    assert message_line(deleted, "alice") == "#general <bob> (deleted)"


def test_a_body_cannot_break_the_line_or_drive_the_terminal():
    line = message_line(message(1, 1, "one\ntwo\x1b[2J\u202eevil"), "alice")
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert line.startswith("#general <bob> one ↵ two")
    # Emoji sequences keep their zero-width joiners.
    assert message_line(message(1, 1, "👩\u200d💻"), "alice").endswith("👩\u200d💻")


def test_attachments_are_named():
    files = [{"name": "photo.jpg"}]
    assert message_line(message(1, 1, "look", attachments=files), "me") == (
        "#general <bob> look [photo.jpg]"
    )


def test_presence_online_list_and_errors_print_as_lines():
    assert presence_line("alice", True) == "* alice is online"
    assert presence_line("alice", False) == "* alice is offline"
    assert online_line(["alice", "bob"]) == "* online: alice, bob"
    assert error_line("too_long", "Too long.") == "! too_long: Too long."
    assert event_line(PresenceEvent("bob", False), "me") == "* bob is offline"
    assert event_line(OnlineEvent(("a", "b")), "me") == "* online: a, b"
    assert event_line(ErrorEvent("empty", "Empty."), "me") == "! empty: Empty."
    assert event_line(MessageEvent(message(1, 1)), "me") == "#general <bob> hi"


@pytest.mark.parametrize(
    ("typed", "command"),
    [
        ("hello there\n", Send("hello there")),
        ("/join random", Join(Conversation("room", "random"))),
        ("/join #random", Join(Conversation("room", "random"))),
        ("/dm bob", Join(Conversation("dm", "bob"))),
        ("/who", Who()),
        ("/rooms", Rooms()),
        ("/quit\n", Quit()),
        ("//shrug", Send("/shrug")),
        ("   \n", None),
    ],
)
def test_typed_lines_become_commands(typed, command):
    assert parse_input(typed) == command


@pytest.mark.parametrize("typed", ["/join", "/dm two words", "/who me", "/nope"])
def test_bad_commands_say_why(typed):
    assert isinstance(parse_input(typed), Invalid)


# ---- state ----------------------------------------------------------------------------------


def test_each_id_is_reported_once_and_only_a_newer_revision_that_changes_it_again():
    state = ChatState(me="alice")
    assert state.file(message(1, 10)).added
    assert not state.file(message(1, 10)).added  # the same frame again (sync repeats)
    assert not state.file(message(1, 9, "older")).changed  # an older revision loses
    assert state.file(message(1, 11, "fixed")).changed
    assert not state.file(message(1, 12, "fixed", reactions=[{"emoji": "👍"}])).changed
    assert state.messages[1]["rev"] == 12
    assert state.max_rev == 12


def test_a_jump_in_a_live_seq_reveals_a_gap():
    state = ChatState(me="alice")
    state.file(message(1, 1, seq=1), live=True)
    assert state.file(message(3, 3, seq=3), live=True).gap_after == 1
    assert state.file(message(4, 4, seq=4), live=True).gap_after is None


def test_sync_starts_from_the_largest_rev_and_pages_on_from_last_rev():
    state = ChatState()
    state.apply_hello({"type": "hello", "user": "alice", "rev": 40, "last_id": 7, "rooms": []})
    state.file(message(8, 45))
    assert state.begin_sync() == {"since": 45}
    state.file(message(9, 60))  # a live message before the answer does not move the start
    assert state.sync_answered({"has_more": True, "last_rev": 50}) == {"since": 50}
    assert state.sync_answered({"has_more": False, "last_rev": 60}) is None
    assert state.begin_sync() == {"since": 60}


def test_online_list_changes_are_told_apart():
    state = ChatState(me="alice", online=["alice", "bob"])
    assert state.set_online(["alice", "carol"]) == (["carol"], ["bob"])
    assert state.set_presence("bob", True)
    assert not state.set_presence("bob", True)


def test_a_presence_batch_changes_only_those_it_names_and_never_me():
    state = ChatState(me="alice", online=["alice", "bob", "carol"])
    changes = state.apply_presence_batch(
        {
            "type": "presence_batch",
            "online": ["dave", "bob"],  # bob was online already
            "away": ["erin"],  # away is still online
            "offline": ["carol", "alice"],  # a batch may name me: I stay online
            "last_seen": {"carol": None, "alice": None},
        }
    )
    assert changes == [("dave", True), ("erin", True), ("carol", False)]
    assert state.online == ["alice", "bob", "dave", "erin"]


async def test_the_connection_tells_each_change_of_a_presence_batch():
    told = []
    connection = Connection(
        session=Session(server="http://127.0.0.1:8000", user="alice", password="p"),
        emit=told.append,
    )
    connection.state.me = "alice"
    await connection._handlers["presence_batch"](
        {"type": "presence_batch", "online": ["bob"], "away": [], "offline": ["carol"]}
    )
    assert told == [PresenceEvent("bob", True)]  # carol was not online: nothing to tell


# ---- connection and session -------------------------------------------------------------------


def test_backoff_has_full_jitter_under_a_doubling_capped_ceiling():
    assert backoff_delay(0, rand=lambda: 1.0) == 0.5
    assert backoff_delay(3, rand=lambda: 1.0) == 4.0
    assert backoff_delay(50, rand=lambda: 1.0) == BACKOFF_CAP_SECONDS
    assert backoff_delay(5, rand=lambda: 0.0) == 0.0
    assert reconnect_delay(4012, failures=10) <= RESTART_DELAY_SECONDS


def test_the_socket_address_and_origin_follow_the_server_address():
    plain = Session(server="http://127.0.0.1:8000/", user="a", password="p")
    assert plain.socket_url == "ws://127.0.0.1:8000/ws/chat/?presence=batch"
    assert plain.origin == "http://127.0.0.1:8000"
    secure = Session(server="https://chat.example.com", user="a", password="p")
    assert secure.socket_url == "wss://chat.example.com/ws/chat/?presence=batch"
    assert secure.origin == "https://chat.example.com"
    with pytest.raises(ValueError):
        Session(server="chat.example.com", user="a", password="p")


def test_the_client_runs_without_django():
    code = (
        "import sys, chat.client.__main__, chat.client.tui; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
