"""Browser notifications in real Chromium pages: a page that looks elsewhere notifies as
each conversation's level says, a click opens the conversation, a muted room shows a
dot instead of a count, and permission is asked only from the button.

The page's view of the world is set by a script that runs before its own: the tab
reports itself hidden and unfocused, and `window.Notification` is a fake that records
every notification and permission request (headless Chromium shows none).
"""

import json
import re
from urllib.parse import unquote

import pytest

from tests.browser.chat_page import (
    expect,
    marker,
    open_direct,
    open_room,
    say_stored,
    wait_until_connected,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]

FAKE_BROWSER = """
(() => {
  const state = { shown: [], asked: 0, away: true };
  window.__notices = state;
  const define = (name, get) => Object.defineProperty(document, name, { configurable: true, get });
  define('visibilityState', () => (state.away ? 'hidden' : 'visible'));
  define('hidden', () => state.away);
  document.hasFocus = () => !state.away;
  class FakeNotification {
    constructor(title, options = {}) {
      this.title = title;
      this.body = options.body;
      this.tag = options.tag;
      this.closed = false;
      state.shown.push(this);
    }
    close() { this.closed = true; }
    static requestPermission() {
      state.asked += 1;
      FakeNotification.permission = 'granted';
      return Promise.resolve('granted');
    }
  }
  FakeNotification.permission = %s;
  window.Notification = FakeNotification;
})();
"""

SHOWN = "() => window.__notices.shown.map((n) => ({ title: n.title, body: n.body, tag: n.tag }))"


def looking_elsewhere(person, permission: str = "granted") -> None:
    """Reloads the person's page as a hidden, unfocused tab with a recording Notification API."""
    person.page.context.add_init_script(FAKE_BROWSER % json.dumps(permission))
    person.page.reload()
    wait_until_connected(person.page)


def shown(page) -> list[dict]:
    """The notifications the page raised so far: title, body and tag."""
    return page.evaluate(SHOWN)


def wait_for_shown(page, count: int) -> list[dict]:
    """Waits until the page has raised `count` notifications; returns them."""
    page.wait_for_function("n => window.__notices.shown.length >= n", arg=count)
    return shown(page)


def test_a_direct_message_notifies_a_click_opens_it_and_a_plain_room_message_does_not(
    chat_person,
):
    alice, bob = chat_person("alice"), chat_person("bob")
    looking_elsewhere(bob)
    tag = marker()

    open_direct(alice.page, bob.name)
    say_stored(alice.page, f"psst {tag}")
    assert wait_for_shown(bob.page, 1) == [
        {"title": alice.name, "body": f"psst {tag}", "tag": f"chat:dm:{alice.name}"}
    ]

    # The click brings the page forward with the conversation open, and closes it.
    expect(bob.page.locator("#conversation-title")).to_have_text("# general")
    bob.page.evaluate("() => window.__notices.shown[0].onclick()")
    expect(bob.page.locator("#conversation-title")).to_contain_text(alice.name)
    assert bob.page.evaluate("() => window.__notices.shown[0].closed") is True

    # At the default level a room message that does not mention bob stays quiet:
    # once it has reached his socket, a later direct message is the only new one.
    open_room(alice.page, "general")
    with bob.socket.expect_event("framereceived", lambda payload: f"room {tag}" in payload):
        say_stored(alice.page, f"room {tag}")
    open_direct(alice.page, bob.name)
    say_stored(alice.page, f"later {tag}")
    assert [n["body"] for n in wait_for_shown(bob.page, 2)] == [f"psst {tag}", f"later {tag}"]


def test_a_room_set_to_nothing_stays_silent_and_shows_a_dot_and_the_title_counts_the_rest(
    chat_person,
):
    alice, bob = chat_person("alice"), chat_person("bob")
    looking_elsewhere(bob)
    tag = marker()

    # Bob mutes general from the conversation header; the server confirms it.
    level = bob.page.get_by_label("Notify me")
    expect(level).to_have_value("mentions")
    with bob.socket.expect_event("framereceived", lambda payload: '"type":"notify"' in payload):
        level.select_option("none")
    assert {"type": "notify", "room": "general", "level": "none"} in bob.frames
    open_direct(bob.page, bob.name)  # notes to self: general is not on screen

    # Even a mention of bob in the muted room raises nothing; the direct message after it does.
    mention = f"hey @{bob.name} {tag}"
    with bob.socket.expect_event("framereceived", lambda payload: mention in payload):
        say_stored(alice.page, mention)
    say_stored(alice.page, f"and more {tag}")
    open_direct(alice.page, bob.name)
    say_stored(alice.page, f"direct {tag}")
    assert [n["body"] for n in wait_for_shown(bob.page, 1)] == [f"direct {tag}"]

    # The room's badge is a dot that says "unread" to screen readers, no number;
    # the title and the favicon count only the direct message.
    badge = bob.page.locator('#rooms li[data-room="general"] .badge:not(.mention-badge)')
    expect(badge).to_have_class("badge muted-dot")
    expect(badge).to_have_text("unread")
    # Not even the mention is counted there.
    expect(bob.page.locator('#rooms li[data-room="general"] .mention-badge')).to_have_count(0)
    expect(bob.page).to_have_title("(1) Chat")
    favicon = bob.page.locator('link[rel="icon"]')
    expect(favicon).to_have_attribute("href", re.compile(r"^data:image/svg\+xml,%3Csvg"))
    assert ">1</text>" in unquote(favicon.get_attribute("href").partition(",")[2])

    # The level is the server's: after a reload general still shows "Nothing".
    bob.page.reload()
    wait_until_connected(bob.page)
    open_room(bob.page, "general")
    expect(bob.page.get_by_label("Notify me")).to_have_value("none")


def test_permission_is_asked_only_when_the_button_is_pressed(chat_person):
    bob = chat_person("bob")
    looking_elsewhere(bob, permission="default")
    button = bob.page.get_by_role("button", name="Turn on notifications")
    expect(button).to_be_visible()
    assert bob.page.evaluate("() => window.__notices.asked") == 0

    button.click()
    expect(button).to_be_hidden()
    assert bob.page.evaluate("() => window.__notices.asked") == 1

    # A browser that refused says so in a muted line, and offers no button.
    looking_elsewhere(bob, permission="denied")
    expect(bob.page.get_by_text("Notifications are blocked in this browser")).to_be_visible()
    expect(button).to_be_hidden()
    assert bob.page.evaluate("() => window.__notices.asked") == 0
