"""Real server processes for tests: `python -m chatsite.server` on a free port.

Each test session gets its own database (a temporary SQLite file, or a fresh
PostgreSQL database when DATABASE_URL names one) that is removed afterwards.
"""

import base64
import contextlib
import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a-long-enough-passphrase-42"


def free_port() -> int:
    """Returns a TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Database:
    """A throwaway database for server processes, SQLite or PostgreSQL."""

    def __init__(self) -> None:
        base = os.environ.get("DATABASE_URL", "")
        self._pg_admin = None
        if base.startswith(("postgres://", "postgresql://")):
            parsed = urllib.parse.urlsplit(base)
            self.name = f"chat_srv_{uuid.uuid4().hex[:12]}"
            self.url = urllib.parse.urlunsplit(parsed._replace(path=f"/{self.name}"))
            self._pg_admin = urllib.parse.urlunsplit(parsed._replace(path="/postgres"))
            self._pg("CREATE DATABASE {}")
        else:
            self._dir = tempfile.TemporaryDirectory(prefix="chat-srv-")
            self.url = f"sqlite:///{self._dir.name}/db.sqlite3"

    def _pg(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self._pg_admin, autocommit=True) as conn:
            conn.execute(statement.format(self.name))

    def migrate(self, env: dict) -> None:
        """Creates the schema."""
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env={**env, "DATABASE_URL": self.url},
            check=True,
        )

    def drop(self) -> None:
        """Removes the database."""
        if self._pg_admin:
            self._pg("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        else:
            self._dir.cleanup()


# Uploads of the run's server processes: one private directory, shared by the
# processes of a test as the deployment's volume is, never the checkout's media/.
MEDIA_ROOT = tempfile.mkdtemp(prefix="chat-server-media-")


def base_env(**extra: str) -> dict:
    """The environment of a server process: production-like, rate limits off unless given."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL"}
    }
    env.update(
        {
            "SECRET_KEY": "server-test-secret-key",
            "DEBUG": "0",
            # The tests talk to the process itself over plain HTTP.
            "CHAT_PLAIN_HTTP": "1",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CHAT_RATE_LIMIT": "off",
            # Counted (the code runs) but never reached by the suite's sign-ups.
            "CHAT_SIGNUP_RATE_LIMIT": "100000/3600s",
            "PYTHONUNBUFFERED": "1",
            "MEDIA_ROOT": MEDIA_ROOT,
        }
    )
    env.update(extra)
    return env


class ServerProcess:
    """One `python -m chatsite.server` process; its output goes to a log file."""

    def __init__(self, database: Database, *, args: tuple[str, ...] = (), **env: str) -> None:
        self.args = args  # extra daphne options, e.g. ("--ping-interval", "1")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/chat/"
        self.env = base_env(DATABASE_URL=database.url, PORT=str(self.port), **env)
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - open for the process lifetime
            prefix="chat-server-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20) -> "ServerProcess":
        """Starts the process and waits until /healthz answers."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chatsite.server", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(self.url + "/healthz", timeout=1),
            ):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stops the process with `sig` (SIGKILL simulates a crash)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        """Returns what the process printed so far."""
        return Path(self.log.name).read_text(errors="replace")


class Browser:
    """A plain HTTP client with cookies, for signing up and logging in without a browser."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def cookie(self, name: str) -> str | None:
        """Returns a cookie's value."""
        return next((c.value for c in self.jar if c.name == name), None)

    def get(self, path: str):
        """GETs a page; returns (status, headers, body)."""
        return self._open(urllib.request.Request(self.base_url + path))

    def post_form(self, path: str, fields: dict, *, token_from: str | None = None):
        """POSTs a form with the CSRF token taken from the page; returns (status, headers, body)."""
        _, _, page = self.get(token_from or path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        data = dict(fields)
        if token:
            data["csrfmiddlewaretoken"] = token[1]
        request = urllib.request.Request(
            self.base_url + path,
            data=urllib.parse.urlencode(data).encode(),
            headers={"Referer": self.base_url + path, "Origin": self.base_url},
        )
        return self._open(request)

    def signup(self, username: str, password: str = PASSWORD) -> str:
        """Signs up (which logs in) and returns the session cookie."""
        status, _, body = self.post_form(
            "/accounts/signup/",
            {"username": username, "password1": password, "password2": password},
        )
        assert status == 302, f"signup failed ({status}): {body[:500]}"
        return self.cookie("sessionid")

    def logout(self):
        """POSTs logout with the CSRF token, as the page's button does."""
        return self.post_form("/accounts/logout/", {}, token_from="/accounts/login/")

    def _open(self, request):
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class ChatClient:
    """A websocket client of a real server, speaking JSON frames."""

    def __init__(self, server: "ServerProcess", session: str) -> None:
        self.server = server
        self.session = session
        self.ws = None
        self.hello: dict | None = None

    async def open(self) -> "ChatClient":
        """Connects and reads `hello`."""
        import websockets

        self.ws = await websockets.connect(
            self.server.ws_url,
            origin=self.server.url,
            additional_headers={"Cookie": f"sessionid={self.session}"},
            open_timeout=10,
            max_size=None,
        )
        self.hello = await self.receive_type("hello")
        return self

    async def send(self, frame: dict) -> None:
        """Sends one frame."""
        import json

        await self.ws.send(json.dumps(frame))

    async def receive(self, timeout: float = 5) -> dict:
        """Receives the next frame."""
        import asyncio
        import json

        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def receive_type(self, kind: str, timeout: float = 5, skip=("presence", "users")) -> dict:
        """Receives frames until one of type `kind`, skipping the types in `skip`."""
        while True:
            frame = await self.receive(timeout)
            if frame["type"] == kind:
                return frame
            if frame["type"] not in skip:
                raise AssertionError(f"expected {kind}, got {frame}")

    async def close(self) -> None:
        """Closes the socket."""
        if self.ws is not None:
            await self.ws.close()


def raw_chat_socket(
    server: ServerProcess, session: str, *, receive_buffer: int | None = None
) -> socket.socket:
    """Opens /ws/chat/ over a plain TCP socket, handshake done and nothing after it read.

    `receive_buffer` sets SO_RCVBUF before connecting (so the advertised window
    stays small): a client that reads slowly, or not at all.
    """
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    raw.settimeout(10)
    raw.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            "GET /ws/chat/ HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {server.url}\r\nCookie: sessionid={session}\r\n\r\n"
        ).encode()
    )
    # Byte by byte, so that no frame after the response is read along with it.
    response = b""
    while b"\r\n\r\n" not in response:
        response += raw.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return raw
