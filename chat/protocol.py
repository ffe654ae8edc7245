"""The wire format of /ws/chat/: parses client frames and builds server frames.

Pure functions with no I/O; the only module that knows what a frame looks like
(see the contract in protocol.md).
"""

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any
from urllib.parse import parse_qs

from chat.errors import ChatError, ErrorCode

MAX_FRAME_BYTES = 64 * 1024
MAX_BODY_CHARS = 4000
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 100
SYNC_PAGE_SIZE = 100
SEARCH_DEFAULT_LIMIT = 20
SEARCH_MAX_LIMIT = 50
SEARCH_MAX_CHARS = 200
# Ids and seqs are 64-bit database integers; larger numbers are refused as bad frames.
MAX_CURSOR = 2**63 - 1

CLIENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

# A `send` names at most this many uploads, each by its id: URL-safe base64 characters.
MAX_ATTACHMENTS = 10
ATTACHMENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")

# A word of a search: letters and digits of any script (`\w` without the underscore).
SEARCH_WORD = re.compile(r"[^\W_]+")

# What no database of the site can store in a text column: NUL (PostgreSQL refuses
# it) and lone surrogates (JSON's `"\ud800"` decodes to one; it has no UTF-8 form).
UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")

# Characters that show nothing on their own: controls, format characters (zero-width
# spaces and joiners, bidi controls, the byte-order mark) and separators ...
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
# ... and the Unicode Default_Ignorable_Code_Point characters of other categories:
# combining grapheme joiner, Hangul fillers, Khmer and Mongolian marks, variation
# selectors, and the code points reserved as ignorable.
DEFAULT_IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u2065\u3164"
    "\ufe00-\ufe0f\uffa0\ufff0-\ufff8\U000e0000-\U000e0fff]"
)


class CloseCode(IntEnum):
    """Close codes the server uses, named."""

    TOO_BIG = 1009
    SESSION_ENDED = 4001
    TOO_SLOW = 4008
    RECONNECT = 4012
    TOO_MANY_SOCKETS = 4029


class ProtocolError(ChatError):
    """A frame off the contract; becomes one `error` frame and leaves the socket open."""


# --- Client frames ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """`send`: post `body` (and my uploads `attachments`) to `room`, or directly to `to`."""

    body: str
    client_id: str
    room: str | None = None
    to: str | None = None
    # The ids of my own unattached uploads, in the order the message shows them.
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class History:
    """`history`: one page of a room (`room`) or a direct conversation (`with_`)."""

    room: str | None
    with_: str | None
    before: int | None
    after: int | None
    limit: int
    # The seq to centre the page on (excludes `before` and `after`).
    around: int | None = None


@dataclass(frozen=True, slots=True)
class Search:
    """`search`: the visible messages holding every word, optionally in one conversation."""

    q: str
    # The words of `q`, lower-cased, letters and digits only; the last may be a prefix.
    words: tuple[str, ...]
    room: str | None
    with_: str | None
    before: int | None
    limit: int


@dataclass(frozen=True, slots=True)
class Sync:
    """`sync`: every visible message with an id above `after` (v1), or, in its current
    state, every visible message with a revision above `since`."""

    after: int | None = None
    since: int | None = None


@dataclass(frozen=True, slots=True)
class Users:
    """`users`: the online list."""


@dataclass(frozen=True, slots=True)
class Ping:
    """`ping`: liveness check."""


@dataclass(frozen=True, slots=True)
class Edit:
    """`edit`: replace the body of my message `id`."""

    id: int
    body: str


@dataclass(frozen=True, slots=True)
class Delete:
    """`delete`: delete message `id` (mine; staff: any)."""

    id: int


@dataclass(frozen=True, slots=True)
class React:
    """`react`: add (`on`) or remove my reaction `emoji` on message `id`."""

    id: int
    emoji: str
    on: bool


@dataclass(frozen=True, slots=True)
class Read:
    """`read`: I have read a room (`room`) or a direct conversation (`with_`) up to `seq`."""

    room: str | None
    with_: str | None
    seq: int


@dataclass(frozen=True, slots=True)
class Typing:
    """`typing`: I am typing in a room (`room`) or to a user (`to`)."""

    room: str | None
    to: str | None


