"""What the terminal client knows: who I am, who is online, the rooms, every message
at its highest revision, and where a `sync` resumes. Pure bookkeeping, no I/O.
"""

from dataclasses import dataclass, field

from chat.client.lines import Conversation, conversation_of


def _integer(value: object, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def rev_of(message: dict) -> int:
    """Returns a message's revision (0 for a server without revisions)."""
    return _integer(message.get("rev"))


@dataclass
class Filed:
    """What filing one message frame changed."""

    added: bool = False  # an id not seen before
    changed: bool = False  # a newer revision that says something else (body, deleted)
    gap_after: int | None = None  # a jump in seq: the messages after this seq are missing


@dataclass
class ChatState:
    """The client's view of the chat, fed by frames; tells what each frame changed."""

    me: str = ""
    online: list[str] = field(default_factory=list)
    rooms: list[str] = field(default_factory=list)
    messages: dict[int, dict] = field(default_factory=dict)  # id -> frame of highest rev
    max_id: int = 0
    max_rev: int = 0
    has_revisions: bool = True
    hello_seen: bool = False
    max_seq: dict[Conversation, int] = field(default_factory=dict)
    sync_position: dict | None = None  # {"since": n} or {"after": n} while a sync runs

    def apply_hello(self, frame: dict) -> bool:
        """Takes a socket's first frame; returns True for the first hello of the run."""
        first = not self.hello_seen
        self.hello_seen = True
        if isinstance(frame.get("user"), str):
            self.me = frame["user"]
        if first:
            # Start from the newest message without fetching all that came before.
            self.has_revisions = isinstance(frame.get("rev"), int)
            self.max_id = _integer(frame.get("last_id"))
            self.max_rev = _integer(frame.get("rev"))
        self.rooms = _names(frame.get("rooms"), self.rooms)
        return first

    def set_online(self, users: object) -> tuple[list[str], list[str]]:
        """Replaces the online list; returns (came online, went offline), others than me."""
        before = set(self.online)
        self.online = sorted(set(_names(users, self.online)))
        came = [user for user in self.online if user not in before and user != self.me]
        went = sorted(user for user in before - set(self.online) if user != self.me)
        return came, went

    def apply_presence_batch(self, frame: dict) -> list[tuple[str, bool]]:
        """Applies a `presence_batch` (each named user's final status in a window);
        returns the users whose online state changed, others than me, as (user, online)."""
        changes = []
        for key, online in (("online", True), ("away", True), ("offline", False)):
            for user in _names(frame.get(key), []):
                if user != self.me and self.set_presence(user, online):
                    changes.append((user, online))
        return changes

    def set_presence(self, user: str, online: bool) -> bool:
        """Records one user's presence; returns whether it changed."""
        if (user in self.online) == online:
            return False
        if online:
            self.online = sorted([*self.online, user])
        else:
            self.online = [name for name in self.online if name != user]
        return True

    def file(self, message: dict, *, live: bool = False) -> Filed:
        """Files a message frame, keeping per id the frame with the highest `rev`."""
        id_ = message.get("id")
        if not isinstance(id_, int) or isinstance(id_, bool):
            return Filed()
        rev = rev_of(message)
        self.max_id = max(self.max_id, id_)
        self.max_rev = max(self.max_rev, rev)
        held = self.messages.get(id_)
        if held is not None:
            if rev <= rev_of(held):
                return Filed()  # old news: this revision or a newer one is held
            self.messages[id_] = message
            said = (held.get("body"), bool(held.get("deleted")))
            return Filed(changed=said != (message.get("body"), bool(message.get("deleted"))))
        self.messages[id_] = message
        filed = Filed(added=True)
        conversation = conversation_of(message, self.me)
        seq = _integer(message.get("seq"))
        if conversation is not None and seq:
            newest = self.max_seq.get(conversation)
            # seq has no gaps: a live message past the newest one held plus one
            # means the live path dropped something in between.
            if live and newest is not None and seq > newest + 1:
                filed.gap_after = newest
            self.max_seq[conversation] = max(newest or 0, seq)
        return filed

    def begin_sync(self) -> dict:
        """Returns where a `sync` after a reconnect starts; pinned until the sync completes."""
        if self.sync_position is None:
            self.sync_position = (
                {"since": self.max_rev} if self.has_revisions else {"after": self.max_id}
            )
        return self.sync_position

    def sync_answered(self, frame: dict) -> dict | None:
        """Takes a `sync` answer's paging fields; returns the next page's position or None."""
        start = self.sync_position or self.begin_sync()
        kind = "since" if "since" in start else "after"
        # Page on from the answer's own last_rev (last_id), not from the largest one
        # seen: live messages meanwhile may have raised that past messages still to sync.
        last = _integer(frame.get("last_rev" if kind == "since" else "last_id"), start[kind])
        if frame.get("has_more") is True and last > start[kind]:
            self.sync_position = {kind: last}
            return self.sync_position
        self.sync_position = None
        return None


def _names(value: object, default: list[str]) -> list[str]:
    if not isinstance(value, list):
        return default
    return [name for name in value if isinstance(name, str)]
