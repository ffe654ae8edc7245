"""Pages through the site's ASGI application: Django's whole chain in one worker thread.

Each move of a request between the event loop and a worker thread waits for a turn
of the loop, which is long while thousands of sockets reconnect; Django's own
handler made 21 such moves for /healthz (chatsite/django_app.py).
"""

import json

import pytest
from asgiref.sync import SyncToAsync, sync_to_async
from asgiref.testing import ApplicationCommunicator

from chat.messaging.store import Send, message_store
from tests.conftest import HOST, login_client

# The app runs in other threads; the room "general" comes from a migration.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


async def _get(path: str, cookie: str | None = None) -> tuple[int, dict, bytes]:
    """GETs `path` from the site's ASGI application; returns status, headers and body."""
    from chatsite.asgi import application

    headers = [(b"host", HOST)] + ([(b"cookie", cookie.encode())] if cookie else [])
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    answer_headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    return start["status"], answer_headers, body


@pytest.fixture
def thread_moves(monkeypatch):
    """Counts the moves from the event loop to a worker thread (asgiref's sync_to_async)."""
    moves = []
    call = SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        moves.append(self.func)
        return await call(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counted)
    return moves


async def test_a_request_moves_to_a_worker_thread_at_most_three_times(thread_moves, settings):
    settings.REDIS_URL = None
    status, headers, body = await _get("/healthz")
    assert status == 200
    assert json.loads(body)["database"] == "ok"
    # Django's middleware ran: the request id and the never-cache headers are there.
    assert len(headers["x-request-id"]) == 32
    assert "no-cache" in headers["cache-control"]
    # request_started's receivers, the whole chain with the view, the response's close.
    assert len(thread_moves) <= 3, [getattr(f, "__qualname__", f) for f in thread_moves]


async def test_a_streamed_download_from_an_async_generator_still_arrives_whole(make_user):
    alice = await sync_to_async(make_user)("alice")
    for n in range(3):
        send = Send(body=f"note {n}", client_id=f"c{n}", room="general")
        await sync_to_async(message_store)(sender=alice, send=send)
    client = await sync_to_async(login_client)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    status, headers, body = await _get("/accounts/export/", cookie=cookie)
    assert status == 200
    assert headers["content-disposition"].startswith("attachment;")
    document = json.loads(body)
    assert document["profile"]["username"] == "alice"
    assert [m["body"] for m in document["messages_sent"]] == ["note 0", "note 1", "note 2"]


async def test_a_page_that_needs_a_login_redirects_through_the_chain():
    status, headers, _ = await _get("/")
    assert status == 302
    assert headers["location"].startswith("/accounts/login/")
