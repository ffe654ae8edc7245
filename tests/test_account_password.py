"""Password change and reset: the changing browser stays logged in with its sockets open,
other sessions end; a reset link arrives by mail, and a mail that fails says so.
"""

import asyncio
import re
import smtplib
import uuid

import pytest
import websockets
from django.core import mail
from django.test import Client

from chat.ratelimit import reset_rate_limits
from chat.selectors import sessions_ended
from tests.conftest import PASSWORD
from tests.server import Browser, ChatClient, ServerProcess

SESSION_ENDED = 4001
NEW_PASSWORD = "another-long-passphrase-77"
# The session watch runs this often in the server test: many checks per second.
CHECK_SECONDS = 0.3


@pytest.fixture
def quick_check_server(database):
    """A server process whose sockets re-check their login session every 0.3 s."""
    server = ServerProcess(database, CHAT_SESSION_CHECK_SECONDS=str(CHECK_SECONDS)).start()
    yield server
    server.stop()


def _log_in(server: ServerProcess, username: str) -> Browser:
    browser = Browser(server.url)
    status, _, _ = browser.post_form(
        "/accounts/login/", {"username": username, "password": PASSWORD}
    )
    assert status == 302
    return browser


async def _close_code(client: ChatClient, timeout: float) -> int | str:
    """Reads frames until the server closes the socket: its close code, or "open"."""
    try:
        while True:
            await asyncio.wait_for(client.ws.recv(), timeout)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else "no close frame"
    except TimeoutError:
        return "open"


async def _answers_history(client: ChatClient) -> bool:
    await client.send({"type": "history", "room": "general", "limit": 1})
    frame = await client.receive_type("history", skip=("presence", "users", "status"))
    return frame["room"] == "general"


@pytest.mark.server
def test_password_change_keeps_this_pages_socket_open_and_ends_other_sessions(
    quick_check_server,
):
    server = quick_check_server
    username = f"changer{uuid.uuid4().hex[:6]}"
    here = Browser(server.url)
    here.signup(username)
    elsewhere = _log_in(server, username)

    async def scenario():
        page = await ChatClient(server, here.cookie("sessionid")).open()
        other = await ChatClient(server, elsewhere.cookie("sessionid")).open()
        loop = asyncio.get_running_loop()
        status, headers, _ = await loop.run_in_executor(
            None,
            lambda: here.post_form(
                "/accounts/password_change/",
                {
                    "old_password": PASSWORD,
                    "new_password1": NEW_PASSWORD,
                    "new_password2": NEW_PASSWORD,
                },
            ),
        )
        # The other browser's socket is closed by a session check after the change...
        other_code = await _close_code(other, timeout=10)
        # ...and three more checks later, this page's socket still answers.
        await asyncio.sleep(3 * CHECK_SECONDS)
        still_open = await _answers_history(page)
        # Logging out of the new session still closes the page's socket at once.
        await loop.run_in_executor(None, here.logout)
        page_code = await _close_code(page, timeout=2)
        return status, headers["location"], other_code, still_open, page_code

    status, location, other_code, still_open, page_code = asyncio.run(scenario())
    assert (status, location) == (302, "/accounts/password_change/done/")
    assert other_code == SESSION_ENDED
    assert still_open
    assert page_code == SESSION_ENDED
    assert "Traceback" not in server.output()


@pytest.mark.server
def test_after_a_password_change_the_browser_is_still_logged_in(quick_check_server):
    server = quick_check_server
    username = f"stayer{uuid.uuid4().hex[:6]}"
    here = Browser(server.url)
    here.signup(username)
    fields = {"old_password": PASSWORD, "new_password1": NEW_PASSWORD}
    status, _, _ = here.post_form(
        "/accounts/password_change/", {**fields, "new_password2": NEW_PASSWORD}
    )
    assert status == 302
    status, _, page = here.get("/accounts/profile/")
    assert status == 200
    assert username in page


# --- Password reset (the test settings keep mail in django.core.mail.outbox) ----------


@pytest.fixture(autouse=True)
def _fresh_limits():
    reset_rate_limits()
    yield
    reset_rate_limits()


@pytest.mark.django_db
def test_password_reset_mails_a_link_that_sets_a_new_password(make_user):
    make_user("alice", email="alice@example.com")
    client = Client()
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password_reset/done/"
    [message] = mail.outbox
    assert message.to == ["alice@example.com"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body)[1]

    form = client.get(link, follow=True)
    assert b"Choose a new password" in form.content
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert done["Location"] == "/accounts/reset/done/"
    login = Client().post("/accounts/login/", {"username": "alice", "password": NEW_PASSWORD})
    assert login.status_code == 302


@pytest.mark.django_db
def test_a_reset_mail_that_cannot_be_sent_is_reported_not_claimed(make_user, settings):
    make_user("alice", email="alice@example.com")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", _closed_port()
    response = Client().post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 503
    page = response.content.decode()
    assert "could not be sent" in page
    assert "on its way" not in page


@pytest.mark.django_db
def test_without_mail_configured_the_reset_page_says_so(make_user, settings):
    settings.CHAT_EMAIL_ENABLED = False
    client = Client()
    assert "cannot send e-mail" in client.get("/accounts/password_reset/").content.decode()
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 503
    assert not mail.outbox


@pytest.mark.django_db
def test_reset_requests_for_one_address_are_limited(make_user, settings):
    settings.CHAT_RESET_RATE_LIMIT = (2, 3600)
    make_user("alice", email="alice@example.com")
    client = Client()
    statuses = [
        client.post("/accounts/password_reset/", {"email": "alice@example.com"}).status_code
        for _ in range(3)
    ]
    assert statuses == [302, 302, 429]
    assert len(mail.outbox) == 2


def _closed_port() -> int:
    """A local TCP port nothing listens on (connecting to it is refused)."""
    from tests.server import free_port

    port = free_port()
    with pytest.raises(OSError):
        smtplib.SMTP("127.0.0.1", port, timeout=2)
    return port


@pytest.mark.django_db
def test_the_session_check_follows_a_changed_password_and_ends_the_other_sessions(make_user):
    alice = make_user("alice")
    here, elsewhere = Client(), Client()
    for client in (here, elsewhere):
        client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    old_key, other_key = here.session.session_key, elsewhere.session.session_key
    response = here.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    new_key = here.session.session_key
    assert new_key != old_key
    ended = sessions_ended(sessions={old_key: alice.pk, other_key: alice.pk, new_key: alice.pk})
    assert ended == {old_key: new_key, other_key: None}
    # The old cookie itself logs in nobody.
    stale = Client()
    stale.cookies["sessionid"] = old_key
    assert stale.get("/accounts/profile/").status_code == 302