# How much of a conversation notifies me; `mentions` (DMs and mentions of me) by default.
NOTIFY_LEVELS = ("all", "mentions", "none")
DEFAULT_NOTIFY_LEVEL = "mentions"


@dataclass(frozen=True, slots=True)
class Notify:
    """`notify`: how much of a room (`room`) or a direct conversation (`with_`) notifies me."""

    room: str | None
    with_: str | None
    level: str


# A user's presence: online (some socket active), away (every socket idle), offline.
ONLINE, AWAY, OFFLINE = "online", "away", "offline"


@dataclass(frozen=True, slots=True)
class Idle:
    """`idle`: this socket's person is idle (no input for a while, or the tab hidden) or not."""

    idle: bool


@dataclass(frozen=True, slots=True)
class Profile:
    """`profile`: a user's presence and when they were last online."""

    user: str


# A mute lasts 0 (lifted) to 43200 minutes (30 days).
MAX_MUTE_MINUTES = 30 * 24 * 60


@dataclass(frozen=True, slots=True)
class Mute:
    """`mute` (staff): keep `user` from writing in `room`, or everywhere, for `minutes`; 0 lifts."""

    user: str
    minutes: int
    room: str | None = None


@dataclass(frozen=True, slots=True)
class Deactivate:
    """`deactivate` (staff, an extension): end `user`'s account; their sockets close."""

    user: str


ClientFrame = (
    Send
    | History
    | Search
    | Sync
    | Users
    | Ping
    | Edit
    | Delete
    | React
    | Read
    | Typing
    | Notify
    | Idle
    | Profile
    | Mute
    | Deactivate
)

MAX_EMOJI_CHARS = 16


def _bad(
    detail: str, client_id: str | None = None, *, message_id: int | None = None
) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_FRAME, detail, client_id=client_id, message_id=message_id)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def is_storable(text: str) -> bool:
    """Tells whether the databases can store this text: no NUL, no lone surrogate."""
    return UNSTORABLE_TEXT.search(text) is None


def is_blank(text: str) -> bool:
    """Tells whether the text shows nothing: only white space and invisible characters."""
    return all(
        unicodedata.category(char) in INVISIBLE_CATEGORIES or DEFAULT_IGNORABLE.match(char)
        for char in text
    )


def _unstorable_text_in(value: Any) -> bool:
    """Tells whether any string in a decoded JSON value, keys included, cannot be stored."""
    # A stack rather than recursion: the JSON may nest as deep as the decoder allowed.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not is_storable(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _valid_client_id(frame: dict) -> str | None:
    value = frame.get("client_id")
    return value if isinstance(value, str) and CLIENT_ID_PATTERN.fullmatch(value) else None


def _optional_str(frame: dict, key: str, client_id: str | None = None) -> str | None:
    value = frame.get(key)
    if value is not None and not isinstance(value, str):
        raise _bad(f"'{key}' must be a string", client_id)
    return value


def _body(frame: dict, client_id: str | None, *, blank_ok: bool = False) -> str:
    """Reads a message body: stripped, visible, and at most MAX_BODY_CHARS long.

    With `blank_ok`, a blank body reads as "" (the caller decides whether that may stand).
    """
    body = frame.get("body")
    if not isinstance(body, str):
        raise _bad("'body' must be a string", client_id)
    body = body.strip()
    if is_blank(body):
        if blank_ok:
            return ""
        raise ProtocolError(ErrorCode.EMPTY, "the message is empty", client_id=client_id)
    if len(body) > MAX_BODY_CHARS:
        raise ProtocolError(
            ErrorCode.TOO_LONG,
            f"the message is longer than {MAX_BODY_CHARS} characters",
            client_id=client_id,
        )
    return body


def _optional_cursor(frame: dict, key: str, *, low: int = 0, high: int = MAX_CURSOR) -> int | None:
    value = frame.get(key)
    if value is None:
        return None
    # bool is a subclass of int in Python, but true is not a number on the wire.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(f"'{key}' must be a whole number from {low} to {high}")
    return value


def _exactly_one(frame: dict, first: str, second: str, client_id: str | None = None) -> None:
    if (frame.get(first) is None) == (frame.get(second) is None):
        raise _bad(f"give exactly one of '{first}' and '{second}'", client_id)


