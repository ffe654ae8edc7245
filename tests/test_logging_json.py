"""Logs: LOG_FORMAT=json gives one JSON object per line with the request or socket id of
the event, never a message body or a secret; every answer names its request id.
"""

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.test import Client

from chatsite.settings import LOGGING
from tests.server import Browser, ChatClient, ServerProcess

SECRET_KEY = f"json-logs-secret-key-{uuid.uuid4().hex}"


# --- The request id ----------------------------------------------------------------


@pytest.mark.django_db
def test_an_answer_names_a_fresh_request_id_each_time():
    client = Client()
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


@pytest.mark.django_db
def test_the_front_servers_request_id_is_kept():
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="edge-3f9c2a7b-0001")
    assert response["X-Request-ID"] == "edge-3f9c2a7b-0001"


@pytest.mark.django_db
@pytest.mark.parametrize("sent", ["short", "has spaces in it", "x" * 129, "tag<script>1234"])
def test_a_request_id_that_is_not_a_plain_token_is_replaced(sent):
    response = Client().get("/healthz", HTTP_X_REQUEST_ID=sent)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_the_https_redirect_names_its_request_id_too(settings):
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get("/accounts/login/", HTTP_X_REQUEST_ID="edge-redirect-42")
    assert response.status_code == 301
    assert response["X-Request-ID"] == "edge-redirect-42"


def test_plain_is_the_default_format():
    assert LOGGING["handlers"]["console"]["formatter"] == "plain"


# --- One JSON object per line, from a real server ---------------------------------------


def lines_of(server: ServerProcess, until: str, timeout: float = 10) -> list[str]:
    """The server's output lines, once one of them contains `until`."""
    deadline = time.monotonic() + timeout
    while True:
        output = server.output()
        if until in output:
            return [line for line in output.splitlines() if line.strip()]
        assert time.monotonic() < deadline, f"no {until!r} in the log:\n{output}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def json_server(database, suite_redis_url):
    """A server process logging JSON at INFO, with its own secret key."""
    extra = {"REDIS_URL": suite_redis_url} if suite_redis_url else {}
    server = ServerProcess(
        database, LOG_FORMAT="json", CHAT_LOG_LEVEL="INFO", SECRET_KEY=SECRET_KEY, **extra
    ).start()
    yield server
    server.stop()


@pytest.mark.server
def test_json_logs_carry_time_level_logger_message_and_the_request_id(json_server):
    request_id = f"edge-{uuid.uuid4().hex}"
    page = urllib.request.Request(
        f"{json_server.url}/no-such-page/", headers={"X-Request-ID": request_id}
    )
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(page, timeout=10)
    assert missing.value.code == 404
    assert missing.value.headers["X-Request-ID"] == request_id

    lines = lines_of(json_server, request_id)
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    tagged = {r["logger"]: r for r in records if r.get("request_id") == request_id}
    # Django's line about the request, and the server's access line for it.
    assert set(tagged) == {"django.request", "uvicorn.access"}
    not_found = tagged["django.request"]
    assert not_found["logger"] == "django.request"
    assert not_found["level"] == "WARNING"
    assert "Not Found: /no-such-page/" in not_found["message"]
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", not_found["time"])


@pytest.mark.server
def test_json_logs_name_the_socket_and_never_a_body_or_the_secret_key(json_server):
    username = f"jlog{uuid.uuid4().hex[:8]}"
    session = Browser(json_server.url).signup(username)
    secret = f"body-never-logged-{uuid.uuid4().hex}"

    async def talk() -> None:
        client = await ChatClient(json_server, session).open()
        await client.send({"type": "send", "room": "general", "body": secret, "client_id": "j1"})
        await client.receive_type("ack", skip=("presence", "users", "message"))
        await client.close()

    asyncio.run(talk())
    # The close is logged after everything the socket did.
    lines = lines_of(json_server, f"socket closed: user={username}")
    records = [json.loads(line) for line in lines]
    opened = [r for r in records if r["message"].startswith(f"socket opened: user={username} ")]
    closed = [r for r in records if r["message"].startswith(f"socket closed: user={username} ")]
    assert len(opened) == len(closed) == 1
    assert opened[0]["logger"] == closed[0]["logger"] == "chat.consumers"
    assert opened[0]["level"] == "INFO"
    assert re.fullmatch(r"[0-9a-f]{32}", opened[0]["socket_id"])
    assert closed[0]["socket_id"] == opened[0]["socket_id"]
    output = "\n".join(lines)
    assert secret not in output
    assert SECRET_KEY not in output
