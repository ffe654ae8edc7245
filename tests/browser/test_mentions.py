"""Mentions in real Chromium pages: the composer's list of people under `@`, driven by
keys and clicks, and the "@N" badge of a room that mentions me, kept across a reload
and cleared by reading.
"""

import pytest

from tests.browser.chat_page import (
    expect,
    marker,
    open_direct,
    open_room,
    say_stored,
    wait_until_connected,
)
from tests.server import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.server]

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Runs through the DevTools protocol (no script element), so the page's policy allows it.
AUDIT_COMPOSER = """{source}
;axe.run('#composer-form', {{ runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }})
  .then((result) => result.violations.map((violation) => violation.id + ': ' + violation.help))"""


def mention_badge(page, room: str = "general"):
    """The "@N" badge of a room in the sidebar."""
    return page.locator(f'#rooms li[data-room="{room}"] .badge.mention-badge')


def unread_badge(page, room: str = "general"):
    """The plain unread badge of a room in the sidebar."""
    return page.locator(f'#rooms li[data-room="{room}"] .badge:not(.mention-badge)')


def acks(person) -> int:
    """How many messages of this person the server has acknowledged so far."""
    return sum(1 for frame in person.frames if frame["type"] == "ack")


def test_the_list_under_at_inserts_a_name_by_keys_and_the_mentioned_person_gets_a_badge(
    chat_person,
):
    alice, bob = chat_person("alice"), chat_person("bob")
    tag = marker()
    say_stored(bob.page, f"here {tag}")  # bob has spoken in general
    open_direct(bob.page, bob.name)  # then looks elsewhere: his notes
    composer, options = (
        alice.page.locator("#composer"),
        alice.page.locator("#mention-list [role=option]"),
    )
    listbox = alice.page.locator("#mention-list[role=listbox]")
    sent_before = acks(alice)

    # `@b` offers bob, the room's most recent speaker, first and selected.
    composer.press_sequentially("@b")
    expect(listbox).to_be_visible()
    expect(composer).to_have_attribute("aria-expanded", "true")
    expect(composer).to_have_attribute("aria-autocomplete", "list")
    expect(composer).to_have_attribute("aria-controls", "mention-list")
    expect(options.first).to_have_text(f"@{bob.name}")
    expect(options.first).to_have_attribute("aria-selected", "true")
    first_id = options.first.get_attribute("id")
    expect(composer).to_have_attribute("aria-activedescendant", first_id)
    expect(alice.page.get_by_role("combobox", name="Message")).to_have_attribute(
        "aria-expanded", "true"
    )
    audit = AUDIT_COMPOSER.format(source=AXE.read_text(encoding="utf-8"))
    assert alice.page.evaluate(audit) == []

    # Esc closes the list and nothing else: the text stays, nothing is sent.
    composer.press("Escape")
    expect(listbox).to_be_hidden()
    expect(composer).to_have_attribute("aria-expanded", "false")
    expect(composer).to_have_value("@b")

    # Down and back up, then Enter puts `@bob ` in and does not send.
    composer.fill("")
    composer.press_sequentially("look @b")
    expect(options.first).to_have_text(f"@{bob.name}")
    composer.press("ArrowDown")
    composer.press("ArrowUp")
    expect(composer).to_have_attribute("aria-activedescendant", first_id)
    composer.press("Enter")
    expect(composer).to_have_value(f"look @{bob.name} ")
    expect(listbox).to_be_hidden()
    composer.press_sequentially(f"at this {tag}")
    composer.press("Enter")  # the next Enter sends
    body = f"look @{bob.name} at this {tag}"
    expect(
        alice.page.locator("#messages .message[data-id] .body").filter(has_text=f"at this {tag}")
    ).to_have_text(body)
    expect(composer).to_have_value("")
    # One message went out: neither the Enter that chose nor Esc sent anything.
    expect(alice.page.locator("#messages .message.pending")).to_have_count(0)
    assert acks(alice) == sent_before + 1

    # bob, in his notes, sees the mention apart from the unread count, a plain message added.
    say_stored(alice.page, f"and no mention {tag}")
    expect(mention_badge(bob.page)).to_have_text("@1")
    expect(mention_badge(bob.page)).to_have_attribute("aria-label", "1 mention")
    expect(unread_badge(bob.page)).to_have_text("2")

    # After a reload the badge comes back from hello.
    bob.page.reload()
    wait_until_connected(bob.page)
    expect(mention_badge(bob.page)).to_have_text("@1")
    expect(unread_badge(bob.page)).to_have_text("2")

    # Opening the room reads it, and that clears the badge, for good.
    open_room(bob.page, "general")
    expect(mention_badge(bob.page)).to_have_count(0)
    expect(unread_badge(bob.page)).to_have_count(0)
    open_direct(bob.page, bob.name)
    bob.page.reload()
    wait_until_connected(bob.page)
    expect(bob.page.locator('#rooms li[data-room="general"]')).to_be_visible()
    expect(mention_badge(bob.page)).to_have_count(0)


def test_a_click_inserts_a_name_and_a_direct_conversation_offers_the_other_person(chat_person):
    alice, bob = chat_person("alice"), chat_person("bob")
    open_direct(alice.page, bob.name)
    composer = alice.page.locator("#composer")
    composer.press_sequentially("thanks @")
    expect(alice.page.locator("#mention-list")).to_be_hidden()  # `@` alone opens nothing
    composer.press_sequentially(bob.name[:2].upper())  # the case of the prefix does not matter
    options = alice.page.locator("#mention-list [role=option]")
    expect(options).to_have_count(1)
    options.first.click()
    expect(composer).to_have_value(f"thanks @{bob.name} ")
    expect(composer).to_be_focused()
    expect(alice.page.locator("#mention-list")).to_be_hidden()