def _attachments(frame: dict, client_id: str) -> tuple[str, ...]:
    """Reads the upload ids a `send` attaches: none, or 1 to MAX_ATTACHMENTS distinct ids.

    Whether each id is one of the sender's unattached uploads is the store's to say.
    """
    ids = frame.get("attachments")
    if ids is None:
        return ()
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= MAX_ATTACHMENTS
        or not all(isinstance(i, str) and ATTACHMENT_ID_PATTERN.fullmatch(i) for i in ids)
        or len(set(ids)) != len(ids)
    ):
        raise _bad(
            f"'attachments' must be a list of 1 to {MAX_ATTACHMENTS} different upload ids",
            client_id,
        )
    return tuple(ids)


def _parse_send(frame: dict) -> Send:
    client_id = _valid_client_id(frame)
    if client_id is None:
        raise _bad("'client_id' must be 1 to 64 characters of A-Z a-z 0-9 _ -")
    _exactly_one(frame, "room", "to", client_id)
    room = _optional_str(frame, "room", client_id)
    to = _optional_str(frame, "to", client_id)
    attachments = _attachments(frame, client_id)
    # Files may go alone: then the body may be blank, or left out.
    if attachments and frame.get("body") is None:
        body = ""
    else:
        body = _body(frame, client_id, blank_ok=bool(attachments))
    return Send(body=body, client_id=client_id, room=room, to=to, attachments=attachments)


def _parse_history(frame: dict) -> History:
    _exactly_one(frame, "room", "with")
    if sum(frame.get(key) is not None for key in ("before", "after", "around")) > 1:
        raise _bad("give at most one of 'before', 'after' and 'around'")
    limit = _optional_cursor(frame, "limit", low=1, high=HISTORY_MAX_LIMIT)
    return History(
        room=_optional_str(frame, "room"),
        with_=_optional_str(frame, "with"),
        before=_optional_cursor(frame, "before"),
        after=_optional_cursor(frame, "after"),
        limit=HISTORY_DEFAULT_LIMIT if limit is None else limit,
        around=_optional_cursor(frame, "around"),
    )


def search_words(q: str) -> tuple[str, ...]:
    """Splits a search into its words: runs of letters and digits, lower-cased."""
    return tuple(word.lower() for word in SEARCH_WORD.findall(unicodedata.normalize("NFC", q)))


def _parse_search(frame: dict) -> Search:
    q = frame.get("q")
    if not isinstance(q, str):
        raise _bad("'q' must be a string: the words to search for")
    if len(q) > SEARCH_MAX_CHARS:
        raise _bad(f"'q' must be at most {SEARCH_MAX_CHARS} characters")
    words = search_words(q)
    if not words:
        raise _bad("'q' must hold at least one word (letters or digits)")
    if frame.get("room") is not None and frame.get("with") is not None:
        raise _bad("give at most one of 'room' and 'with'")
    limit = _optional_cursor(frame, "limit", low=1, high=SEARCH_MAX_LIMIT)
    return Search(
        q=q,
        words=words,
        room=_optional_str(frame, "room"),
        with_=_optional_str(frame, "with"),
        before=_optional_cursor(frame, "before"),
        limit=SEARCH_DEFAULT_LIMIT if limit is None else limit,
    )


def _parse_sync(frame: dict) -> Sync:
    after = _optional_cursor(frame, "after")
    since = _optional_cursor(frame, "since")
    if (after is None) == (since is None):
        raise _bad(
            "give exactly one of 'since' (the largest rev you have) and 'after' "
            "(the largest message id you have); 0 for none"
        )
    return Sync(after=after, since=since)


def _message_id(frame: dict) -> int:
    message_id = _optional_cursor(frame, "id", low=1)
    if message_id is None:
        raise _bad("'id' is required: the id of the message")
    return message_id


def _parse_edit(frame: dict) -> Edit:
    message_id = _message_id(frame)
    try:
        # A blank body may stand only on a message with files: the service decides.
        body = _body(frame, None, blank_ok=True)
    except ProtocolError as error:
        error.message_id = message_id  # the refusal names the message it was for
        raise
    return Edit(id=message_id, body=body)


