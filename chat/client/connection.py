"""The terminal client's connection: one websocket kept open with backoff and jitter,
a `sync` from the largest revision seen after every reconnect, and sends that
survive a reconnect (resent with the same `client_id` until acknowledged).
"""

import asyncio
import contextlib
import json
import random
import secrets
import time
from collections.abc import Callable
from enum import IntEnum

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from chat.client.lines import (
    GENERAL,
    Conversation,
    ErrorEvent,
    Event,
    JoinedEvent,
    MessageEvent,
    OnlineEvent,
    PresenceEvent,
    RoomsEvent,
    StatusEvent,
    conversation_of,
)
from chat.client.session import Session, Unreachable
from chat.client.state import ChatState


class CloseCode(IntEnum):
    """The close codes of the protocol that change what the client does next."""

    SESSION_ENDED = 4001  # logout or expiry: do not reconnect
    TOO_SLOW = 4008  # this socket fell behind: reconnect and sync
    RECONNECT_AND_SYNC = 4012  # the server restarts or lost live frames
    TOO_MANY_SOCKETS = 4029  # another socket of mine has to close first


BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 15.0
STABLE_AFTER_SECONDS = 10.0  # open this long and the backoff starts over
RESTART_DELAY_SECONDS = 1.0  # 4012 and 4008: come back soon, but not every client at once
TOO_MANY_DELAY_SECONDS = 60.0
UNAVAILABLE_RETRY_SECONDS = 2.0
HISTORY_ON_JOIN = 20
GAP_PAGE = 100


class SessionEnded(Exception):
    """The server closed the socket with 4001: the session was logged out or expired."""


