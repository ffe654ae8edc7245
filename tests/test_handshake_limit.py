"""Handshakes beyond CHAT_MAX_HANDSHAKES under way are refused at once, before any work."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chat.handshake_limit import HandshakeLimit, handshake_done
from chatsite import asgi
from tests.conftest import open_socket

socket_tests = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class Handshake:
    """One websocket connection driven straight through an ASGI application."""

    def __init__(self, app, *, denial_response: bool = True) -> None:
        extensions = {"websocket.http.response": {}} if denial_response else {}
        self.scope = {"type": "websocket", "path": "/ws/chat/", "extensions": extensions}
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.sent: list[dict] = []
        self.answered = asyncio.Event()
        self.incoming.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.ensure_future(app(self.scope, self.incoming.get, self._send))

    async def _send(self, message: dict) -> None:
        self.sent.append(message)
        self.answered.set()

    async def answer(self) -> list[dict]:
        await asyncio.wait_for(self.answered.wait(), 5)
        return self.sent

    async def end(self) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, 5)


def slow_site(work: asyncio.Event):
    """A site whose handshakes take until `work` is set, then accept."""

    async def app(scope, receive, send):
        await receive()
        await work.wait()
        await send({"type": "websocket.accept"})
        handshake_done(scope)
        await receive()  # until the client leaves

    return app


async def test_handshakes_beyond_the_limit_get_503_at_once_and_slots_come_back(settings):
    settings.CHAT_MAX_HANDSHAKES = 2
    work = asyncio.Event()
    limited = HandshakeLimit(slow_site(work))
    first, second = Handshake(limited), Handshake(limited)
    await asyncio.sleep(0)  # both are under way, waiting for their work
    assert limited.under_way == 2

    refused = await Handshake(limited).answer()
    assert refused[0]["type"] == "websocket.http.response.start"
    assert refused[0]["status"] == 503
    assert (b"retry-after", b"1") in refused[0]["headers"]
    assert refused[1]["type"] == "websocket.http.response.body"
    # A server that cannot send a response to a handshake refuses it plainly.
    plain = await Handshake(limited, denial_response=False).answer()
    assert plain == [{"type": "websocket.close"}]

    work.set()
    assert [m["type"] for m in await first.answer()] == ["websocket.accept"]
    assert [m["type"] for m in await second.answer()] == ["websocket.accept"]
    assert limited.under_way == 0  # accepted sockets hold no slot while open
    third = Handshake(limited)
    assert [m["type"] for m in await third.answer()] == ["websocket.accept"]
    for handshake in (first, second, third):
        await handshake.end()
    assert limited.under_way == 0


async def test_a_handshake_that_fails_gives_its_slot_back(settings):
    settings.CHAT_MAX_HANDSHAKES = 1

    async def broken(scope, receive, send):
        await receive()
        raise RuntimeError("the handshake's work failed")

    limited = HandshakeLimit(broken)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            await Handshake(limited).task
    assert limited.under_way == 0


@socket_tests
async def test_the_site_gives_each_handshake_slot_back_once_the_socket_is_open(settings, make_user):
    settings.CHAT_MAX_HANDSHAKES = 1
    users = [await sync_to_async(make_user)(name) for name in ("ann", "ben", "cat")]
    opened = []
    for user in users:  # one at a time: each must find the one slot free again
        connected, code, socket = await open_socket(user)
        assert connected, f"handshake refused ({code})"
        opened.append(socket)
        assert (await socket.receive_type("hello"))["user"] == user.username
    limit = asgi.application.application_mapping["websocket"]
    assert limit.under_way == 0
    # Refused before any work, an anonymous handshake gives its slot back too.
    connected, _, _ = await open_socket(None)
    assert not connected and limit.under_way == 0
    for socket in opened:
        await socket.close()
