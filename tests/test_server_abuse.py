"""Abuse against real server processes (`python -m chatsite.server`): a flood spread
over two processes, a client that stops answering pings, password guessing over
HTTP, and what the processes' logs keep of it all.
"""

import asyncio
import socket
import time
import uuid

import pytest
import websockets
from pytest_redis import factories

from tests.conftest import redis_url_of
from tests.server import Browser, ChatClient, Database, ServerProcess, base_env, raw_chat_socket

pytestmark = pytest.mark.server

LIMIT = 5
PING_INTERVAL, PING_TIMEOUT = 1, 2
abuse_redis = factories.redis_proc(port=None)


@pytest.fixture(scope="module")
def pair(abuse_redis):
    """Two processes on one Redis and one database, with a small rate limit and fast pings."""
    database = Database()
    database.migrate(base_env())
    env = {
        "REDIS_URL": redis_url_of(abuse_redis),
        "CHAT_RATE_LIMIT": f"{LIMIT}/60s",
        "CHAT_LOGIN_FAILURE_LIMIT": "3",
        "CHAT_LOG_LEVEL": "DEBUG",
    }
    args = ("--ping-interval", str(PING_INTERVAL), "--ping-timeout", str(PING_TIMEOUT))
    servers = [ServerProcess(database, args=args, **env).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()
    database.drop()


def _signup(server: ServerProcess, prefix: str) -> tuple[str, str]:
    name = f"{prefix}{uuid.uuid4().hex[:6]}"
    return name, Browser(server.url).signup(name)


async def _answers(client: ChatClient, count: int) -> list[dict]:
    """Reads frames until `count` acks or errors came; skips broadcasts."""
    got = []
    while len(got) < count:
        frame = await client.receive(10)
        if frame["type"] in ("ack", "error"):
            got.append(frame)
    return got


# --- Flood across processes ------------------------------------------------------


def test_flood_over_two_processes_stores_exactly_the_limit(pair):
    a, b = pair
    alice, session = _signup(a, "flood")
    marker = uuid.uuid4().hex[:8]

    async def scenario():
        tabs = [await ChatClient(server, session).open() for server in (a, a, b, b)]
        per_tab = 12
        await asyncio.gather(
            *(
                tab.send(
                    {
                        "type": "send",
                        "room": "general",
                        "body": f"{marker} {t}-{n}",
                        "client_id": f"{marker}-{t}-{n}",
                    }
                )
                for t, tab in enumerate(tabs)
                for n in range(per_tab)
            )
        )
        replies = [r for tab in tabs for r in await _answers(tab, per_tab)]
        # Every socket is still open and answers.
        for tab in tabs:
            await tab.send({"type": "ping"})
            await tab.receive_type("pong", skip=("presence", "users", "message"))
        await tabs[0].send({"type": "history", "room": "general", "limit": 100})
        history = await tabs[0].receive_type("history", skip=("presence", "users", "message"))
        for tab in tabs:
            await tab.close()
        return replies, history

    replies, history = asyncio.run(scenario())
    acks = [r for r in replies if r["type"] == "ack"]
    refused = [r for r in replies if r["type"] == "error"]
    assert len(acks) == LIMIT
    assert {r["code"] for r in refused} == {"rate_limited"}
    assert len(refused) == 4 * 12 - LIMIT
    stored = [m for m in history["messages"] if m["body"].startswith(marker)]
    assert sorted(m["client_id"] for m in stored) == sorted(a["client_id"] for a in acks)
    assert all(m["from"] == alice for m in stored)


# --- Pings: dead clients are dropped, live ones kept -----------------------------


def _silent_until_dropped(raw: socket.socket, timeout: float) -> tuple[set[int], float | None]:
    """Reads (never answers) until the server drops the connection.

    Returns the opcodes of the frames seen and the seconds until the drop (None: no drop).
    """
    start = time.monotonic()
    buffer, opcodes = b"", set()
    raw.settimeout(0.5)
    while time.monotonic() - start < timeout:
        try:
            chunk = raw.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return opcodes, time.monotonic() - start
        if not chunk:
            return opcodes, time.monotonic() - start
        buffer += chunk
        # Server frames are unmasked: opcode, then a 7-, 16- or 64-bit length.
        while len(buffer) >= 2:
            length, offset = buffer[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                length, offset = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < offset + length:
                break
            opcodes.add(buffer[0] & 0x0F)
            buffer = buffer[offset + length :]
    return opcodes, None


async def _until_presence(client: ChatClient, user: str, online: bool, timeout: float) -> float:
    """Waits until `client` hears that `user` came online or went offline; returns the seconds."""
    start = time.monotonic()
    while True:
        frame = await client.receive(max(timeout - (time.monotonic() - start), 0.01))
        heard = (frame["type"], frame.get("user"), frame.get("online"))
        if heard == ("presence", user, online) or (
            frame["type"] == "users" and (user in frame["online"]) == online
        ):
            return time.monotonic() - start


def test_client_that_stops_answering_pings_is_dropped_and_goes_offline(pair):
    a, b = pair
    silent_name, silent_session = _signup(a, "silent")
    _, observer_session = _signup(b, "observer")

    async def scenario():
        observer = await ChatClient(b, observer_session).open()
        raw = await asyncio.to_thread(raw_chat_socket, a, silent_session)
        try:
            await _until_presence(observer, silent_name, True, timeout=5)
            silence = asyncio.create_task(asyncio.to_thread(_silent_until_dropped, raw, 15))
            offline_after = await _until_presence(observer, silent_name, False, timeout=15)
            opcodes, dropped_after = await silence
        finally:
            raw.close()
            await observer.close()
        return opcodes, dropped_after, offline_after

    opcodes, dropped_after, offline_after = asyncio.run(scenario())
    assert 0x9 in opcodes, "the server pinged"
    assert dropped_after is not None, "a client that never answers pings is dropped"
    # interval + timeout, plus daphne's 2 s check period and some slack
    assert dropped_after < PING_INTERVAL + PING_TIMEOUT + 5
    assert offline_after < PING_INTERVAL + PING_TIMEOUT + 6


def test_client_that_answers_pings_stays_connected_while_idle(pair):
    a, _ = pair
    _, session = _signup(a, "idle")

    async def scenario():
        # websockets answers pings by itself; it sends none of its own here.
        client = ChatClient(a, session)
        client.ws = await websockets.connect(
            a.ws_url,
            origin=a.url,
            additional_headers={"Cookie": f"sessionid={session}"},
            ping_interval=None,
        )
        await client.receive_type("hello")
        await asyncio.sleep(3 * (PING_INTERVAL + PING_TIMEOUT))
        await client.send({"type": "ping"})
        pong = await client.receive_type("pong", skip=("presence", "users", "message"))
        await client.close()
        return pong

    assert asyncio.run(scenario()) == {"type": "pong"}


# --- Password guessing over HTTP (django-axes behind daphne's async stack) -------


def _log_in(server: ServerProcess, username: str, password: str):
    return Browser(server.url).post_form(
        "/accounts/login/", {"username": username, "password": password}
    )


def test_login_lockout_answers_429_on_the_real_server(pair):
    a, b = pair
    name, _ = _signup(a, "guessed")
    statuses = [_log_in(a, name, f"wrong-{n}")[0] for n in range(3)]
    assert statuses == [200, 200, 429]
    status, headers, body = _log_in(b, name, "a-long-enough-passphrase-42")
    assert status == 429
    assert "Too many failed log-ins" in body
    assert int(headers["Retry-After"]) > 0
    assert "script-src 'self'" in headers["Content-Security-Policy"]


# --- Logs ---------------------------------------------------------------------------


def test_server_logs_show_connects_refusals_and_lockouts_but_never_a_body(pair):
    a, b = pair
    name, session = _signup(a, "logged")
    secret = f"private-{uuid.uuid4().hex}"

    async def chat():
        client = await ChatClient(a, session).open()
        for n in range(LIMIT + 2):
            body = f"{secret} {n}" if n != 2 else secret * 400  # one too long
            await client.send(
                {"type": "send", "room": "general", "body": body, "client_id": f"l{n}"}
            )
        await _answers(client, LIMIT + 2)
        await client.send({"type": "send", "to": name, "body": f"dm {secret}", "client_id": "x"})
        await client.ws.send(f"not json {secret}")
        await client.receive_type("error", skip=("presence", "users", "message"))
        await client.close()

    asyncio.run(chat())
    for n in range(3):
        _log_in(b, name, f"{secret}-{n}")  # wrong passwords carrying the secret
    # The last lines each process writes about this user: whatever else it logged of
    # the socket's frames or of the log-ins came before them.
    logs = _logs_once_they_hold(
        [a, b], [f"socket closed: user={name}", f"login locked out: username='{name}'"]
    )
    assert secret not in logs
    assert f"socket opened: user={name}" in logs
    assert f"rate limited: user={name}" in logs


def _logs_once_they_hold(servers: list[ServerProcess], lines: list[str]) -> str:
    """Waits until the servers' output holds every one of `lines`; returns that output."""
    deadline = time.monotonic() + 15
    while True:
        logs = "".join(server.output() for server in servers)
        missing = [line for line in lines if line not in logs]
        if not missing:
            return logs
        assert time.monotonic() < deadline, f"never logged: {missing}"
        time.sleep(0.1)
