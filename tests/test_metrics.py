"""GET /metrics: refused without the token, Prometheus' text format with it, and the
counts moving with what happens: sockets opening and closing, messages stored,
rate-limit refusals, and (real server) a slow socket given up.
"""

import asyncio
import time
import urllib.request
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from pytest_redis import factories

from tests.conftest import redis_url_of
from tests.server import Browser, ChatClient, ServerProcess, raw_chat_socket
from tests.test_settings import GOOD, refusal
from tests.test_slow_reader import LONG_BODY, _masked

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

TOKEN = "metrics-test-token-0123456789"
REQUIRED = (
    "chat_sockets_open",
    "chat_messages_stored_total",
    "chat_frames_sent_total",
    "chat_deliveries_total",
    "chat_slow_sockets_closed_total",
    "chat_layer_reconnects_total",
    "chat_publish_seconds_count",
    "chat_rate_limited_total",
    "chat_event_loop_lag_seconds_count",
)


@pytest.fixture
def token(settings):
    """Turns /metrics on with a known token."""
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def _parse(text: str) -> dict[tuple[str, tuple], float]:
    """The samples of a Prometheus text page: (name, sorted labels) to value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(**headers) -> dict[tuple[str, tuple], float]:
    """GETs /metrics with the token, as Prometheus does, and parses it."""
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content[:300]
    return _parse(response.content.decode())


async def value(name: str, **labels: str) -> float:
    """One sample of /metrics."""
    samples = await sync_to_async(scrape)()
    return samples[name, tuple(sorted(labels.items()))]


def test_without_a_token_configured_there_is_no_metrics_page(settings):
    settings.METRICS_TOKEN = None
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404


@pytest.mark.django_db(transaction=False)
def test_a_short_metrics_token_stops_start_up():
    assert "METRICS_TOKEN must be at least 16 characters" in refusal(
        {**GOOD, "METRICS_TOKEN": "guessable"}
    )


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-of-some-length", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
)
def test_a_missing_or_wrong_token_is_refused(token, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = Client().get("/metrics", headers=headers)
    assert response.status_code == 403
    assert b"chat_" not in response.content


def test_the_page_is_prometheus_text_with_every_chat_metric(token):
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {name for name, _ in _parse(response.content.decode())}
    assert set(REQUIRED) <= names
    # Each process says which one it is, for the Live page and for dashboards.
    assert "chat_process_info" in names


def test_a_scraper_at_the_process_address_is_answered(token):
    # Prometheus scrapes each process at its own address, which is no allowed host
    # of the site: pages refuse it, /metrics answers it.
    foreign = "10.1.2.3:8000"
    assert Client().get("/healthz", headers={"Host": foreign}).status_code == 400
    assert "chat_sockets_open" in {name for name, _ in scrape(Host=foreign)}


async def test_sockets_open_goes_up_and_down_with_a_socket(token, make_user, connect):
    alice = await sync_to_async(make_user)("alice")
    before = await value("chat_sockets_open")
    socket = await connect(alice)
    assert await value("chat_sockets_open") == before + 1
    await socket.close()
    assert await value("chat_sockets_open") == before


async def test_a_blocked_event_loop_shows_as_lag(token, make_user, connect):
    await connect(await sync_to_async(make_user)("alice"))  # a socket starts the watch

    def late(samples) -> float:
        """Samples of the lag over half a second."""
        within = samples["chat_event_loop_lag_seconds_bucket", (("le", "0.5"),)]
        return samples["chat_event_loop_lag_seconds_count", ()] - within

    before = late(await sync_to_async(scrape)())
    time.sleep(1.0)  # noqa: ASYNC251 - holds the loop on purpose: the watch wakes >= 0.75 s late
    deadline = time.monotonic() + 30
    while late(await sync_to_async(scrape)()) == before:
        assert time.monotonic() < deadline, "no lag over 0.5 s was recorded"
        await asyncio.sleep(0.05)


async def test_a_stored_message_is_counted_once(token, make_user, connect):
    alice, bob = [await sync_to_async(make_user)(name) for name in ("alice", "bob")]
    alice_socket, bob_socket = await connect(alice), await connect(bob)
    stored = await value("chat_messages_stored_total")
    sent = await value("chat_frames_sent_total")
    delivered = await value("chat_deliveries_total")
    published = await value("chat_publish_seconds_count")
    frame = {"type": "send", "room": "general", "body": "hello", "client_id": "m1"}
    await alice_socket.send(frame)
    await alice_socket.receive_type("ack")
    await bob_socket.receive_type("message")
    # A retry of the same client_id is answered with the stored message, not stored again.
    await alice_socket.send(frame)
    await alice_socket.receive_type("ack", skip=("presence", "users", "message"))
    assert await value("chat_messages_stored_total") == stored + 1
    # Two acks to alice, the message to both: at least four frames, two deliveries.
    assert await value("chat_frames_sent_total") >= sent + 4
    assert await value("chat_deliveries_total") >= delivered + 2
    assert await value("chat_publish_seconds_count") >= published + 1


async def test_a_rate_limit_refusal_is_counted_by_kind(token, settings, make_user, connect):
    settings.CHAT_RATE_LIMIT = (1, 60)
    alice = await connect(await sync_to_async(make_user)("alice"))
    refused = await value("chat_rate_limited_total", kind="messages")
    await alice.send({"type": "send", "room": "general", "body": "one", "client_id": "r1"})
    await alice.receive_type("ack", skip=("presence", "users", "message"))
    await alice.send({"type": "send", "room": "general", "body": "two", "client_id": "r2"})
    error = await alice.receive_type("error", skip=("presence", "users", "message"))
    assert error["code"] == "rate_limited"
    assert await value("chat_rate_limited_total", kind="messages") == refused + 1


# --- A real server: a client that never reads is given up, and counted ---------

STALL_SECONDS = 1
metrics_redis = factories.redis_proc(port=None)


@pytest.fixture(scope="module", params=["embedded", "redis"])
def server(request, database):
    """A server with /metrics on and a short stall limit, embedded or in Redis mode."""
    env = {
        "METRICS_TOKEN": TOKEN,
        "CHAT_SEND_STALL_SECONDS": str(STALL_SECONDS),
        "CHAT_READ_RATE_LIMIT": "off",
    }
    if request.param == "redis":
        env["REDIS_URL"] = redis_url_of(request.getfixturevalue("metrics_redis"))
    server = ServerProcess(database, **env).start()
    yield server
    server.stop()


def scrape_server(server: ServerProcess, host: str | None = None) -> dict:
    """GETs a real server's /metrics over HTTP, optionally with another Host header."""
    request = urllib.request.Request(
        server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    if host is not None:
        request.add_header("Host", host)
    with urllib.request.urlopen(request, timeout=10) as response:
        return _parse(response.read().decode())


@pytest.mark.server
@pytest.mark.django_db(transaction=False)
async def test_a_slow_socket_given_up_is_counted(server):
    closed = ("chat_slow_sockets_closed_total", ())
    before = (await asyncio.to_thread(scrape_server, server, "172.18.0.5:8000"))[closed]
    tag = uuid.uuid4().hex[:6]
    alice_session = Browser(server.url).signup(f"alice{tag}")
    slow_session = Browser(server.url).signup(f"slow{tag}")
    alice = await ChatClient(server, alice_session).open()
    try:
        # Enough history that a few pages of it are megabytes.
        for n in range(100):
            await alice.send(
                {"type": "send", "room": "general", "body": LONG_BODY, "client_id": f"s{n}"}
            )
        for _ in range(100):
            await alice.receive_type("ack", skip=("presence", "users", "message"))
        slow = raw_chat_socket(server, slow_session, receive_buffer=1)
        for _ in range(15):
            slow.sendall(b"" + _masked('{"type": "history", "room": "general", "limit": 100}'))
        deadline = time.monotonic() + STALL_SECONDS + 30
        while (after := (await asyncio.to_thread(scrape_server, server))[closed]) == before:
            assert time.monotonic() < deadline, "the slow socket was never given up"
            await asyncio.sleep(0.2)
        assert after == before + 1
        assert "socket too slow" in server.output()
        slow.close()
    finally:
        await alice.close()
