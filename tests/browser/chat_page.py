"""How the browser tests act on the chat page and find its parts, and the watch that
fails a test whose pages broke the site's Content-Security-Policy or threw.
"""

import json
import re
import uuid
from dataclasses import dataclass, field

from playwright.sync_api import Expect, Locator, Page, WebSocket

from tests.server import PASSWORD

# Our own `expect` with room for a busy 2-core machine; the global one stays as it is.
expect = Expect()
expect.set_options(timeout=15_000)

# Runs before any page script and is not subject to the page's policy. It reports
# through the console, which the watch hears across reloads too.
VIOLATION_REPORTER = (
    "document.addEventListener('securitypolicyviolation', e =>"
    " console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));"
)


# The chat's socket: /ws/chat/, with the query the page adds (?presence=batch).
CHAT_SOCKET = re.compile(r"/ws/chat/(\?[^#]*)?$")


def is_chat_socket(url: str) -> bool:
    """Tells whether a websocket URL is the chat's socket."""
    return CHAT_SOCKET.search(url) is not None


@dataclass
class Person:
    """A signed-up person: their first tab, their username, and what their sockets received."""

    page: Page
    name: str
    frames: list[dict] = field(default_factory=list)  # what its chat sockets received, in order
    socket: WebSocket | None = None  # the chat socket opened last

    def listen(self, page: Page) -> None:
        """Records the frames that every chat socket `page` opens receives."""
        page.on("websocket", self._socket_opened)

    def _socket_opened(self, socket: WebSocket) -> None:
        if not is_chat_socket(socket.url):
            return
        self.socket = socket
        socket.on("framereceived", lambda payload: self.frames.append(json.loads(payload)))


class PageWatch:
    """Collects what the watched pages did that they never should: policy violations, errors."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._pages: set[Page] = set()

    def watch(self, page: Page) -> None:
        """Watches `page` and every later page of its context (second tabs)."""
        page.context.add_init_script(VIOLATION_REPORTER)
        page.context.on("page", self._page)
        self._page(page)

    def _page(self, page: Page) -> None:
        if page in self._pages:
            return
        self._pages.add(page)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))

    def _console(self, message) -> None:
        text = message.text
        if "CSP violation" in text or "Content Security Policy" in text:
            self.problems.append(text)


def marker() -> str:
    """A fresh tag that makes a test's message bodies its own in the shared room."""
    return uuid.uuid4().hex[:8]


def wait_until_connected(page: Page) -> None:
    """Waits until the page's socket is open and hello has been handled."""
    expect(page.locator("body")).to_have_attribute("data-socket-state", "open")


def sign_up(page: Page, url: str, username: str) -> None:
    """Signs `username` up through the sign-up page (in whatever language it shows) and
    waits until the chat page it lands on is connected."""
    page.goto(url + "/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.locator("form:has(#id_username) button[type=submit]").click()
    wait_until_connected(page)


def say(page: Page, text: str) -> None:
    """Types `text` into the composer and presses Enter."""
    page.fill("#composer", text)
    page.press("#composer", "Enter")


def say_stored(page: Page, text: str) -> Locator:
    """Says `text` and waits until the server stored it; returns its row, found by id."""
    say(page, text)
    row = message_row(page, text)
    expect(row).to_have_count(1)
    expect(page.locator("#messages .message.pending")).to_have_count(0)
    return row_with_id(page, row.get_attribute("data-id"))


def message_row(page: Page, text: str) -> Locator:
    """The stored row (it has an id) whose text holds `text`."""
    return page.locator("#messages .message[data-id]").filter(has_text=text)


def row_with_id(page: Page, message_id: str) -> Locator:
    """The row of message `message_id`."""
    return page.locator(f'#messages .message[data-id="{message_id}"]')


def open_direct(page: Page, user: str) -> None:
    """Opens the direct conversation with `user` from the online list."""
    page.click(f'#online li[data-user="{user}"]')
    expect(page.locator("#conversation-title")).to_contain_text(user)


def open_room(page: Page, room: str) -> None:
    """Opens a room from the sidebar."""
    page.click(f'#rooms li[data-room="{room}"]')
    expect(page.locator("#conversation-title")).to_have_text(f"# {room}")


class SocketCut:
    """Puts a page's chat socket behind a proxy the test can cut, refusing reconnects.

    Install it, then reload the page so its socket goes through the proxy.
    """

    def __init__(self, page: Page) -> None:
        self.blocked = False
        self.routes = []
        page.route_web_socket(CHAT_SOCKET, self._route)

    def _route(self, ws) -> None:
        if self.blocked:
            ws.close(code=1011)
            return
        self.routes.append((ws, ws.connect_to_server()))

    def cut(self, code: int = 4012) -> None:
        """Closes the socket as a server restart would (4012: reconnect and sync), and
        refuses every reconnect until `restore`."""
        self.blocked = True
        page_side, server_side = self.routes[-1]
        server_side.close()
        page_side.close(code=code)

    def restore(self) -> None:
        """Lets reconnects through again."""
        self.blocked = False
