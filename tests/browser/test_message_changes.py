"""Messages that change, in real Chromium pages of several people: edits, deletions
with their tombstones, and reactions, each seen the same way on every page.
"""

import re

import pytest

from tests.browser.chat_page import (
    expect,
    marker,
    message_row,
    row_with_id,
    say_stored,
    wait_until_connected,
)

pytestmark = [pytest.mark.browser, pytest.mark.server]

EDITED_TITLE = re.compile(r"^edited \S")


def test_edits_reach_the_other_page_and_only_the_author_and_staff_get_the_actions(
    chat_person, staff_person
):
    alice, bob = chat_person("alice"), chat_person("bob")
    tag = marker()
    first = say_stored(alice.page, f"first {tag}")
    say_stored(alice.page, f"second {tag}")

    # Hover, "Edit message", change, Enter: bob sees the new body and an edited mark.
    first.hover()
    first.get_by_role("button", name="Edit message").click()
    editor = first.locator(".edit-input")
    expect(editor).to_be_focused()
    editor.fill(f"first, fixed {tag}")
    editor.press("Enter")
    seen_by_bob = message_row(bob.page, f"first, fixed {tag}")
    expect(seen_by_bob.locator(".body")).to_have_text(f"first, fixed {tag}")
    expect(seen_by_bob.locator(".meta .edited")).to_be_visible()
    expect(seen_by_bob.locator(".meta .edited")).to_have_attribute("title", EDITED_TITLE)
    expect(first.locator(".meta .edited")).to_be_visible()

    # Up in the empty composer opens my last message; Esc leaves it as it was.
    alice.page.press("#composer", "ArrowUp")
    second = message_row(alice.page, f"second {tag}")
    expect(second).to_have_class(re.compile(r"\bediting\b"))
    expect(second.locator(".edit-input")).to_be_focused()
    expect(second.locator(".edit-input")).to_have_value(f"second {tag}")
    second.locator(".edit-input").press_sequentially(" and more")
    second.locator(".edit-input").press("Escape")
    expect(second.locator(".edit-input")).to_have_count(0)
    expect(second).not_to_have_class(re.compile(r"\bediting\b"))
    expect(second.locator(".body")).to_have_text(f"second {tag}")
    expect(second.locator(".meta .edited")).to_be_hidden()

    # Bob may react to alice's message, not edit or delete it; staff may delete it.
    others = message_row(bob.page, f"second {tag}")
    others.hover()
    expect(others.get_by_role("button", name="Add a reaction")).to_be_visible()
    expect(others.get_by_role("button", name="Edit message")).to_have_count(0)
    expect(others.get_by_role("button", name="Delete message")).to_have_count(0)
    staff_view = message_row(staff_person.page, f"second {tag}")
    staff_view.hover()
    expect(staff_view.get_by_role("button", name="Delete message")).to_be_visible()
    expect(staff_view.get_by_role("button", name="Edit message")).to_have_count(0)


def test_a_deleted_message_is_a_tombstone_in_its_place_on_every_page_even_after_a_reload(
    chat_person,
):
    alice, bob = chat_person("alice"), chat_person("bob")
    tag = marker()
    before = say_stored(alice.page, f"before {tag}").get_attribute("data-id")
    doomed = say_stored(alice.page, f"doomed {tag}")
    doomed_id = doomed.get_attribute("data-id")
    after = say_stored(alice.page, f"after {tag}").get_attribute("data-id")
    # A reaction first: the tombstone must lose it.
    seen_by_bob = row_with_id(bob.page, doomed_id)
    seen_by_bob.hover()
    seen_by_bob.get_by_role("button", name="Add a reaction").click()
    seen_by_bob.get_by_role("button", name="React with 👍").click()
    expect(doomed.locator(".reactions .reaction")).to_have_count(1)

    doomed.hover()
    doomed.get_by_role("button", name="Delete message").click()
    doomed.locator(".confirm-delete [data-action=confirm-delete]").click()

    # Both pages, then both again after a reload (from history): the tombstone sits
    # between the same neighbours, with no actions and no reactions.
    in_place = (
        f'#messages .message[data-id="{before}"]'
        f' + .message.deleted[data-id="{doomed_id}"]'
        f' + .message[data-id="{after}"]'
    )
    for reload in (False, True):
        for page in (alice.page, bob.page):
            if reload:
                page.reload()
                wait_until_connected(page)
            tombstone = row_with_id(page, doomed_id)
            expect(page.locator(in_place)).to_have_count(1)
            expect(tombstone.locator(".body")).to_have_text("message deleted")
            expect(tombstone.locator(".reactions .reaction")).to_have_count(0)
            tombstone.hover()
            expect(tombstone.get_by_role("button")).to_have_count(0)


def chip(row, emoji: str):
    """The reaction chip of `emoji` under a message row."""
    return row.locator(f'.reactions .reaction[data-emoji="{emoji}"]')


def expect_chip(row, emoji: str, *, count: int, pressed: bool, who: str) -> None:
    """Checks one reaction chip as a person sees it: count, whether it is mine, who reacted."""
    expect(chip(row, emoji).locator(".reaction-count")).to_have_text(str(count))
    expect(chip(row, emoji)).to_have_attribute("aria-pressed", str(pressed).lower())
    expect(chip(row, emoji)).to_have_attribute("title", who)


def test_reactions_from_the_picker_and_typed_are_toggled_the_same_on_both_pages(chat_person):
    alice, bob = chat_person("alice"), chat_person("bob")
    tag = marker()
    mine = say_stored(alice.page, f"react to me {tag}")
    theirs = row_with_id(bob.page, mine.get_attribute("data-id"))

    # Alice picks 👍 from the picker, then types 🦄 into it.
    mine.hover()
    mine.get_by_role("button", name="Add a reaction").click()
    mine.locator(".reaction-picker").get_by_role("button", name="React with 👍").click()
    mine.hover()
    mine.get_by_role("button", name="Add a reaction").click()
    mine.get_by_label("Any emoji").fill("🦄")
    mine.locator("[data-action=pick-typed]").click()
    expect(mine.locator(".reaction-picker")).to_have_count(0)
    for row in (mine, theirs):
        expect(row.locator(".reactions .reaction")).to_have_count(2)
        expect(row.locator(".reactions .reaction").first).to_have_attribute("data-emoji", "👍")
    expect_chip(mine, "🦄", count=1, pressed=True, who="you")
    expect_chip(theirs, "🦄", count=1, pressed=False, who=alice.name)

    # Bob adds himself to 👍 by its chip; users are listed in the order they reacted.
    chip(theirs, "👍").click()
    expect_chip(theirs, "👍", count=2, pressed=True, who=f"{alice.name}, you")
    expect_chip(mine, "👍", count=2, pressed=True, who=f"you, {bob.name}")

    # Alice's own chip takes her reaction away again.
    chip(mine, "👍").click()
    expect_chip(mine, "👍", count=1, pressed=False, who=bob.name)
    expect_chip(theirs, "👍", count=1, pressed=True, who="you")
    expect_chip(theirs, "🦄", count=1, pressed=False, who=alice.name)
