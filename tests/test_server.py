"""The real server process, under each supported server (uvicorn, the default, and
daphne): health check, handshake refusals, frame size, a message, logout."""

import asyncio
import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
import websockets

from tests.conftest import REDIS_MODE
from tests.server import ROOT, Browser, ServerProcess, base_env, raw_chat_socket

pytestmark = pytest.mark.server


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def server(request, site_database, suite_redis_url):
    """The session's server (uvicorn, the default), and one started with CHAT_SERVER=daphne."""
    if request.param == "uvicorn":
        yield request.getfixturevalue("site_server")
        return
    extra = {"REDIS_URL": suite_redis_url} if suite_redis_url else {}
    daphne = ServerProcess(site_database, CHAT_SERVER="daphne", **extra).start()
    yield daphne
    daphne.stop()


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def _ws(server, session: str | None, origin: str | None = None, *, send_origin: bool = True):
    headers = {}
    if session:
        headers["Cookie"] = f"sessionid={session}"
    return websockets.connect(
        server.ws_url,
        origin=(origin or server.url) if send_origin else None,
        additional_headers=headers,
        max_size=None,
        open_timeout=5,
    )


def _refusal(server, session: str | None, origin: str | None = None, **options) -> int:
    """Tries a handshake that must be refused; returns the HTTP status of the refusal."""

    async def attempt():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with _ws(server, session, origin, **options):
                pass
        return refused.value.response.status_code

    return asyncio.run(attempt())


