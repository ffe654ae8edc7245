"""The account pages in real Chromium: the header links to the profile; changing the
password there keeps the chat open in the other tab while another browser is logged
out; the profile and password pages pass the accessibility audit.
"""

import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.chat_page import is_chat_socket, say_stored, sign_up, wait_until_connected
from tests.browser.test_accessibility import assert_no_blocking, audit, axe_source  # noqa: F401
from tests.server import PASSWORD, ServerProcess

pytestmark = pytest.mark.browser

NEW_PASSWORD = "another-long-passphrase-77"


@pytest.fixture(scope="module")
def quick_check_server(database):
    """A server whose sockets re-check their login session every 0.3 s."""
    server = ServerProcess(database, CHAT_SESSION_CHECK_SECONDS="0.3").start()
    yield server
    server.stop()


def test_changing_the_password_keeps_the_chat_tab_connected(
    quick_check_server,
    new_page,
    axe_source,  # noqa: F811
):
    server = quick_check_server
    username = f"tab{uuid.uuid4().hex[:8]}"
    chat = new_page()
    sockets = []
    chat.on("websocket", lambda ws: sockets.append(ws))
    sign_up(chat, server.url, username)
    # Another browser, logged in to the same account, with the chat open.
    other = new_page()
    other.goto(server.url + "/accounts/login/")
    other.fill("#id_username", username)
    other.fill("#id_password", PASSWORD)
    other.click("button[type=submit]")
    wait_until_connected(other)

    # A second tab of the first browser: the header's Profile link, then the password.
    profile = chat.context.new_page()
    profile.goto(server.url + "/")
    profile.get_by_role("link", name="Profile").click()
    expect(profile.get_by_role("heading", name="Profile")).to_be_visible()
    assert_no_blocking(audit(profile, axe_source, "profile"))
    profile.get_by_role("link", name="Change password").click()
    assert_no_blocking(audit(profile, axe_source, "password change"))
    profile.fill("#id_old_password", PASSWORD)
    profile.fill("#id_new_password1", NEW_PASSWORD)
    profile.fill("#id_new_password2", NEW_PASSWORD)
    profile.get_by_role("button", name="Change password").click()
    expect(profile.get_by_role("heading", name="Password changed")).to_be_visible()

    # The other browser is logged out by a session check...
    expect(other).to_have_url(f"{server.url}/accounts/login/?next=/", timeout=10_000)
    # ...while the first tab's socket, the same one, still carries messages.
    say_stored(chat, f"still here {uuid.uuid4().hex[:6]}")
    expect(chat.locator("body")).to_have_attribute("data-socket-state", "open")
    chat_sockets = [ws for ws in sockets if is_chat_socket(ws.url)]
    assert len(chat_sockets) == 1 and not chat_sockets[0].is_closed()
