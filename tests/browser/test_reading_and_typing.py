"""Who has read what and who is typing, in real Chromium pages: unread badges and the
"new messages" line across reloads and tabs, "Seen" in a direct conversation, and
"is typing…" shown only to the people of the conversation.
"""

import pytest

from tests.browser.chat_page import (
    expect,
    marker,
    open_direct,
    open_room,
    row_with_id,
    say,
    say_stored,
    wait_until_connected,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]

# The "is typing" line at the first moment a row with this body is drawn.
TYPING_WHEN_ROW_SHOWS = """text => {
  const bodies = [...document.querySelectorAll('#messages .message[data-id] .body')];
  if (!bodies.some((body) => body.textContent === text)) return null;
  return { typing: document.getElementById('typing').textContent };
}"""


def room_badge(page, room: str = "general"):
    """The unread badge of a room in the sidebar."""
    return page.locator(f'#rooms li[data-room="{room}"] .badge')


def direct_badge(page, user: str):
    """The unread badge of the direct conversation with `user` in the sidebar."""
    return page.locator(f'#direct li[data-user="{user}"] .badge')


def test_typing_shows_until_the_message_lands_and_a_direct_one_never_reaches_a_third_user(
    chat_person,
):
    alice, bob, carol = chat_person("alice"), chat_person("bob"), chat_person("carol")
    tag = marker()

    # In a room: bob sees alice typing, until her message is drawn.
    alice.page.locator("#composer").press_sequentially(f"hello {tag}")
    typing = bob.page.locator("#typing")
    expect(typing).to_have_text(f"{alice.name} is typing…")
    expect(typing.locator("bdi.typist")).to_have_text(alice.name)
    alice.page.press("#composer", "Enter")
    when_drawn = bob.page.wait_for_function(TYPING_WHEN_ROW_SHOWS, arg=f"hello {tag}")
    assert when_drawn.json_value() == {"typing": ""}

    # In a direct conversation: alice sees bob typing; carol, in general, never does.
    open_direct(alice.page, bob.name)
    open_direct(bob.page, alice.name)
    bob.page.locator("#composer").press_sequentially(f"psst {tag}")
    expect(alice.page.locator("#typing")).to_have_text(f"{bob.name} is typing…")
    bob.page.press("#composer", "Enter")
    open_room(bob.page, "general")
    # A later frame that certainly reaches carol: bob's next message in general.
    with carol.socket.expect_event("framereceived", lambda payload: f"later {tag}" in payload):
        say(bob.page, f"later {tag}")
    typists = [frame["user"] for frame in carol.frames if frame["type"] == "typing"]
    assert alice.name in typists  # her typing in general did reach carol
    assert bob.name not in typists
    expect(carol.page.locator("#typing")).to_be_empty()


def test_unread_badges_and_the_new_messages_line_survive_a_reload_and_clear_in_every_tab(
    chat_person,
):
    alice, bob = chat_person("alice"), chat_person("bob")
    tag = marker()
    open_direct(bob.page, bob.name)  # notes to self: looking elsewhere
    say_stored(alice.page, f"one {tag}")
    say_stored(alice.page, f"two {tag}")
    open_direct(alice.page, bob.name)
    say_stored(alice.page, f"psst {tag}")
    expect(direct_badge(bob.page, alice.name)).to_have_text("1")
    expect(room_badge(bob.page)).to_have_text("2")

    bob.page.reload()
    wait_until_connected(bob.page)
    other_tab = bob.page.context.new_page()
    other_tab.goto(bob.page.url)
    wait_until_connected(other_tab)
    for tab in (bob.page, other_tab):
        expect(room_badge(tab)).to_have_text("2")
        expect(direct_badge(tab, alice.name)).to_have_text("1")
        expect(tab).to_have_title("(3) Chat")

    # Reading in the first tab puts the line above the first unread message there,
    # and clears the badge in the other tab.
    open_room(bob.page, "general")
    expect(bob.page.locator(".unread-divider + .message")).to_contain_text(f"one {tag}")
    expect(room_badge(bob.page)).to_have_count(0)
    expect(room_badge(other_tab)).to_have_count(0)
    expect(direct_badge(other_tab, alice.name)).to_have_text("1")
    bob.page.click(f'#direct li[data-user="{alice.name}"]')
    expect(bob.page.locator(".unread-divider + .message")).to_contain_text(f"psst {tag}")
    expect(direct_badge(other_tab, alice.name)).to_have_count(0)
    expect(other_tab).to_have_title("Chat")


def test_seen_shows_under_my_last_message_once_the_other_person_has_read_it(chat_person):
    alice, bob = chat_person("alice"), chat_person("bob")
    tag = marker()
    open_direct(alice.page, bob.name)
    earlier = say_stored(alice.page, f"are you there {tag}")
    last = say_stored(alice.page, f"hello? {tag}")
    expect(last.locator(".seen")).to_be_hidden()

    bob.page.click(f'#direct li[data-user="{alice.name}"]')
    expect(last.locator(".seen")).to_be_visible()
    expect(last.locator(".seen")).to_have_text("Seen")
    expect(earlier.locator(".seen")).to_be_hidden()

    # After a reload the page learns it from hello.
    last_id = last.get_attribute("data-id")
    alice.page.reload()
    wait_until_connected(alice.page)
    expect(row_with_id(alice.page, last_id).locator(".seen")).to_be_visible()