def backoff_delay(failures: int, rand: Callable[[], float] = random.random) -> float:
    """Returns a wait with full jitter under a ceiling that doubles per failure, up to the cap."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(failures, 20))
    return rand() * ceiling


def reconnect_delay(code: int | None, failures: int) -> float:
    """Returns how long to wait before reconnecting after a close with `code`."""
    if code in {CloseCode.RECONNECT_AND_SYNC, CloseCode.TOO_SLOW}:
        # A planned restart: many clients come back at once, so spread them out.
        return random.random() * RESTART_DELAY_SECONDS
    if code == CloseCode.TOO_MANY_SOCKETS:
        return TOO_MANY_DELAY_SECONDS * (0.5 + random.random() / 2)
    return backoff_delay(failures)


async def login_with_retry(session: Session, emit: Callable[[Event], None]) -> None:
    """Logs in, retrying with backoff while the server cannot be reached; raises LoginRefused."""
    failures = 0
    while True:
        try:
            await asyncio.to_thread(session.login)
            return
        except Unreachable as error:
            delay = max(backoff_delay(failures), 0.2)
            failures += 1
            emit(StatusEvent(f"{error}; retrying in {delay:.1f} s", connected=False))
            await asyncio.sleep(delay)


def new_client_id() -> str:
    """Returns a fresh client_id for a send."""
    return "t" + secrets.token_hex(12)


class Connection:
    """Keeps one socket of a logged-in session open and reports what happens as events."""

    def __init__(self, *, session: Session, emit: Callable[[Event], None]) -> None:
        self.session = session
        self.emit = emit
        self.state = ChatState()
        self.current: Conversation = GENERAL
        self.pending: dict[str, dict] = {}  # client_id -> send frame, until acked or refused
        self.sent_on: dict[str, int] = {}  # client_id -> generation of the socket it went out on
        self.refused = 0  # sends the server refused for good
        self.generation = 0
        self.ws = None
        self.ready = False  # hello received on the current socket
        self.who_asked = 0  # `users` frames asked for and not answered yet
        self.history_wanted: set[Conversation] = set()
        self.gaps: set[Conversation] = set()  # conversations with a gap being filled
        self._delivered = asyncio.Event()
        self._delivered.set()
        self._stop = asyncio.Event()
        self.greeted = asyncio.Event()  # set by the first hello of the run
        self._handlers = {
            "hello": self._on_hello,
            "message": self._on_message,
            "ack": self._on_ack,
            "history": self._on_history,
            "sync": self._on_sync,
            "presence": self._on_presence,
            "users": self._on_users,
            "presence_batch": self._on_presence_batch,
            "rooms": self._on_rooms,
            "error": self._on_error,
        }

    # ---- the socket's life ----------------------------------------------------------

    async def run(self) -> None:
        """Keeps the socket open until stop(); raises SessionEnded or LoginRefused."""
        failures = 0
        while not self._stop.is_set():
            code, opened_at = None, None
            try:
                cookie = self.session.cookie_header()
                async with connect(
                    self.session.socket_url,
                    origin=self.session.origin,
                    additional_headers={"Cookie": cookie},
                    open_timeout=10,
                    close_timeout=2,
                    max_size=None,
                    # Our own liveness check: a half-open TCP connection can look open for minutes.
                    ping_interval=25,
                    ping_timeout=10,
                ) as ws:
                    opened_at = time.monotonic()
                    await self._serve(ws)
                    code = ws.close_code
            except InvalidStatus as error:
                if error.response.status_code in {401, 403}:
                    # The session may have expired while we were away: log in again.
                    with contextlib.suppress(Unreachable):
                        await asyncio.to_thread(self.session.login)
            except (OSError, TimeoutError, WebSocketException):
                pass  # the server is down or restarting: wait and try again
            finally:
                self._disconnected()
            if self._stop.is_set():
                return
            if code == CloseCode.SESSION_ENDED:
                raise SessionEnded
            if opened_at is not None and time.monotonic() - opened_at >= STABLE_AFTER_SECONDS:
                failures = 0
            delay = reconnect_delay(code, failures)
            failures += 1
            why = f" ({code})" if code else ""
            self.emit(StatusEvent(f"disconnected{why}; reconnecting in {delay:.1f} s", False))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def stop(self) -> None:
        """Closes the socket and ends run()."""
        self._stop.set()
        if self.ws is not None:
            with contextlib.suppress(WebSocketException, OSError):
                await self.ws.close()

    async def wait_delivered(self) -> None:
        """Waits until every message sent so far is acknowledged (or refused)."""
        await self._delivered.wait()

    async def _serve(self, ws) -> None:
        self.ws = ws
        self.generation += 1
        try:
            async for raw in ws:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue  # nothing in the protocol sends that
                handler = self._handlers.get(frame.get("type")) if isinstance(frame, dict) else None
                if handler is not None:
                    await handler(frame)
        except ConnectionClosed:
            pass  # the close code is read by run()

    def _disconnected(self) -> None:
        self.ws = None
        self.ready = False
        self.who_asked = 0

    async def _send(self, frame: dict) -> bool:
        if self.ws is None or not self.ready:
            return False
        try:
            await self.ws.send(json.dumps(frame))
        except (ConnectionClosed, OSError):
            return False
        return True

    # ---- what the person does ---------------------------------------------------------

    async def say(self, body: str) -> None:
        """Sends `body` to the current conversation, now or as soon as a socket is open."""
        client_id = new_client_id()
        name = self.current.name
        where = {"room": name} if self.current.kind == "room" else {"to": name}
        self.pending[client_id] = {"type": "send", **where, "body": body, "client_id": client_id}
        self._delivered.clear()
        await self._send_pending()

    async def join(self, conversation: Conversation) -> None:
        """Makes `conversation` the current one and shows its last messages."""
        if conversation.kind == "room" and conversation.name not in self.state.rooms:
            self.emit(
                ErrorEvent("unknown_room", f"no room #{conversation.name}; /rooms lists them")
            )
            return
        self.current = conversation
        self.emit(JoinedEvent(conversation))
        self.history_wanted.add(conversation)
        await self._send(self._history_frame(conversation, limit=HISTORY_ON_JOIN))

    async def who(self) -> None:
        """Reports the online list, fresh from the server when connected."""
        if await self._send({"type": "users"}):
            self.who_asked += 1
        else:
            self.emit(OnlineEvent(tuple(self.state.online)))

    def rooms(self) -> None:
        """Reports the rooms I may use."""
        self.emit(RoomsEvent(tuple(self.state.rooms)))

    # Sends every pending message not yet sent on this socket. After a reconnect
    # that resends with the same client_id: if the first try was stored, the
    # server answers with its ack instead of storing a second copy.
    async def _send_pending(self) -> None:
        for client_id, frame in list(self.pending.items()):
            if self.sent_on.get(client_id) == self.generation:
                continue
            if await self._send(frame):
                self.sent_on[client_id] = self.generation

    def _settle(self, client_id: object) -> None:
        if isinstance(client_id, str) and self.pending.pop(client_id, None) is not None:
            self.sent_on.pop(client_id, None)
        if not self.pending:
            self._delivered.set()

    def _retry_later(self, client_id: str, seconds: float) -> None:
        self.sent_on.pop(client_id, None)
        loop = asyncio.get_running_loop()
        loop.call_later(max(seconds, 0.1), lambda: loop.create_task(self._send_pending()))

    @staticmethod
    def _history_frame(conversation: Conversation, **fields: int) -> dict:
        where = "room" if conversation.kind == "room" else "with"
        return {"type": "history", where: conversation.name, **fields}

    # ---- frames from the server ----------------------------------------------------------

    async def _on_hello(self, frame: dict) -> None:
        first = self.state.apply_hello(frame)
        came, went = self.state.set_online(frame.get("online"))
        self.ready = True
        if first:
            self.emit(StatusEvent(f"connected as {self.state.me}", True))
            self.emit(OnlineEvent(tuple(self.state.online)))
            self.greeted.set()
        else:
            self.emit(StatusEvent("reconnected", True))
            # Who came and went while we were away, as the live frames would have said.
            for user in came:
                self.emit(PresenceEvent(user, True))
            for user in went:
                self.emit(PresenceEvent(user, False))
            await self._send({"type": "sync", **self.state.begin_sync()})
        await self._send_pending()
        # Histories asked on the old socket were lost with it.
        for conversation in self.history_wanted:
            await self._send(self._history_frame(conversation, limit=HISTORY_ON_JOIN))

    def _file(self, message: dict, *, live: bool = False) -> int | None:
        """Files one message, reports it if it is news; returns the seq after a gap, if any."""
        if not isinstance(message, dict):
            return None
        filed = self.state.file(message, live=live)
        if message.get("from") == self.state.me:
            self._settle(message.get("client_id"))  # our own message came back: it is stored
        if filed.added or filed.changed:
            self.emit(MessageEvent(message, changed=filed.changed))
        return filed.gap_after

    async def _on_message(self, frame: dict) -> None:
        gap_after = self._file(frame, live=True)
        if gap_after is not None:
            # The live path dropped something: fetch what lies between.
            conversation = self._conversation_of(frame)
            if conversation is not None:
                self.gaps.add(conversation)
                await self._send(self._history_frame(conversation, after=gap_after, limit=GAP_PAGE))

    def _conversation_of(self, frame: dict) -> Conversation | None:
        if isinstance(frame.get("room"), str):
            return Conversation("room", frame["room"])
        other = frame.get("with")
        if isinstance(other, str):
            return Conversation("dm", other)
        return conversation_of(frame, self.state.me)

    async def _on_ack(self, frame: dict) -> None:
        self._settle(frame.get("client_id"))

    async def _on_history(self, frame: dict) -> None:
        conversation = self._conversation_of(frame)
        self.history_wanted.discard(conversation)
        messages = frame.get("messages") if isinstance(frame.get("messages"), list) else []
        for message in messages:
            self._file(message)
        if conversation in self.gaps:
            seqs = [
                m["seq"] for m in messages if isinstance(m, dict) and isinstance(m.get("seq"), int)
            ]
            if frame.get("has_more") is True and seqs:
                await self._send(self._history_frame(conversation, after=max(seqs), limit=GAP_PAGE))
            else:
                self.gaps.discard(conversation)

    async def _on_sync(self, frame: dict) -> None:
        messages = frame.get("messages") if isinstance(frame.get("messages"), list) else []
        for message in messages:
            self._file(message)
        following = self.state.sync_answered(frame)
        if following is not None:
            await self._send({"type": "sync", **following})

    async def _on_presence(self, frame: dict) -> None:
        user, online = frame.get("user"), frame.get("online")
        if not isinstance(user, str) or not isinstance(online, bool) or user == self.state.me:
            return
        if self.state.set_presence(user, online):
            self.emit(PresenceEvent(user, online))

    async def _on_presence_batch(self, frame: dict) -> None:
        # A window's changes in one frame (the socket asks for them, as the page does).
        for user, online in self.state.apply_presence_batch(frame):
            self.emit(PresenceEvent(user, online))

    async def _on_users(self, frame: dict) -> None:
        if self.who_asked > 0:
            self.who_asked -= 1
            self.state.set_online(frame.get("online"))
            self.emit(OnlineEvent(tuple(self.state.online)))
            return
        # Unasked: a burst of presence changes sent as the whole list.
        came, went = self.state.set_online(frame.get("online"))
        for user in came:
            self.emit(PresenceEvent(user, True))
        for user in went:
            self.emit(PresenceEvent(user, False))

    async def _on_rooms(self, frame: dict) -> None:
        rooms = frame.get("rooms")
        if isinstance(rooms, list):
            self.state.rooms = [room for room in rooms if isinstance(room, str)]
            self.emit(RoomsEvent(tuple(self.state.rooms)))

    async def _on_error(self, frame: dict) -> None:
        code = str(frame.get("code", "error"))
        detail = str(frame.get("detail", ""))
        client_id = frame.get("client_id")
        if isinstance(client_id, str) and client_id in self.pending:
            if code == "rate_limited":
                retry_after = frame.get("retry_after")
                seconds = float(retry_after) if isinstance(retry_after, int | float) else 1.0
                self.emit(ErrorEvent(code, f"{detail} (sending again in {seconds:g} s)"))
                self._retry_later(client_id, seconds)
                return
            if code == "unavailable":
                # Nothing was stored: the same client_id is safe to send again.
                self._retry_later(client_id, UNAVAILABLE_RETRY_SECONDS)
                return
            self.refused += 1
            self._settle(client_id)
        if code in {"unknown_room", "unknown_user"}:
            # Such an error cannot say which history it answers: stop asking again.
            kind = "room" if code == "unknown_room" else "dm"
            self.history_wanted = {c for c in self.history_wanted if c.kind != kind}
        self.emit(ErrorEvent(code, detail))
