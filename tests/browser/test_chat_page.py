"""The chat page in a real Chromium against a real server: what a person sees and does."""

import re
import uuid
from html.parser import HTMLParser

import pytest
from playwright.sync_api import Page, expect

from tests.browser.chat_page import SocketCut
from tests.server import PASSWORD, Browser

pytestmark = [pytest.mark.browser, pytest.mark.server]

LOGIN_PATH = re.compile(r"/accounts/login/\?next=/$")


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def wait_until_connected(page: Page) -> None:
    """Waits until the page's socket is open and hello has been handled."""
    expect(page.locator("body")).to_have_attribute("data-socket-state", "open", timeout=10_000)


def say(page: Page, text: str) -> None:
    """Types `text` into the composer and presses Enter."""
    page.fill("#composer", text)
    page.press("#composer", "Enter")


def stored_bodies(page: Page):
    return page.locator("#messages .message[data-id] .body")


@pytest.fixture
def person(site_server, new_page):
    """Signs up a new person through the sign-up page; returns (page, username)."""

    def _person(prefix: str = "user", viewport=None) -> tuple[Page, str]:
        page = new_page(viewport)
        username = _name(prefix)
        page.goto(site_server.url + "/accounts/signup/")
        page.fill("#id_username", username)
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("button[type=submit]")
        wait_until_connected(page)
        return page, username

    return _person


def test_signup_page_shows_field_errors_and_password_help(site_server, new_page):
    page = new_page()
    page.goto(site_server.url + "/accounts/signup/")
    expect(page.locator(".helptext ul")).to_be_visible()
    page.fill("#id_username", _name("ann"))
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD + "x")
    page.click("button[type=submit]")
    expect(page.locator(".field.has-errors .errorlist")).to_contain_text(re.compile("didn.t match"))
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def test_login_page_shows_wrong_password_and_keeps_next(site_server, new_page):
    page = new_page()
    page.goto(site_server.url + "/")
    expect(page).to_have_url(LOGIN_PATH)
    page.fill("#id_username", _name("nobody"))
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".form-errors")).to_contain_text("correct username and password")
    expect(page.locator("input[name=next]")).to_have_value("/")
    expect(page.get_by_role("link", name="Sign up")).to_be_visible()


def test_message_reaches_the_other_person_as_literal_text(person):
    alice, alice_name = person("alice")
    bob, _ = person("bob")
    evil = "<img src=x onerror=alert(1)>"

    alice.fill("#composer", evil)
    alice.press("#composer", "Shift+Enter")
    alice.type("#composer", "second line")
    alice.click("#send")

    row = bob.locator("#messages .message[data-id]").filter(has_text="second line")
    expect(row.locator(".body")).to_have_text(f"{evil}\nsecond line")
    expect(row.locator(".from")).to_have_text(alice_name)
    expect(row.locator(".time")).not_to_be_empty()
    assert bob.locator("#messages img").count() == 0
    # The sender sees it once: the pending copy became the stored one.
    expect(alice.locator("#messages .message", has_text="second line")).to_have_count(1)
    expect(alice.locator("#messages .message.pending")).to_have_count(0)


def test_unread_badge_counts_until_the_room_is_opened(person):
    alice, _ = person("alice")
    bob, bob_name = person("bob")
    bob.click(f"#online li[data-user={bob_name}]")  # notes to self: general is not active
    expect(bob.locator("#conversation-title")).to_contain_text(bob_name)

    say(alice, "one")
    say(alice, "two")

    badge = bob.locator("#rooms li[data-room=general] .badge")
    expect(badge).to_have_text("2")
    bob.click("#rooms li[data-room=general]")
    expect(badge).to_have_count(0)
    expect(stored_bodies(bob).last).to_have_text("two")


def test_clicking_an_online_name_opens_a_direct_conversation(person):
    alice, alice_name = person("alice")
    bob, bob_name = person("bob")

    alice.click(f"#online li[data-user={bob_name}]")
    expect(alice.locator("#conversation-title")).to_have_text(bob_name)
    say(alice, "just between us")

    entry = bob.locator(f"#direct li[data-user={alice_name}]")
    expect(entry.locator(".badge")).to_have_text("1")
    entry.click()
    expect(stored_bodies(bob)).to_have_text(["just between us"])
    say(bob, "agreed")
    expect(stored_bodies(alice)).to_have_text(["just between us", "agreed"])


def test_own_name_is_marked_and_opens_notes_to_self(person):
    alice, alice_name = person("alice")
    me = alice.locator(f"#online li[data-user={alice_name}]")
    expect(me).to_contain_text("(you)")
    me.click()
    say(alice, "buy milk")
    expect(stored_bodies(alice)).to_have_text(["buy milk"])
    expect(alice.locator(f"#direct li[data-user={alice_name}]")).to_be_visible()


def test_too_long_or_blank_message_is_not_sent(person):
    alice, alice_name = person("alice")
    alice.click(f"#online li[data-user={alice_name}]")
    alice.fill("#composer", "x" * 4001)
    alice.click("#send")
    expect(alice.locator("#composer-error")).to_contain_text("longer than 4000 characters")
    say(alice, "   ")
    expect(alice.locator("#messages .message")).to_have_count(0)


FIRST_VISIBLE_ID = """rows => {
  const top = document.getElementById('message-scroller').getBoundingClientRect().top;
  return rows.find((row) => row.getBoundingClientRect().bottom > top).dataset.id;
}"""


def row_top(page: Page, message_id: str) -> float:
    """Where the row of message `message_id` starts on screen."""
    row = page.locator(f'#messages .message[data-id="{message_id}"]')
    return row.evaluate("r => r.getBoundingClientRect().top")


