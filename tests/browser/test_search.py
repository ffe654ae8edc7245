"""Searching messages and jumping to one, in real Chromium pages against a real server."""

import re

import pytest

from tests.browser.chat_page import (
    expect,
    marker,
    open_direct,
    open_room,
    row_with_id,
    say,
    say_stored,
)
from tests.browser.test_accessibility import assert_no_blocking, audit, axe_source  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.server]

CYRILLIC = "абвгдежзийклмноп"
# More than the newest page (50) and half an around page (25) beyond it: the
# found message is neither loaded on open nor joined to the newest ones by its page.
FILLERS = 100


def cyrillic_of(tag: str) -> str:
    """The hex `tag` spelt in Cyrillic letters: a word no other test writes."""
    return "".join(CYRILLIC[int(digit, 16)] for digit in tag)


def results(page):
    """The result buttons of the search panel."""
    return page.locator("#search-results .search-result")


def search(page, text: str) -> None:
    """Opens the search with Ctrl+K and types `text` as a person would."""
    page.keyboard.press("Control+k")
    expect(page.locator("#search")).to_be_focused()
    page.keyboard.type(text)


def test_a_found_message_opens_in_context_highlighted_and_live_messages_wait_below(chat_person):
    alice = chat_person("alice")
    tag = marker()
    latin = f"needle{tag}"
    cyrillic = f"Жук{cyrillic_of(tag)}"
    found = say_stored(alice.page, f"Find the {latin} near {cyrillic} please")
    found_id = found.get_attribute("data-id")
    for number in range(FILLERS):
        say(alice.page, f"filler {tag} {number}")
    expect(alice.page.locator("#messages .message.pending")).to_have_count(0)
    expect(
        alice.page.locator("#messages .message[data-id]", has_text=f"filler {tag} {FILLERS - 1}")
    ).to_have_count(1)

    bob = chat_person("bob")
    page = bob.page
    expect(
        page.locator("#messages .message[data-id]", has_text=f"filler {tag} {FILLERS - 1}")
    ).to_be_visible()
    expect(row_with_id(page, found_id)).to_have_count(0)  # older than the newest page

    search(page, latin)
    expect(results(page)).to_have_count(1)
    result = results(page).first
    expect(result.locator("mark")).to_have_text([latin])
    expect(result.locator(".search-result-where")).to_have_text("#general")
    expect(result.locator(".search-result-from")).to_have_text(alice.name)
    expect(result.locator(".search-result-when")).not_to_have_text("")

    result.click()
    target = row_with_id(page, found_id)
    expect(target).to_be_in_viewport()
    expect(target).to_have_class(re.compile(r"\bjumped\b"))
    expect(target).to_be_focused()
    expect(page.locator("#search-panel")).to_be_hidden()
    expect(page.locator("#jump-latest")).to_have_text("Jump to latest ↓")

    # A live message while bob reads the old window is kept for when he goes back.
    say_stored(alice.page, f"live {tag}")
    expect(page.locator("#load-newer")).to_be_visible()
    page.click("#jump-latest")
    live = page.locator("#messages .message[data-id]", has_text=f"live {tag}")
    expect(live).to_be_in_viewport()
    expect(row_with_id(page, found_id)).to_have_count(0)
    seqs = [
        int(seq)
        for seq in page.locator("#messages .message[data-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.seq)"
        )
    ]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    # Many matches come a page at a time, newest first; "Load more" adds the next.
    search(page, f"filler {tag}")
    expect(results(page)).to_have_count(20)
    page.click("#search-more")
    expect(results(page)).to_have_count(40)
    ids = [int(i) for i in results(page).evaluate_all("buttons => buttons.map(b => b.dataset.id)")]
    assert ids == sorted(set(ids), reverse=True)

    # A prefix of the Cyrillic word, in lower case, finds the message too.
    prefix = cyrillic[:6].lower()
    search(page, prefix)
    expect(results(page)).to_have_count(1)
    expect(results(page).first.locator("mark")).to_have_text([cyrillic[:6]])
    expect(results(page).first).to_have_attribute("data-id", found_id)

    # Esc folds the results and gives the focus back to where it was.
    page.focus("#composer")
    search(page, prefix)
    expect(results(page)).to_have_count(1)
    page.keyboard.press("Escape")
    expect(page.locator("#search-panel")).to_be_hidden()
    expect(page.locator("#composer")).to_be_focused()


def test_a_direct_message_is_found_by_its_parties_only(chat_person, axe_source):  # noqa: F811
    carol, dave = chat_person("carol"), chat_person("dave")
    tag = marker()
    word = f"secret{tag}"
    open_direct(carol.page, dave.name)
    say_stored(carol.page, f"the {word} plan")

    # Carol finds it, named by the other party; not when searching only #general.
    search(carol.page, word)
    expect(results(carol.page)).to_have_count(1)
    expect(results(carol.page).first.locator(".search-result-where")).to_have_text(dave.name)
    # The open results, in both colour schemes, pass the accessibility audit.
    violations = audit(carol.page, axe_source, "search light")
    carol.page.emulate_media(color_scheme="dark")
    violations += audit(carol.page, axe_source, "search dark")
    assert_no_blocking(violations)
    open_room(carol.page, "general")
    carol.page.select_option("#search-scope", "here")
    expect(carol.page.locator("#search-status")).to_have_text("No messages found")
    expect(results(carol.page)).to_have_count(0)

    # Erin, a third person, gets nothing; "/" opens the search outside a text field.
    erin = chat_person("erin")
    erin.page.click("#conversation-title")
    erin.page.keyboard.press("/")
    expect(erin.page.locator("#search")).to_be_focused()
    erin.page.keyboard.type(word)
    expect(erin.page.locator("#search-status")).to_have_text("No messages found")
    expect(results(erin.page)).to_have_count(0)