def _parse_react(frame: dict) -> React:
    message_id = _message_id(frame)
    emoji, on = frame.get("emoji"), frame.get("on")
    if (
        not isinstance(emoji, str)
        or not 1 <= len(emoji) <= MAX_EMOJI_CHARS
        or any(char.isspace() for char in emoji)
        or is_blank(emoji)
    ):
        raise _bad(
            f"'emoji' must be 1 to {MAX_EMOJI_CHARS} characters without white space",
            message_id=message_id,
        )
    if not isinstance(on, bool):
        raise _bad(
            "'on' must be true (add my reaction) or false (remove it)", message_id=message_id
        )
    return React(id=message_id, emoji=emoji, on=on)


def _parse_read(frame: dict) -> Read:
    _exactly_one(frame, "room", "with")
    seq = _optional_cursor(frame, "seq")
    if seq is None:
        raise _bad("'seq' is required: the seq read up to")
    return Read(room=_optional_str(frame, "room"), with_=_optional_str(frame, "with"), seq=seq)


def _parse_typing(frame: dict) -> Typing:
    _exactly_one(frame, "room", "to")
    return Typing(room=_optional_str(frame, "room"), to=_optional_str(frame, "to"))


def _parse_idle(frame: dict) -> Idle:
    idle = frame.get("idle")
    if not isinstance(idle, bool):
        raise _bad("'idle' must be true (no input for a while, or hidden) or false (active)")
    return Idle(idle=idle)


def _parse_profile(frame: dict) -> Profile:
    user = frame.get("user")
    if not isinstance(user, str) or not user:
        raise _bad("'user' must be a username")
    return Profile(user=user)


def _parse_notify(frame: dict) -> Notify:
    _exactly_one(frame, "room", "with")
    level = frame.get("level")
    if level not in NOTIFY_LEVELS:
        raise _bad(f"'level' must be one of {', '.join(NOTIFY_LEVELS)}")
    room, with_ = _optional_str(frame, "room"), _optional_str(frame, "with")
    return Notify(room=room, with_=with_, level=level)


def _username(frame: dict) -> str:
    user = frame.get("user")
    if not isinstance(user, str) or not user:
        raise _bad("'user' must be a username")
    return user


def _parse_mute(frame: dict) -> Mute:
    minutes = _optional_cursor(frame, "minutes", high=MAX_MUTE_MINUTES)
    if minutes is None:
        raise _bad(f"'minutes' is required: 1 to {MAX_MUTE_MINUTES}, or 0 to lift the mute")
    return Mute(user=_username(frame), minutes=minutes, room=_optional_str(frame, "room"))


_PARSERS = {
    "send": _parse_send,
    "history": _parse_history,
    "search": _parse_search,
    "sync": _parse_sync,
    "users": lambda frame: Users(),
    "ping": lambda frame: Ping(),
    "edit": _parse_edit,
    "delete": lambda frame: Delete(id=_message_id(frame)),
    "react": _parse_react,
    "read": _parse_read,
    "typing": _parse_typing,
    "notify": _parse_notify,
    "idle": _parse_idle,
    "profile": _parse_profile,
    "mute": _parse_mute,
    "deactivate": lambda frame: Deactivate(user=_username(frame)),
}


