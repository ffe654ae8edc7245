"""Helpers for socket tests of messages that change: posting, changing, and waiting for
a message's next revision, as a client that keeps the highest `rev` per id does.
"""

from tests.conftest import Socket

# Frames that are news of who is online, not answers or messages.
PRESENCE = ("presence", "users")


def not_presence(frames: list[dict]) -> list[dict]:
    """The frames that are not news of who is online."""
    return [frame for frame in frames if frame["type"] not in PRESENCE]


async def post(socket: Socket, body: str, client_id: str, **target: str) -> dict:
    """Sends a message (`room=` or `to=`) and returns its frame as the sender's socket gets it."""
    await socket.send({"type": "send", **target, "body": body, "client_id": client_id})
    _, ack = await socket.receive_until("ack", lambda a: a["client_id"] == client_id)
    return await revision(socket, ack["id"])


async def revision(socket: Socket, message_id: int, *, above: int = 0) -> dict:
    """Receives frames until message `message_id` arrives with a `rev` above `above`."""
    _, frame = await socket.receive_until(
        "message", lambda m: m["id"] == message_id and m["rev"] > above
    )
    return frame


async def change(socket: Socket, frame: dict, current: dict) -> dict:
    """Sends a change of the message `current` and returns its next revision on this socket."""
    await socket.send(frame)
    return await revision(socket, current["id"], above=current["rev"])


async def react(socket: Socket, current: dict, emoji: str, on: bool = True) -> dict:
    """Adds (or removes) a reaction and returns the message's next revision on this socket."""
    frame = {"type": "react", "id": current["id"], "emoji": emoji, "on": on}
    return await change(socket, frame, current)


async def sync_since(socket: Socket, since: int) -> tuple[list[dict], list[dict]]:
    """Pages through `sync` `since` a revision; returns (messages, the answer frames)."""
    messages, answers = [], []
    while True:
        answer = await socket.ask({"type": "sync", "since": since}, "sync")
        answers.append(answer)
        messages += answer["messages"]
        if not answer["has_more"]:
            return messages, answers
        since = answer["last_rev"]