def test_load_older_prepends_in_seq_order_and_keeps_the_reader_in_place(person):
    alice, alice_name = person("alice")
    for number in range(60):
        say(alice, f"{alice_name} {number}")
    expect(alice.locator("#messages .message.pending")).to_have_count(0, timeout=15_000)

    reader, _ = person("carol")
    rows = reader.locator("#messages .message[data-id]")
    expect(rows).to_have_count(50)
    button = reader.locator("#load-older")
    expect(button).to_be_visible()

    scroller = reader.locator("#message-scroller")
    scroller.evaluate("s => { s.scrollTop = 150; }")
    # The row the reader sees at the top (rows above it may change: the first
    # loaded message joins its sender's group once older messages arrive).
    first_id = rows.evaluate_all(FIRST_VISIBLE_ID)
    top_before = row_top(reader, first_id)
    button.evaluate("b => b.click()")  # a real click would scroll the button into view first
    expect(rows).not_to_have_count(50)
    assert abs(row_top(reader, first_id) - top_before) < 2

    seqs = [int(seq) for seq in rows.evaluate_all("rows => rows.map(r => r.dataset.seq)")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_new_messages_scroll_only_a_reader_already_at_the_bottom(person):
    alice, alice_name = person("alice")
    for number in range(30):
        say(alice, f"{alice_name} filler {number}")
    bob, _ = person("bob", viewport={"width": 1000, "height": 500})
    scroller = bob.locator("#message-scroller")
    expect(
        bob.locator("#messages .message", has_text=f"{alice_name} filler 29")
    ).to_be_in_viewport()

    scroller.evaluate("s => { s.scrollTop = 0; }")
    say(alice, "while bob reads old ones")
    expect(bob.locator("#jump-latest")).to_be_visible()
    expect(bob.locator("#messages .message", has_text="while bob reads")).not_to_be_in_viewport()

    bob.click("#jump-latest")
    say(alice, "now he follows")
    expect(bob.locator("#messages .message", has_text="now he follows")).to_be_in_viewport()


def test_after_a_dropped_connection_the_page_catches_up_and_sends_what_was_typed(person):
    bob, bob_name = person("bob")
    alice, alice_name = person("alice")
    alice.click(f"#online li[data-user={bob_name}]")
    expect(bob.locator(f"#direct li[data-user={alice_name}]")).to_have_count(0)

    # Put bob's socket behind a proxy we can cut, then cut it and refuse reconnects.
    cut = SocketCut(bob)
    bob.reload()
    wait_until_connected(bob)
    bob.click(f"#online li[data-user={bob_name}]")  # away from general
    cut.cut()  # as after a server restart: reconnect and sync

    banner = bob.locator("#connection-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_class(re.compile(r"\breconnecting\b"))
    say(bob, "typed while offline")
    expect(bob.locator("#messages .message.pending")).to_have_count(1)

    say(alice, "missed this dm")
    alice.click("#rooms li[data-room=general]")
    say(alice, "missed this in general")
    expect(stored_bodies(alice).last).to_have_text("missed this in general")

    cut.restore()
    # The backoff timer may reconnect on its own at any moment, which hides the
    # button, so press "Try now" from inside the page whenever it shows, until
    # the socket is open again (one click is enough unless a timer raced it).
    bob.wait_for_function(
        """() => {
            if (document.body.dataset.socketState === 'open') return true;
            const button = document.querySelector('#connection-banner button');
            if (button && button.offsetParent !== null) button.click();
            return false;
        }""",
        polling=100,
        timeout=30_000,
    )
    wait_until_connected(bob)
    expect(banner).to_be_hidden()
    expect(bob.locator(f"#direct li[data-user={alice_name}] .badge")).to_have_text("1")
    expect(bob.locator("#rooms li[data-room=general] .badge")).to_have_text("1")
    expect(bob.locator("#messages .message.pending")).to_have_count(0)
    expect(stored_bodies(bob)).to_have_text(["typed while offline"])


def test_logging_out_in_another_tab_takes_the_page_to_login(person):
    page, _ = person("alice")
    other_tab = page.context.new_page()
    other_tab.goto(page.url)
    wait_until_connected(other_tab)
    other_tab.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(LOGIN_PATH, timeout=10_000)


def test_phone_width_hides_the_sidebar_behind_a_toggle(person):
    _, alice_name = person("alice")
    phone, _ = person("phone", viewport={"width": 390, "height": 740})

    expect(phone.locator("#sidebar")).to_be_hidden()
    expect(phone.locator("#composer")).to_be_in_viewport()
    phone.click("#sidebar-toggle")
    phone.click(f"#online li[data-user={alice_name}]")
    expect(phone.locator("#sidebar")).to_be_hidden()
    expect(phone.locator("#conversation-title")).to_have_text(alice_name)
    expect(phone.locator("#composer")).to_be_in_viewport()


class _InlineCode(HTMLParser):
    """Collects what a `script-src 'self'; style-src 'self'` policy would block."""

    def __init__(self) -> None:
        super().__init__()
        self.blocked: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        self.blocked += [f"<{tag} {name}=...>" for name in names if name.startswith("on")]
        if "style" in names:
            self.blocked.append(f"<{tag} style=...>")
        if tag == "style":
            self.blocked.append("<style>")
        self._in_script = tag == "script"
        if self._in_script and "src" not in names:
            self.blocked.append("<script> without src")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.blocked.append("<script> with a body")


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/"])
def test_pages_carry_no_inline_script_or_style(site_server, path):
    # The deployed site sends `script-src 'self'; style-src 'self'`: anything
    # inline would be refused by the browser and the page would break.
    browser = Browser(site_server.url)
    if path == "/":
        browser.signup(_name("csp"))
    status, _, html = browser.get(path)
    assert status == 200
    parser = _InlineCode()
    parser.feed(html)
    assert parser.blocked == []
