"""Shared fixtures: users, logged-in sockets, and a clean slate of in-process state.

With CHAT_TEST_REDIS=1 the whole suite runs in Redis mode: channel layer, presence
and rate limits live in a private redis-server started for the session.
"""

import json
import os
from collections.abc import Callable

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.test import Client

from chat import loop_db
from chat.presence import reset_presence
from chat.ratelimit import reset_rate_limits

PASSWORD = "a-long-enough-passphrase-42"
ORIGIN = b"http://127.0.0.1"
# The Host a browser on ORIGIN sends: the handshake trusts the site's own origin by it.
HOST = ORIGIN.partition(b"://")[2]
REDIS_MODE = os.environ.get("CHAT_TEST_REDIS") == "1"


def redis_url_of(executor) -> str:
    """The URL of a pytest-redis server."""
    return f"redis://{executor.host}:{executor.port}/0"


def redis_settings(url: str) -> dict:
    """The settings that put a process in Redis mode on `url`."""
    return {
        "REDIS_URL": url,
        "CHANNEL_LAYERS": {
            "default": {
                "BACKEND": "chat.realtime.layers.ChatPubSubLayer",
                "CONFIG": {"hosts": [{"address": url, "socket_timeout": 30}]},
            }
        },
    }


@pytest.fixture(scope="session")
def suite_redis_url(request):
    """The private Redis of this session in Redis mode, else None."""
    if not REDIS_MODE:
        return None
    return redis_url_of(request.getfixturevalue("redis_proc"))


@pytest.fixture(autouse=True)
def _fresh_process_state(request, suite_redis_url):
    """Gives every test an empty channel layer, presence store and rate limiter, and
    closes the PostgreSQL connections its event loops kept (chat/loop_db.py)."""
    if suite_redis_url:
        # The session's own private Redis: emptied between tests, never anyone else's.
        redis.Redis.from_url(suite_redis_url).flushdb()
        settings = request.getfixturevalue("settings")
        for name, value in redis_settings(suite_redis_url).items():
            setattr(settings, name, value)
    channel_layers.backends.clear()
    reset_presence()
    reset_rate_limits()
    yield
    channel_layers.backends.clear()
    reset_presence()
    reset_rate_limits()
    loop_db.close_all()


@pytest.fixture
def make_user(django_user_model):
    """Creates a user with the shared test password."""

    def make(username: str, **extra):
        return django_user_model.objects.create_user(username=username, password=PASSWORD, **extra)

    return make


def login_client(user) -> Client:
    """Returns a Django test client logged in as `user`."""
    client = Client()
    client.force_login(user)
    return client


class Socket:
    """A test client of /ws/chat/ that speaks JSON frames."""

    def __init__(self, communicator: WebsocketCommunicator, client: Client):
        self.communicator = communicator
        self.client = client
        self.hello: dict | None = None

    async def send(self, frame: dict) -> None:
        """Sends one JSON frame."""
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def send_text(self, text: str) -> None:
        """Sends raw text, valid or not."""
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 3) -> dict:
        """Receives the next frame as a dict."""
        return json.loads(await self.communicator.receive_from(timeout=timeout))

    async def receive_type(
        self, kind: str, timeout: float = 3, skip: tuple[str, ...] = ("presence", "users")
    ) -> dict:
        """Receives frames until one of type `kind`, skipping the types in `skip`."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] == kind:
                return frame
            if frame["type"] not in skip:
                raise AssertionError(f"expected a {kind} frame, got {frame}")

    async def ask(self, frame: dict, kind: str | None = None) -> dict:
        """Sends a frame and returns the answer of type `kind` (default: the frame's type)."""
        await self.send(frame)
        return await self.receive_type(kind or frame["type"])

    async def receive_until(
        self, kind: str, match: Callable[[dict], bool] | None = None, timeout: float = 3
    ) -> tuple[list[dict], dict]:
        """Receives frames up to the first `kind` frame `match` accepts; returns (earlier, it).

        This is how a test shows that a frame did NOT arrive: cause a later event that
        certainly reaches this socket after the unwanted frame would have, wait for
        it, and check `earlier`. Waiting a while for silence proves nothing on a busy
        machine.
        """
        earlier = []
        while True:
            frame = await self.receive(timeout)
            if frame["type"] == kind and (match is None or match(frame)):
                return earlier, frame
            earlier.append(frame)

    async def close(self) -> None:
        """Closes the socket from the client side and waits until the server let it go."""
        # Generous: on a busy machine the server's cleanup (groups, presence) can take
        # over a second, and giving up cancels it halfway.
        await self.communicator.disconnect(timeout=10)


async def open_socket(user=None, *, client: Client | None = None, origin: bytes = ORIGIN):
    """Opens /ws/chat/ as `user` (or with a given client's session); returns (connected, socket)."""
    from chatsite.asgi import application

    if client is None:
        client = await sync_to_async(login_client)(user) if user is not None else Client()
    headers = [(b"host", HOST)] + ([(b"origin", origin)] if origin else [])
    session = client.cookies.get("sessionid")
    if session is not None:
        headers.append((b"cookie", f"sessionid={session.value}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return connected, code, Socket(communicator, client)


@pytest.fixture
async def connect():
    """Opens logged-in sockets (hello already read) and disconnects them at the end."""
    opened: list[Socket] = []

    async def _connect(user=None, *, client: Client | None = None, hello: bool = True) -> Socket:
        connected, code, socket = await open_socket(user, client=client)
        assert connected, f"handshake refused ({code})"
        opened.append(socket)
        if hello:
            socket.hello = await socket.receive_type("hello")
        return socket

    yield _connect
    for socket in opened:
        await socket.close()


def _server_database():
    from tests.server import Database, base_env

    database = Database()
    database.migrate(base_env())
    yield database
    database.drop()


@pytest.fixture(scope="session")
def site_database():
    """A migrated database of its own for the real server processes of this session."""
    yield from _server_database()


@pytest.fixture(scope="module")
def database():
    """A migrated database for the server processes of one test module."""
    yield from _server_database()


@pytest.fixture(scope="session")
def site_server(site_database, suite_redis_url):
    """One real server process (`python -m chatsite.server`) for the whole session."""
    from tests.server import ServerProcess

    extra = {"REDIS_URL": suite_redis_url} if suite_redis_url else {}
    server = ServerProcess(site_database, **extra).start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _release_test_database(django_db_setup, django_db_blocker):
    """Ends leftover connections of worker threads so the test database can be dropped."""
    yield
    from django.db import OperationalError, connection

    if connection.vendor != "postgresql":
        return
    try:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    except OperationalError:
        # No test used the database, so it was never created: nothing to release.
        return


@pytest.fixture
def fast_passwords(settings):
    """Hashes passwords cheaply, for tests about something else than hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def media(settings, tmp_path):
    """A file storage of the test's own, so what was stored can be checked on disk."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
