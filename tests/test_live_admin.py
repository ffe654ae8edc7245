"""The staff Live page: who is online and where, sockets per process, messages per
minute; closed to everyone but staff. With two real processes on one Redis, each
page shows the other process's sockets too.
"""

import asyncio
import html
import re
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from pytest_redis import factories

from chat import metrics
from tests.conftest import login_client, redis_url_of
from tests.server import Browser, ChatClient, ServerProcess
from tests.test_admin import staff_browser

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

LIVE = "/admin/live/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Hashes the fixtures' passwords cheaply: these tests are about the page."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _section(page: str, section: str) -> str:
    """The HTML of one of the page's tables (live-online, live-processes, live-messages)."""
    match = re.search(rf'<div class="module" id="{section}">(.*?)</div>', page, re.S)
    assert match, f"no {section} section"
    return match[1]


async def test_staff_see_who_is_online_and_on_which_process(make_user, connect):
    staff = await sync_to_async(login_client)(await sync_to_async(make_user)("root", is_staff=True))
    await connect(await sync_to_async(make_user)("alice"))
    response = await sync_to_async(staff.get)(LIVE)
    assert response.status_code == 200
    page = _text(response)
    online = _section(page, "live-online")
    assert "alice" in online and metrics.PROCESS in online
    processes = _section(page, "live-processes")
    assert metrics.PROCESS in processes and "alice" in processes
    # The page reloads itself without a script (the CSP forbids inline ones).
    assert '<meta http-equiv="refresh"' in page and "<script>" not in page


async def test_the_page_counts_messages_of_the_last_minutes(make_user, connect):
    staff = await sync_to_async(login_client)(await sync_to_async(make_user)("root", is_staff=True))
    alice = await connect(await sync_to_async(make_user)("alice"))
    for n in range(3):
        await alice.send({"type": "send", "room": "general", "body": f"m{n}", "client_id": f"c{n}"})
        await alice.receive_type("ack", skip=("presence", "users", "message"))
    response = await sync_to_async(staff.get)(LIVE)
    assert response.context["messages_total"] == 3
    assert "3 in the last 10 minutes" in _section(_text(response), "live-messages")


def test_the_admin_index_links_to_the_live_page(make_user):
    staff = login_client(make_user("root", is_staff=True, is_superuser=True))
    assert f'href="{LIVE}"' in staff.get("/admin/").content.decode()


def test_people_who_are_not_staff_get_the_admin_login(make_user):
    for client in (login_client(make_user("alice")), Client()):
        response = client.get(LIVE)
        assert response.status_code == 302
        assert response["Location"] == f"/admin/login/?next={LIVE}"


# --- Two real processes on one Redis -----------------------------------------------

live_redis = factories.redis_proc(port=None)


@pytest.fixture
def pair(database, live_redis):
    """Two server processes sharing one Redis and one database, with quick reports."""
    env = {
        "REDIS_URL": redis_url_of(live_redis),
        "CHAT_PRESENCE_TTL_SECONDS": "3",
        "CHAT_HEARTBEAT_SECONDS": "0.5",
    }
    servers = [ServerProcess(database, **env).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.server
@pytest.mark.django_db(transaction=False)
async def test_each_process_shows_the_sockets_of_the_other(pair):
    first, second = pair
    staff = await asyncio.to_thread(staff_browser, first)
    name = f"bob{uuid.uuid4().hex[:6]}"
    session = await asyncio.to_thread(Browser(second.url).signup, name)
    bob = await ChatClient(second, session).open()
    try:
        # The page on the first process names bob, and a second process with one socket.
        for _ in range(100):
            status, _, body = await asyncio.to_thread(staff.get, LIVE)
            assert status == 200
            processes = _section(html.unescape(body), "live-processes")
            if name in processes:
                break
            await asyncio.sleep(0.1)
        assert name in _section(html.unescape(body), "live-online")
        rows = re.findall(r"<tr>\s*<th scope=\"row\">(.*?)</th>\s*<td>(\d+)</td>", processes, re.S)
        assert len(rows) == 2
        assert sorted(int(sockets) for _, sockets in rows) == [0, 1]
    finally:
        await bob.close()
