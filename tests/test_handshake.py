"""The websocket handshake: only a trusted origin, exact in scheme, host and port, opens a
socket; unknown paths and malformed headers are refused (403), never an error."""

import asyncio
import uuid

import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from chatsite.asgi import application
from tests.conftest import HOST, ORIGIN, login_client
from tests.server import Browser, ServerProcess

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
async def alice(make_user):
    """A user whose login session every handshake here carries."""
    return await sync_to_async(make_user)("alice")


async def opens(
    user,
    *,
    origin: bytes | None,
    host: bytes = HOST,
    path: str = "/ws/chat/",
    scheme=None,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> bool:
    """Tries a handshake as `user`; tells whether the socket opened (and closes it again)."""
    client = await sync_to_async(login_client)(user)
    headers = [
        (b"host", host),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        *extra,
    ]
    if origin is not None:
        headers.append((b"origin", origin))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    if scheme is not None:
        # What the server puts in the scope for a TLS socket (or behind a TLS proxy).
        communicator.scope["scheme"] = scheme
    connected, _ = await communicator.connect(timeout=5)
    if connected:
        await communicator.disconnect()
    return connected


# --- Origins ----------------------------------------------------------------------


async def test_the_sites_own_origin_opens_a_socket(alice):
    assert await opens(alice, origin=ORIGIN)


@pytest.mark.parametrize(
    "origin",
    [
        b"http://127.0.0.1:9999",
        b"https://127.0.0.1",
        b"ws://127.0.0.1",
        b"http://localhost",
        b"http://evil.example",
        b"http://127.0.0.1.evil.example",
        b"null",
    ],
    ids=[
        "other-port",
        "other-scheme",
        "ws-scheme",
        "other-allowed-host",
        "foreign",
        "suffix",
        "null",
    ],
)
async def test_an_origin_differing_in_scheme_host_or_port_is_refused(alice, origin):
    assert not await opens(alice, origin=origin)


async def test_a_handshake_without_origin_is_refused(alice):
    assert not await opens(alice, origin=None)


async def test_a_host_outside_allowed_hosts_is_not_the_sites_own_origin(alice):
    # DNS rebinding: the attacker's page and the Host header both name the attacker's domain.
    assert not await opens(alice, origin=b"http://evil.example", host=b"evil.example")


async def test_over_tls_the_sites_own_origin_is_its_https_origin(alice):
    assert await opens(alice, origin=b"https://127.0.0.1", scheme="wss")
    assert not await opens(alice, origin=b"http://127.0.0.1", scheme="wss")


async def test_behind_a_tls_proxy_the_forwarded_proto_makes_the_own_origin_https(alice, settings):
    # daphne puts no scheme in a socket's scope; Django's SECURE_PROXY_SSL_HEADER decides.
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    tls = ((b"x-forwarded-proto", b"https"),)
    assert await opens(alice, origin=b"https://127.0.0.1", extra=tls)
    assert not await opens(alice, origin=b"http://127.0.0.1", extra=tls)
    plain = ((b"x-forwarded-proto", b"http"),)
    assert await opens(alice, origin=b"http://127.0.0.1", extra=plain)
    assert not await opens(alice, origin=b"https://127.0.0.1", extra=plain)


async def test_a_csrf_trusted_origin_opens_a_socket_on_its_exact_scheme_host_and_port(
    alice, settings
):
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com"]
    assert await opens(alice, origin=b"https://chat.example.com")
    for origin in (
        b"http://chat.example.com",
        b"https://chat.example.com:8443",
        b"https://sub.chat.example.com",
    ):
        assert not await opens(alice, origin=origin), origin


async def test_a_wildcard_csrf_trusted_origin_admits_subdomains_on_its_scheme_and_port(
    alice, settings
):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com"]
    for origin in (b"https://chat.example.com", b"https://example.com"):
        assert await opens(alice, origin=origin), origin
    for origin in (
        b"http://chat.example.com",
        b"https://chat.example.com:8443",
        b"https://evilexample.com",
    ):
        assert not await opens(alice, origin=origin), origin


@pytest.mark.parametrize(
    "origin",
    [
        b"http://127.0.0.1:port",
        b"http://127.0.0.1:99999",
        b"http://[::1",
        b"http://127.0.0.1/ws/chat/",
        b"http://alice@127.0.0.1",
        b"http://127.0.0.1\xff",
        b"",
    ],
    ids=[
        "port-not-a-number",
        "port-out-of-range",
        "broken-ipv6",
        "path",
        "user",
        "latin1",
        "empty",
    ],
)
async def test_a_malformed_origin_is_refused_without_an_error(alice, origin):
    assert not await opens(alice, origin=origin)


async def test_a_repeated_origin_header_is_refused(alice):
    client = await sync_to_async(login_client)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [(b"host", HOST), (b"cookie", cookie), (b"origin", b"http://evil.example")]
    communicator = WebsocketCommunicator(
        application, "/ws/chat/", headers=[*headers, (b"origin", ORIGIN)]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert not connected


# --- Paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/ws/anything", "/ws/anything?next=/ws/chat/", "/ws/chat/extra", "/ws/chat", "/"],
)
async def test_an_unknown_websocket_path_is_refused_without_an_error(alice, path):
    assert not await opens(alice, origin=ORIGIN, path=path)


async def test_a_query_string_on_the_chat_path_still_opens_a_socket(alice):
    assert await opens(alice, origin=ORIGIN, path="/ws/chat/?tab=2")


# --- Behind a proxy: a real server with --proxy-headers and a trusted origin -----------


@pytest.fixture(scope="module")
def proxied(site_database, suite_redis_url):
    """A server run as behind a TLS proxy: --proxy-headers, CSRF_TRUSTED_ORIGINS set."""
    extra = {"REDIS_URL": suite_redis_url} if suite_redis_url else {}
    server = ServerProcess(
        site_database,
        args=("--proxy-headers",),
        CSRF_TRUSTED_ORIGINS="https://chat.example.com",
        **extra,
    ).start()
    yield server
    server.stop()


def _handshake(server, session: str, origin: str, **headers: str):
    """Opens /ws/chat/ on the real server; returns "open" or the refusal's HTTP status."""

    async def attempt():
        try:
            async with websockets.connect(
                server.ws_url,
                origin=origin,
                additional_headers={"Cookie": f"sessionid={session}", **headers},
                open_timeout=5,
            ) as ws:
                await ws.recv()  # hello
                return "open"
        except websockets.InvalidStatus as refused:
            return refused.response.status_code

    return asyncio.run(attempt())


@pytest.mark.server
def test_behind_a_proxy_a_csrf_trusted_origin_opens_a_socket(proxied):
    session = Browser(proxied.url).signup(f"proxied{uuid.uuid4().hex[:8]}")
    assert _handshake(proxied, session, "https://chat.example.com") == "open"
    assert _handshake(proxied, session, "http://chat.example.com") == 403


@pytest.mark.server
def test_behind_a_tls_proxy_the_sites_own_origin_is_https(proxied):
    session = Browser(proxied.url).signup(f"proxied{uuid.uuid4().hex[:8]}")
    own = f"127.0.0.1:{proxied.port}"
    tls = {"X-Forwarded-Proto": "https"}
    assert _handshake(proxied, session, f"https://{own}", **tls) == "open"
    assert _handshake(proxied, session, f"http://{own}", **tls) == 403
