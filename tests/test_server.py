"""The real server process, under each supported server (uvicorn, the default, and
daphne): health check, handshake refusals, frame size, a message, logout."""

import asyncio
import json
import subprocess
import sys
import urllib.request
import uuid

import pytest
import websockets

from tests.conftest import REDIS_MODE
from tests.server import ROOT, Browser, ServerProcess, base_env

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


def _ws(server, session: str | None, origin: str | None = None):
    headers = {}
    if session:
        headers["Cookie"] = f"sessionid={session}"
    return websockets.connect(
        server.ws_url,
        origin=origin if origin is not None else server.url,
        additional_headers=headers,
        max_size=None,
        open_timeout=5,
    )


def test_healthz_reports_database_and_redis(server):
    with urllib.request.urlopen(server.url + "/healthz") as response:
        assert response.status == 200
        assert json.load(response) == {
            "status": "ok",
            "database": "ok",
            "redis": "ok" if REDIS_MODE else "off",
        }


def test_anonymous_handshake_gets_403(server):
    async def attempt():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with _ws(server, None):
                pass
        return refused.value.response.status_code

    assert asyncio.run(attempt()) == 403


def test_foreign_origin_gets_403(server):
    session = Browser(server.url).signup(_name("origin"))

    async def attempt():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with _ws(server, session, origin="http://evil.example"):
                pass
        return refused.value.response.status_code

    assert asyncio.run(attempt()) == 403


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