def parse_client_frame(text: str | None) -> ClientFrame:
    """Parses one client text frame, raising ProtocolError for anything off-contract."""
    if text is None:
        raise _bad("frames must be UTF-8 text holding one JSON object")
    try:
        frame = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _bad("the frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise _bad("the frame must be a JSON object")
    # Every string of every frame, present and future, before any of it is used:
    # one bad character must not get as far as the database or a log line.
    if _unstorable_text_in(frame):
        raise _bad(
            "text must be valid Unicode without NUL characters or lone surrogates",
            _valid_client_id(frame),
        )
    kind = frame.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise _bad(f"unknown frame type; use one of {', '.join(_PARSERS)}")
    return parser(frame)


# --- Server frames ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as it was stored, ready to be shown on the wire."""

    id: int
    seq: int
    sender: str
    body: str
    sent_at: datetime
    client_id: str
    room: str | None = None
    to: str | None = None
    rev: int = 0
    edited_at: datetime | None = None
    deleted: bool = False
    # [{"emoji": "👍", "users": ["alice"]}], as stored; usernames as mentioned, in order.
    reactions: tuple[dict[str, Any], ...] = ()
    mentions: tuple[str, ...] = ()
    # [{"id", "name", "size", "type", "width", "height", "thumb"}], as stored, in order;
    # width and height for images only, "thumb" whether a thumbnail exists.
    attachments: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Unread:
    """How far I have read one conversation, and what waits there for me."""

    room: str | None
    with_: str | None
    read_seq: int
    last_seq: int
    unread: int
    mentions: int
    # A direct conversation only: how far the other party has read ("seen").
    their_read_seq: int | None = None


def format_time(moment: datetime) -> str:
    """Formats a time as ISO 8601 in UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(frame: dict[str, Any]) -> str:
    """Encodes a frame as compact JSON text."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def message_frame(message: StoredMessage) -> dict[str, Any]:
    """Builds the `message` frame of a stored message."""
    frame: dict[str, Any] = {"type": "message", "id": message.id, "seq": message.seq}
    if message.room is not None:
        frame["room"] = message.room
    else:
        frame["to"] = message.to
    frame.update(
        {
            "from": message.sender,
            "body": message.body,
            "sent_at": format_time(message.sent_at),
            "client_id": message.client_id,
            "rev": message.rev,
            "edited_at": format_time(message.edited_at) if message.edited_at else None,
            "deleted": message.deleted,
            "reactions": list(message.reactions),
            "mentions": list(message.mentions),
            "attachments": [attachment_entry(stored) for stored in message.attachments],
        }
    )
    return frame


def upload_urls(upload_id: str) -> tuple[str, str]:
    """Returns the addresses of an upload's file and of its thumbnail.

    The same as the routes `upload-file` and `upload-thumb` (a test holds them equal).
    """
    return f"/uploads/{upload_id}/", f"/uploads/{upload_id}/thumb/"


def attachment_entry(stored: dict[str, Any]) -> dict[str, Any]:
    """Builds one entry of a message's `attachments` from its stored form.

    `thumb_url` only when a thumbnail exists; `width` and `height` only for images.
    """
    url, thumb_url = upload_urls(stored["id"])
    entry = {
        "id": stored["id"],
        "name": stored["name"],
        "size": stored["size"],
        "type": stored["type"],
        "url": url,
    }
    if stored.get("thumb"):
        entry["thumb_url"] = thumb_url
    for key in ("width", "height"):
        if stored.get(key) is not None:
            entry[key] = stored[key]
    return entry


# What `hello` frames derive from their lists of names (JSON text, membership), by
# the identity of the list. In a storm the handshakes that share one read of the
# online list (a round of presence registrations) hold the same list objects; at
# 10,000 names the JSON is 130 KB and took 1.5 ms to encode, the set 0.6 ms to
# build: once per read instead of once per handshake. Each entry keeps its list
# alive, so its id cannot be reused by another list while the entry is here.
_DERIVED: dict[int, "_Derived"] = {}
_DERIVED_KEPT = 8


class _Derived:
    """A list of names, and its JSON text and set, each computed on first use."""

    __slots__ = ("_members", "_text", "names")

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self._text: str | None = None
        self._members: frozenset[str] | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = encode(self.names)
        return self._text

    @property
    def members(self) -> frozenset[str]:
        if self._members is None:
            self._members = frozenset(self.names)
        return self._members


def _derived(names: list[str]) -> _Derived:
    """The derived forms of `names`, shared while the same list object comes again."""
    kept = _DERIVED.get(id(names))
    if kept is not None and kept.names is names:
        return kept
    if len(_DERIVED) >= _DERIVED_KEPT:
        del _DERIVED[next(iter(_DERIVED))]  # the oldest
    kept = _DERIVED[id(names)] = _Derived(names)
    return kept


def encode_hello(frame: dict[str, Any]) -> str:
    """Encodes a `hello` frame as `encode` would, the lists of names shared between the
    handshakes that read them together (they must not be changed once given)."""
    lists = ("online", "away")
    rest = encode({key: value for key, value in frame.items() if key not in lists})
    named = ",".join(f'"{key}":{_derived(frame[key]).text}' for key in lists)
    return f"{rest[:-1]},{named}}}"


def hello_frame(
    *,
    user: str,
    online: list[str],
    rooms: list[str],
    direct: list[str],
    last_id: int,
    rev: int,
    unread: list[Unread],
    staff: bool,
    levels: tuple[Notify, ...] | list[Notify] = (),
    away: list[str] | tuple[str, ...] = (),
    last_seen: dict[str, datetime | None] | None = None,
) -> dict[str, Any]:
    """Builds the first frame of a socket: who I am, who is online, what I can read.

    `levels`: my notification levels other than the default. `last_seen`: when
    each direct partner was last online; only the offline ones go on the wire.
    `online` and `away` are kept as given, not copied: handshakes that read them
    together share them (see `encode_hello`), so they must not be changed.
    """
    online_now = _derived(online).members if last_seen else frozenset()
    return {
        "type": "hello",
        "user": user,
        "online": online,
        "rooms": rooms,
        "direct": direct,
        "last_id": last_id,
        "rev": rev,
        "unread": [_unread_entry(entry) for entry in unread],
        "staff": staff,
        "levels": [notify_entry(level) for level in levels],
        "away": away if isinstance(away, list) else list(away),
        "last_seen": {
            name: format_time(moment) if moment else None
            for name, moment in (last_seen or {}).items()
            if name not in online_now
        },
    }


def _unread_entry(entry: Unread) -> dict[str, Any]:
    where = {"room": entry.room} if entry.room is not None else {"with": entry.with_}
    return {
        **where,
        "read_seq": entry.read_seq,
        "last_seq": entry.last_seq,
        "unread": entry.unread,
        "mentions": entry.mentions,
        **({} if entry.their_read_seq is None else {"their_read_seq": entry.their_read_seq}),
    }


def notify_entry(level: Notify) -> dict[str, Any]:
    """One notification level as `hello.levels` lists it: `room` or `with`, and `level`."""
    where = {"room": level.room} if level.room is not None else {"with": level.with_}
    return {**where, "level": level.level}


def notify_frame(level: Notify) -> dict[str, Any]:
    """Builds the frame telling all my sockets how much a conversation now notifies me."""
    return {"type": "notify", **notify_entry(level)}


def read_frame(*, user: str, room: str | None, with_: str | None, seq: int) -> dict[str, Any]:
    """Builds the frame telling that `user` has read a conversation up to `seq`.

    `with_` names the other party of a direct conversation from the receiver's side.
    """
    frame: dict[str, Any] = {"type": "read", "user": user}
    if room is not None:
        frame["room"] = room
    else:
        frame["with"] = with_
    frame["seq"] = seq
    return frame


def typing_frame(*, user: str, room: str | None) -> dict[str, Any]:
    """Builds the frame telling that `user` is typing in `room` (or, without one, to me)."""
    if room is not None:
        return {"type": "typing", "user": user, "room": room}
    return {"type": "typing", "user": user, "with": user}


def presence_frame(*, user: str, status: str, last_seen: datetime | None = None) -> dict[str, Any]:
    """Builds the frame announcing a user's change of status (online, away, offline).

    `online` keeps its v1 meaning (online or away); an offline user's frame tells
    when they were last seen.
    """
    frame: dict[str, Any] = {
        "type": "presence",
        "user": user,
        "online": status != OFFLINE,
        "status": status,
    }
    if status == OFFLINE:
        frame["last_seen"] = format_time(last_seen) if last_seen else None
    return frame


def presence_batch_frame(
    *,
    online: list[str],
    away: list[str],
    offline: list[str],
    last_seen: dict[str, str | None],
) -> dict[str, Any]:
    """Builds the frame of several users' new statuses: each user in one list, at most once.

    `last_seen` tells, for each of `offline`, when they were last online (None if
    unknown), in the form of the offline `presence` frame it comes from.
    """
    return {
        "type": "presence_batch",
        "online": online,
        "away": away,
        "offline": offline,
        "last_seen": last_seen,
    }


def takes_presence_batches(query_string: bytes) -> bool:
    """Tells whether a socket's URL asks for `presence_batch` frames (`?presence=batch`)."""
    query = parse_qs(query_string.decode("latin-1"))
    return "batch" in query.get("presence", ())


def profile_frame(*, user: str, status: str, last_seen: datetime | None) -> dict[str, Any]:
    """Builds the answer to `profile`: a user's status and, when offline, when last seen."""
    frame: dict[str, Any] = {"type": "profile", "user": user, "status": status}
    if status == OFFLINE:
        frame["last_seen"] = format_time(last_seen) if last_seen else None
    return frame


def users_frame(*, online: list[str], away: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Builds the answer to `users`: who is online, and who among them is away."""
    return {"type": "users", "online": online, "away": list(away)}


def rooms_frame(*, rooms: list[str]) -> dict[str, Any]:
    """Builds the frame that replaces the room list after staff changed it."""
    return {"type": "rooms", "rooms": rooms}


def ack_frame(message: StoredMessage) -> dict[str, Any]:
    """Builds the `ack` telling the sender its message is stored."""
    return {
        "type": "ack",
        "client_id": message.client_id,
        "id": message.id,
        "seq": message.seq,
        "sent_at": format_time(message.sent_at),
    }


def history_frame(
    *,
    room: str | None,
    with_: str | None,
    messages: list[StoredMessage],
    has_more: bool,
    around: int | None = None,
    has_newer: bool = False,
) -> dict[str, Any]:
    """Builds the answer to `history`, messages oldest first.

    A page `around` a seq also tells whether older (`has_more` too, for v1
    clients) and newer messages lie beyond it.
    """
    frame: dict[str, Any] = {"type": "history"}
    if room is not None:
        frame["room"] = room
    else:
        frame["with"] = with_
    frame["messages"] = [message_frame(m) for m in messages]
    frame["has_more"] = has_more
    if around is not None:
        frame.update(around=around, has_older=has_more, has_newer=has_newer)
    return frame


def search_frame(
    *, search: Search, messages: list[StoredMessage], has_more: bool
) -> dict[str, Any]:
    """Builds the answer to `search`: the matches newest first, and whether more are older."""
    frame: dict[str, Any] = {"type": "search", "q": search.q}
    if search.room is not None:
        frame["room"] = search.room
    elif search.with_ is not None:
        frame["with"] = search.with_
    frame["messages"] = [message_frame(m) for m in messages]
    frame["has_more"] = has_more
    return frame


def sync_frame(
    *, messages: list[StoredMessage], has_more: bool, after: int | None, since: int | None = None
) -> dict[str, Any]:
    """Builds the answer to `sync`: `last_rev` (or, for `after`, `last_id`) starts the next page."""
    frame: dict[str, Any] = {
        "type": "sync",
        "messages": [message_frame(m) for m in messages],
        "has_more": has_more,
    }
    if since is not None:
        frame["last_rev"] = max([since, *(m.rev for m in messages)])
    else:
        frame["last_id"] = max([after, *(m.id for m in messages)])
    return frame


def error_frame(error: ChatError) -> dict[str, Any]:
    """Builds the `error` frame for a refused frame."""
    frame: dict[str, Any] = {"type": "error", "code": str(error.code), "detail": error.detail}
    if error.client_id is not None:
        frame["client_id"] = error.client_id
    if error.message_id is not None:
        frame["id"] = error.message_id
    if error.retry_after is not None:
        frame["retry_after"] = error.retry_after
    if error.until is not None:
        frame["until"] = format_time(error.until)
    return frame


def mute_frame(*, user: str, room: str | None, until: datetime | None) -> dict[str, Any]:
    """Builds the answer to a staff `mute`: who, where (`room` or null for everywhere), until.

    `until` is null when the mute was lifted.
    """
    return {
        "type": "mute",
        "user": user,
        "room": room,
        "until": format_time(until) if until else None,
    }


def deactivate_frame(*, user: str) -> dict[str, Any]:
    """Builds the answer to a staff `deactivate`: the account has ended."""
    return {"type": "deactivate", "user": user}


def pong_frame() -> dict[str, Any]:
    """Builds the answer to `ping`."""
    return {"type": "pong"}
