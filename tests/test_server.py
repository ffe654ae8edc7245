"""The real server process: health check, handshake refusals, frame size, logout."""

import asyncio
import json
import urllib.request
import uuid

import pytest
import websockets

from tests.conftest import REDIS_MODE
from tests.server import Browser

pytestmark = pytest.mark.server


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


def test_healthz_reports_database_and_redis(site_server):
    with urllib.request.urlopen(site_server.url + "/healthz") as response:
        assert response.status == 200
        assert json.load(response) == {
            "status": "ok",
            "database": "ok",
            "redis": "ok" if REDIS_MODE else "off",
        }


def test_anonymous_handshake_gets_403(site_server):
    async def attempt():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with _ws(site_server, None):
                pass
        return refused.value.response.status_code

    assert asyncio.run(attempt()) == 403


def test_foreign_origin_gets_403(site_server):
    session = Browser(site_server.url).signup(_name("origin"))

    async def attempt():
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with _ws(site_server, session, origin="http://evil.example"):
                pass
        return refused.value.response.status_code

    assert asyncio.run(attempt()) == 403


def test_frame_over_64_kib_closes_with_1009(site_server):
    session = Browser(site_server.url).signup(_name("big"))

    async def attempt():
        async with _ws(site_server, session) as ws:
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


def test_logout_closes_the_sessions_sockets_within_2_s(site_server):
    browser = Browser(site_server.url)
    session = browser.signup(_name("leaver"))

    async def attempt():
        async with _ws(site_server, session) as first, _ws(site_server, session) as second:
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
