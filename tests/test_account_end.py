"""Accounts that end, end everywhere: a user deactivated or deleted (in the admin, as staff
do it) has every socket closed with 4001 on every server process; others stay connected.
"""

import asyncio
import re
import uuid
from html.parser import HTMLParser

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.db import transaction
from pytest_redis import factories

from tests.conftest import redis_url_of
from tests.server import Browser, ChatClient, ServerProcess
from tests.test_admin import staff_browser

SESSION_ENDED = 4001
# The contract: every socket of the account is closed within 2 s.
CLOSE_WITHIN = 2.0

account_redis = factories.redis_proc(port=None)


# --- Two real server processes on one Redis ----------------------------------------


@pytest.fixture
def pair(database, account_redis):
    """Two server processes sharing one Redis and one database."""
    env = {"REDIS_URL": redis_url_of(account_redis)}
    servers = [ServerProcess(database, **env).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


class _FormFields(HTMLParser):
    """The fields a browser would submit from a page's forms, as (name, value) pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button"):
            if attrs.get("type") not in ("checkbox", "radio"):
                self.fields.append((name, attrs.get("value") or ""))
            elif "checked" in attrs:
                self.fields.append((name, attrs.get("value") or "on"))
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self.fields.append((self._select, attrs.get("value") or ""))

    def handle_endtag(self, tag) -> None:
        if tag == "select":
            self._select = None


def _user_id(staff: Browser, username: str) -> int:
    """Finds a user's id the way staff do: the admin's user search."""
    _, _, page = staff.get(f"/admin/auth/user/?q={username}")
    [user_id] = set(re.findall(r'href="/admin/auth/user/(\d+)/change/', page))
    return int(user_id)


def _deactivate_in_admin(staff: Browser, username: str) -> int:
    """Unticks "Active" on the user's admin page and saves; returns the HTTP status."""
    path = f"/admin/auth/user/{_user_id(staff, username)}/change/"
    form = _FormFields()
    form.feed(staff.get(path)[2])
    fields = {name: value for name, value in form.fields if name != "is_active"}
    status, _, _ = staff.post_form(path, {**fields, "_save": "Save"})
    return status


def _delete_in_admin(staff: Browser, username: str) -> int:
    """Confirms the user's deletion in the admin; returns the HTTP status."""
    path = f"/admin/auth/user/{_user_id(staff, username)}/delete/"
    status, _, _ = staff.post_form(path, {"post": "yes"})
    return status


async def _close_code(client: ChatClient, deadline: float) -> int | str:
    """Reads frames until the server closes the socket: its close code, or "open" by `deadline`."""
    loop = asyncio.get_running_loop()
    try:
        while True:
            await asyncio.wait_for(client.ws.recv(), max(deadline - loop.time(), 0.01))
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else "no close frame"
    except TimeoutError:
        return "open"


@pytest.mark.server
@pytest.mark.parametrize(
    "end", [_deactivate_in_admin, _delete_in_admin], ids=["deactivated", "deleted"]
)
def test_an_ended_account_loses_its_sockets_on_every_process_and_others_stay(pair, end):
    a, b = pair
    staff = staff_browser(a)
    leaver, stayer = (f"{role}{uuid.uuid4().hex[:6]}" for role in ("leaver", "stayer"))
    leaver_session = Browser(a.url).signup(leaver)
    stayer_session = Browser(b.url).signup(stayer)

    async def scenario():
        leaving = [await ChatClient(s, leaver_session).open() for s in (a, b)]
        staying = [await ChatClient(s, stayer_session).open() for s in (a, b)]
        loop = asyncio.get_running_loop()
        status = await loop.run_in_executor(None, end, staff, leaver)
        deadline = loop.time() + CLOSE_WITHIN
        codes = [await _close_code(client, deadline) for client in leaving]
        # The other user's sockets, on both processes, are still open and receiving.
        await staying[0].send(
            {"type": "send", "room": "general", "body": "still here", "client_id": "s1"}
        )
        received = [
            (await client.receive_type("message", skip=("presence", "users", "ack")))["body"]
            for client in staying
        ]
        for client in staying:
            await client.close()
        return status, codes, received

    status, codes, received = asyncio.run(scenario())
    assert status == 302
    assert codes == [SESSION_ENDED, SESSION_ENDED]
    assert received == ["still here", "still here"]


# --- In one process (embedded mode) ----------------------------------------------------


def _save_inactive(user) -> None:
    with transaction.atomic():  # as the admin saves
        user.is_active = False
        user.save()


def _delete(user) -> None:
    with transaction.atomic():
        user.delete()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("end", [_save_inactive, _delete], ids=["deactivated", "deleted"])
async def test_an_ended_account_loses_every_socket_in_process(make_user, connect, end):
    leaver = await sync_to_async(make_user)("leaver")
    stayer = await sync_to_async(make_user)("stayer")
    tabs = [await connect(leaver), await connect(leaver)]
    other = await connect(stayer)
    await sync_to_async(end)(leaver)
    for tab in tabs:
        output = await tab.communicator.receive_output(timeout=CLOSE_WITHIN)
        while output["type"] == "websocket.send":  # presence frames may come first
            output = await tab.communicator.receive_output(timeout=CLOSE_WITHIN)
        assert output == {"type": "websocket.close", "code": SESSION_ENDED}
    assert await other.ask({"type": "ping"}, "pong") == {"type": "pong"}
