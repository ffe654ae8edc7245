"""What the terminal client prints and reads: frames and events to one line each,
and typed lines to commands. Pure functions, no I/O.
"""

import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple


class Conversation(NamedTuple):
    """A room (`kind` "room") or the direct conversation with one user (`kind` "dm")."""

    kind: str
    name: str

    @property
    def label(self) -> str:
        """Returns `#room` or `@user`."""
        return ("#" if self.kind == "room" else "@") + self.name


GENERAL = Conversation("room", "general")


# ---- events: what the connection reports to a front end ------------------------------


@dataclass(frozen=True)
class MessageEvent:
    """A message seen for the first time, or a new revision that changed what it says."""

    message: dict
    changed: bool = False


@dataclass(frozen=True)
class PresenceEvent:
    """A user came online or went offline."""

    user: str
    online: bool


@dataclass(frozen=True)
class OnlineEvent:
    """The whole online list: on start, and when `/who` is answered."""

    users: tuple[str, ...]


@dataclass(frozen=True)
class RoomsEvent:
    """The rooms I may use: on `/rooms`, and when staff change them."""

    rooms: tuple[str, ...]


@dataclass(frozen=True)
class ErrorEvent:
    """A frame the server refused, or a command the client could not carry out."""

    code: str
    detail: str


@dataclass(frozen=True)
class JoinedEvent:
    """The current conversation changed (`/join`, `/dm`)."""

    conversation: Conversation


@dataclass(frozen=True)
class StatusEvent:
    """The connection's state, for people rather than scripts ("connected", "reconnecting")."""

    text: str
    connected: bool


Event = (
    MessageEvent | PresenceEvent | OnlineEvent | RoomsEvent | ErrorEvent | JoinedEvent | StatusEvent
)


# ---- frames and events to lines -----------------------------------------------------------

# Line breaks become a visible mark: one event, one line, even for a message of many lines.
NEWLINE_MARK = " ↵ "


def clean(text: str) -> str:
    """Returns `text` safe for a terminal line: line breaks marked, control characters replaced."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", NEWLINE_MARK)
    # Escape sequences in a body must not drive the reader's terminal, and bidi
    # controls must not reorder the line around them.
    return "".join(" " if char == "\t" else "\ufffd" if _unsafe(char) else char for char in text)


# Bidi embeddings, overrides, isolates and marks; other format characters (the
# zero-width joiner of emoji sequences) are harmless and stay.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _unsafe(char: str) -> bool:
    return char in _BIDI or unicodedata.category(char) == "Cc"


def conversation_of(message: dict, me: str) -> Conversation | None:
    """Returns the conversation a message belongs to: its room, or the other party of a DM."""
    if isinstance(message.get("room"), str):
        return Conversation("room", message["room"])
    # A direct message is filed under the other party; a note to self under me.
    other = message.get("to") if message.get("from") == me else message.get("from")
    return Conversation("dm", other) if isinstance(other, str) and other else None


def message_line(message: dict, me: str) -> str:
    """Returns `#general <bob> hi` (or `@bob <bob> hi`), marked when edited or deleted."""
    conversation = conversation_of(message, me)
    where = conversation.label if conversation else "?"
    author = clean(str(message.get("from", "?")))
    if message.get("deleted"):
        return f"{where} <{author}> (deleted)"
    parts = [clean(str(message.get("body", "")))] if message.get("body") else []
    parts += [f"[{clean(str(file.get('name', 'file')))}]" for file in _attachments(message)]
    if message.get("edited_at"):
        parts.append("(edited)")
    return f"{where} <{author}> {' '.join(parts)}".rstrip()


def _attachments(message: dict) -> list[dict]:
    files = message.get("attachments")
    return [file for file in files if isinstance(file, dict)] if isinstance(files, list) else []


def presence_line(user: str, online: bool) -> str:
    """Returns `* alice is online` or `* alice is offline`."""
    return f"* {clean(user)} is {'online' if online else 'offline'}"


def online_line(users: tuple[str, ...] | list[str]) -> str:
    """Returns `* online: alice, bob`."""
    return "* online: " + (", ".join(clean(user) for user in users) or "nobody")


def rooms_line(rooms: tuple[str, ...] | list[str]) -> str:
    """Returns `* rooms: #general, #random`."""
    return "* rooms: " + (", ".join("#" + clean(room) for room in rooms) or "none")


def error_line(code: str, detail: str) -> str:
    """Returns `! code: detail`."""
    return f"! {clean(code)}: {clean(detail)}"


def event_line(event: Event, me: str) -> str | None:
    """Returns the line printed for an event on standard output, or None for none."""
    match event:
        case MessageEvent(message=message):
            return message_line(message, me)
        case PresenceEvent(user=user, online=online):
            return presence_line(user, online)
        case OnlineEvent(users=users):
            return online_line(users)
        case RoomsEvent(rooms=rooms):
            return rooms_line(rooms)
        case ErrorEvent(code=code, detail=detail):
            return error_line(code, detail)
        case JoinedEvent(conversation=conversation):
            return f"* now in {conversation.label}"
    return None


# ---- typed lines to commands ------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send `body` to the current conversation."""

    body: str


@dataclass(frozen=True)
class Join:
    """Make a room (`/join ROOM`) or a direct conversation (`/dm USER`) the current one."""

    conversation: Conversation


@dataclass(frozen=True)
class Who:
    """Print the online list."""


@dataclass(frozen=True)
class Rooms:
    """Print the rooms."""


@dataclass(frozen=True)
class Help:
    """Print the commands."""


@dataclass(frozen=True)
class Quit:
    """Deliver what is pending, then exit."""


@dataclass(frozen=True)
class Invalid:
    """A command that cannot be carried out, and why."""

    reason: str


Command = Send | Join | Who | Rooms | Help | Quit | Invalid

HELP = (
    "* commands: /join ROOM, /dm USER, /who, /rooms, /quit, /help; "
    "any other line is sent to the current conversation (start it with // to send a /)"
)

_NAME = re.compile(r"^\S+$")


def parse_input(line: str) -> Command | None:
    """Returns the command a typed line stands for, or None for a blank line."""
    text = line.rstrip("\r\n")
    if not text.strip():
        return None
    if text.startswith("//"):
        return Send(text[1:])
    if not text.startswith("/"):
        return Send(text)
    name, _, argument = text[1:].strip().partition(" ")
    argument = argument.strip()
    name = name.lower()
    if name in {"join", "dm"}:
        if not _NAME.match(argument):
            return Invalid(f"/{name} needs one {'room' if name == 'join' else 'user'} name")
        kind = "room" if name == "join" else "dm"
        return Join(Conversation(kind, argument.removeprefix("#" if kind == "room" else "@")))
    simple = {"who": Who(), "rooms": Rooms(), "quit": Quit(), "help": Help()}
    if name in simple and not argument:
        return simple[name]
    if name in simple:
        return Invalid(f"/{name} takes no argument")
    return Invalid(f"unknown command /{name} (try /help)")