def _raw_handshake_status(server, path: str, headers: list[tuple[str, str]]) -> int:
    """Sends a websocket handshake with exactly these extra headers; returns the status."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers),
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        raw.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        response = b""
        while b"\r\n" not in response:
            chunk = raw.recv(4096)
            if not chunk:
                break
            response += chunk
    return int(response.split(b" ", 2)[1])


def test_healthz_reports_database_and_redis(server):
    with urllib.request.urlopen(server.url + "/healthz") as response:
        assert response.status == 200
        assert json.load(response) == {
            "status": "ok",
            "database": "ok",
            "redis": "ok" if REDIS_MODE else "off",
        }


def test_anonymous_handshake_gets_403(server):
    assert _refusal(server, None) == 403


def test_foreign_origin_gets_403(server):
    session = Browser(server.url).signup(_name("origin"))
    assert _refusal(server, session, origin="http://evil.example") == 403


def test_a_page_on_another_port_of_the_same_host_gets_403(server):
    # Cross-site websocket hijacking from another site served on the same machine.
    session = Browser(server.url).signup(_name("port"))
    assert _refusal(server, session, origin=f"http://127.0.0.1:{server.port + 1}") == 403


def test_the_https_origin_of_a_plain_http_site_gets_403(server):
    session = Browser(server.url).signup(_name("scheme"))
    assert _refusal(server, session, origin=f"https://127.0.0.1:{server.port}") == 403


def test_a_handshake_without_origin_gets_403(server):
    session = Browser(server.url).signup(_name("noorigin"))
    assert _refusal(server, session, send_origin=False) == 403


def test_the_sites_own_origin_opens_a_socket(server):
    session = Browser(server.url).signup(_name("own"))

    async def attempt():
        async with _ws(server, session, origin=server.url) as ws:
            return json.loads(await ws.recv())["type"]

    assert asyncio.run(attempt()) == "hello"


def test_unknown_paths_and_malformed_handshakes_are_refused_without_a_traceback(server):
    session = Browser(server.url).signup(_name("odd"))
    own, cookie = ("Origin", server.url), ("Cookie", f"sessionid={session}")
    unknown_paths = {
        "unknown path": ("/ws/anything", [own, cookie]),
        "unknown path, no login": ("/ws/anything", [own]),
        "unknown path with a query": ("/ws/anything?x=%ff&next=/ws/chat/", [own, cookie]),
        "below the chat path": ("/ws/chat/extra/", [own, cookie]),
    }
    malformed = {
        "origin port not a number": ("/ws/chat/", [("Origin", "http://127.0.0.1:x"), cookie]),
        "origin port out of range": ("/ws/chat/", [("Origin", "http://127.0.0.1:99999"), cookie]),
        "origin with a broken IPv6 host": ("/ws/chat/", [("Origin", "http://[::1"), cookie]),
        "origin with a path": ("/ws/chat/", [("Origin", server.url + "/ws/chat/"), cookie]),
        "origin not ASCII": ("/ws/chat/", [("Origin", server.url + "\xff"), cookie]),
        "origin twice": ("/ws/chat/", [("Origin", "http://evil.example"), own, cookie]),
        "garbage cookie": ("/ws/chat/", [own, ("Cookie", 'sessionid; =;;"x\xff')]),
    }
    logged_before = len(server.output())
    statuses = {
        name: _raw_handshake_status(server, path, headers)
        for name, (path, headers) in {**unknown_paths, **malformed}.items()
    }
    assert {name: statuses[name] for name in unknown_paths} == dict.fromkeys(unknown_paths, 403)
    # The server's own websocket layer may refuse some malformed headers first (400).
    assert {name: statuses[name] in (400, 403) for name in malformed} == dict.fromkeys(
        malformed, True
    ), statuses
    log = server.output()[logged_before:]
    assert "Traceback" not in log
    assert "Internal Server Error" not in log


def test_frame_over_64_kib_closes_with_1009(server):
    session = Browser(server.url).signup(_name("big"))

    async def attempt():
        async with _ws(server, session) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            # Just under the limit: an answer (the body is too long), socket still open.
            near = json.dumps(
                {"type": "send", "room": "general", "client_id": "n1", "body": "x" * (60 * 1024)}
            )
            await ws.send(near)
            answer = json.loads(await ws.recv())
            assert (answer["type"], answer["code"]) == ("error", "too_long")
            await ws.send("x" * (64 * 1024 + 1))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert asyncio.run(attempt()) == 1009


def _recv_exactly(raw: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = raw.recv(count - len(data))
        assert chunk, f"the server closed after {len(data)} of {count} bytes"
        data += chunk
    return data


def _server_frame(raw: socket.socket) -> tuple[int, bytes]:
    """Reads one (unmasked) frame the server sent; returns its opcode and payload."""
    first, second = _recv_exactly(raw, 2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(_recv_exactly(raw, 2), "big")
    elif length == 127:
        length = int.from_bytes(_recv_exactly(raw, 8), "big")
    return first & 0x0F, _recv_exactly(raw, length)


def _tcp_state(raw: socket.socket) -> int:
    """The socket's TCP state (Linux's tcp_info.tcpi_state; 7 is CLOSE)."""
    return raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def _masked(payload: bytes, mask: bytes) -> bytes:
    """The payload as a client sends it (RFC 6455, 5.3)."""
    return bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def test_a_refused_frame_closes_in_order_while_the_client_is_still_sending(server):
    """The rest of a refused frame is read and dropped, not answered with a reset.

    A reset (a socket closed with bytes unread) lets a proxy in between drop the
    connection before it passed the 1009 on (tests/test_deploy.py).
    """
    session = Browser(server.url).signup(_name("big"))
    raw = raw_chat_socket(server, session)
    with contextlib.closing(raw):
        # A text frame of 64 KiB + 1 bytes: its head and a first slice.
        size, mask = 64 * 1024 + 1, os.urandom(4)
        payload = _masked(b"x" * size, mask)
        raw.sendall(bytes([0x81, 0x80 | 127]) + size.to_bytes(8, "big") + mask + payload[:100])
        while (frame := _server_frame(raw))[0] != 0x8:
            pass  # the hello and what follows it
        assert int.from_bytes(frame[1][:2], "big") == 1009
        # The rest of the frame was already on its way; then the client answers the close.
        raw.sendall(payload[100:])
        raw.sendall(bytes([0x88, 0x82]) + mask + _masked((1009).to_bytes(2, "big"), mask))
        assert raw.recv(1) == b"", "the server sent more after its close frame"
        raw.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + 10
        while _tcp_state(raw) != 7:
            assert time.monotonic() < deadline, "the connection did not finish closing"
            time.sleep(0.01)
        # A reset (bytes sent to a socket the server had closed) leaves an error here.
        assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


def test_logout_closes_the_sessions_sockets_within_2_s(server):
    browser = Browser(server.url)
    session = browser.signup(_name("leaver"))

    async def attempt():
        async with _ws(server, session) as first, _ws(server, session) as second:
            for ws in (first, second):
                assert json.loads(await ws.recv())["type"] == "hello"
            loop = asyncio.get_running_loop()
            status, _, _ = await loop.run_in_executor(None, browser.logout)
            codes = []
            for ws in (first, second):
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 2)
                codes.append(closed.value.rcvd.code)
            return status, codes

    status, codes = asyncio.run(attempt())
    assert status == 302
    assert codes == [4001, 4001]


def test_a_message_goes_round_trip(server):
    session = Browser(server.url).signup(_name("echo"))

    async def attempt():
        async with _ws(server, session) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            send = {"type": "send", "room": "general", "client_id": "r1", "body": "hi"}
            await ws.send(json.dumps(send))
            got = {}
            while len(got) < 2:  # presence and users frames may come between
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame["type"] in ("ack", "message"):
                    got.setdefault(frame["type"], frame)
            return got["ack"], got["message"]

    ack, message = asyncio.run(attempt())
    assert ack["type"] == "ack" and message["type"] == "message"
    assert (message["body"], message["id"]) == ("hi", ack["id"])


def test_a_history_page_over_64_kib_reaches_the_client(server):
    # The 64 KiB limit is on what clients send; a page of long messages is bigger.
    name = _name("pager")
    session = Browser(server.url).signup(name)

    async def attempt():
        async with _ws(server, session) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            for n in range(20):
                body = f"{n} " + "x" * 3990
                send = {"type": "send", "to": name, "body": body, "client_id": f"p{n}"}
                await ws.send(json.dumps(send))
            acks = 0
            while acks < 20:
                acks += json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ack"
            await ws.send(json.dumps({"type": "history", "with": name, "limit": 20}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["type"] == "history":
                    return frame

    page = asyncio.run(attempt())
    assert len(page["messages"]) == 20
    assert len(json.dumps(page)) > 64 * 1024


def test_frames_sent_together_reach_every_socket_whole_and_in_order(server):
    # Two users' sends that queue up share batches, and a batch's messages can reach
    # a socket in one turn of the server's loop: under uvicorn they are framed once
    # and a socket's frames of one turn written together. Bodies of every
    # frame-length form: one byte of length, two (over 125 bytes), multi-byte text.
    names = [_name("burst"), _name("burst"), _name("reader")]
    sessions = [Browser(server.url).signup(name) for name in names]
    forms = ["short", "ж" * 70, "é" * 200 + "🙂", "y" * 3990]
    bodies = {name: [f"{forms[n % 4]} {n}" for n in range(60)] for name in names[:2]}

    async def attempt():
        async with contextlib.AsyncExitStack() as stack:
            sockets = [await stack.enter_async_context(_ws(server, s)) for s in sessions]
            for ws in sockets:
                assert json.loads(await ws.recv())["type"] == "hello"

            async def send_all(ws, name):
                for n, body in enumerate(bodies[name]):
                    frame = {"type": "send", "room": "general", "client_id": f"b{n}", "body": body}
                    await ws.send(json.dumps(frame))

            async def messages(ws) -> list[tuple[int, str, str]]:
                got = []
                while len(got) < 120:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    if frame["type"] == "message" and frame["from"] in bodies:
                        got.append((frame["id"], frame["from"], frame["body"]))
                return got

            received = asyncio.gather(*(messages(ws) for ws in sockets))
            senders = zip(sockets, names[:2], strict=False)
            await asyncio.gather(*(send_all(ws, name) for ws, name in senders))
            return await received, [ws.protocol.extensions for ws in sockets]

    received, extensions = asyncio.run(attempt())
    for got in received:
        assert [message_id for message_id, _, _ in got] == sorted(m for m, _, _ in got)
        for name, sent in bodies.items():
            assert [body for _, sender, body in got if sender == name] == sent
    if server.env.get("CHAT_SERVER", "uvicorn") == "uvicorn":
        # No compression: one frame's bytes serve every socket.
        assert extensions == [[], [], []]


def test_the_default_server_is_uvicorn_and_daphne_is_chosen_by_name(server):
    banner = {"uvicorn": "Uvicorn running on", "daphne": "Starting server at"}
    chosen = server.env.get("CHAT_SERVER", "uvicorn")
    assert banner[chosen] in server.output()


@pytest.mark.parametrize(
    ("env", "args", "complaint"),
    [
        ({"CHAT_SERVER": "gunicorn"}, (), "CHAT_SERVER must be one of uvicorn, daphne"),
        ({}, ("--verbosity", "2"), "unknown options for uvicorn: --verbosity 2"),
    ],
)
def test_a_wrong_server_choice_is_a_start_up_error(env, args, complaint):
    done = subprocess.run(
        [sys.executable, "-m", "chatsite.server", *args],
        cwd=ROOT,
        env=base_env(PORT="1", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert complaint in done.stderr
