"""Away and last seen in real Chromium pages: a hidden tab makes its person away in
everyone's online list, in words, and back; an offline direct partner shows when
they were last seen, live and after a reload.
"""

import pytest

from tests.browser.chat_page import expect, open_direct, say_stored, wait_until_connected

pytestmark = [pytest.mark.browser, pytest.mark.server]

# Makes the page believe its tab was hidden (or shown) and tells it, as the browser would.
SET_HIDDEN = """hidden => {
  Object.defineProperty(document, 'visibilityState', {
    configurable: true, get: () => (hidden ? 'hidden' : 'visible'),
  });
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def online_entry(page, user: str):
    """A user's entry in the online list."""
    return page.locator(f'#online li[data-user="{user}"]')


def test_a_hidden_tab_shows_its_person_as_away_in_words_and_back(chat_person):
    alice, bob = chat_person("alice"), chat_person("bob")
    entry = online_entry(alice.page, bob.name)
    expect(entry).to_have_attribute("data-status", "online")
    expect(entry.locator(".presence-text")).to_have_text("online")
    expect(entry.locator(".presence-note")).to_have_text("")

    bob.page.evaluate(SET_HIDDEN, True)
    expect(entry).to_have_attribute("data-status", "away")
    # Written out, not only a colour: the button's name says it too.
    expect(entry.locator(".presence-note")).to_have_text("away")
    expect(entry.locator(".presence-note")).to_be_visible()
    expect(entry.get_by_role("button")).to_have_accessible_name(f"{bob.name} away")

    bob.page.evaluate(SET_HIDDEN, False)
    expect(entry).to_have_attribute("data-status", "online")
    expect(entry.locator(".presence-note")).to_have_text("")
    expect(entry.get_by_role("button")).to_have_accessible_name(f"{bob.name} online")


def test_an_offline_direct_partner_shows_when_last_seen_live_and_after_a_reload(chat_person):
    alice, carol = chat_person("alice"), chat_person("carol")
    open_direct(alice.page, carol.name)
    say_stored(alice.page, "see you later")
    direct = alice.page.locator(f'#direct li[data-user="{carol.name}"]')
    expect(direct).to_have_attribute("data-status", "online")

    # The offline presence frame carries the time.
    carol.page.close()
    expect(direct).to_have_attribute("data-status", "offline")
    expect(direct.locator(".presence-note")).to_have_text("last seen just now")
    expect(online_entry(alice.page, carol.name)).to_have_count(0)

    # After a reload `hello.last_seen` tells it.
    alice.page.reload()
    wait_until_connected(alice.page)
    direct = alice.page.locator(f'#direct li[data-user="{carol.name}"]')
    expect(direct.locator(".presence-note")).to_have_text("last seen just now")
