"""Staff moderation in real Chromium pages: the staff menu of the online list mutes a
person, whose page then says its message was not sent and until when; a deactivation
asks first, then ends the person's session; nobody else gets the menu.
"""

import re

import pytest

from tests.browser.chat_page import expect, marker, message_row, open_direct, say, say_stored

pytestmark = [pytest.mark.browser, pytest.mark.server]


def moderate(page, user: str):
    """Opens the staff menu of `user` in the online list; returns the menu."""
    online = page.locator("#online")
    online.get_by_role("button", name=f"Moderate {user}").click()
    menu = online.get_by_role("menu", name=f"Moderate {user}")
    expect(menu).to_be_visible()
    return menu


def test_staff_mute_a_person_from_the_online_list_and_their_page_says_so(staff_person, chat_person):
    bob = chat_person("bob")
    staff = staff_person.page
    menu = moderate(staff, bob.name)
    menu.get_by_role("menuitem", name="Mute 10 min").click()
    expect(menu).to_have_count(0)
    expect(staff.locator("#info-notice")).to_contain_text(f"{bob.name} is muted until")

    text = f"can I still talk {marker()}"
    say(bob.page, text)
    failed = bob.page.locator("#messages .message.failed").filter(has_text=text)
    expect(failed).to_have_count(1)
    expect(failed.locator(".reason")).to_contain_text("You are muted until")

    # Lifted from the same menu: bob speaks again.
    moderate(staff, bob.name).get_by_role("menuitem", name="Unmute").click()
    expect(staff.locator("#info-notice")).to_contain_text(f"{bob.name} is no longer muted")
    say_stored(bob.page, f"back again {marker()}")


def test_deactivation_asks_first_then_ends_the_persons_session(staff_person, chat_person):
    bob = chat_person("bob")
    staff = staff_person.page
    menu = moderate(staff, bob.name)
    menu.get_by_role("menuitem", name="Deactivate…").click()
    expect(menu).to_contain_text(f"Deactivate {bob.name}?")
    # Cancel leaves bob alone; the next time, the confirmed step deactivates.
    menu.get_by_role("menuitem", name="Cancel").click()
    expect(menu).to_have_count(0)
    say_stored(bob.page, f"still here {marker()}")
    menu = moderate(staff, bob.name)
    menu.get_by_role("menuitem", name="Deactivate…").click()
    menu.get_by_role("menuitem", name="Deactivate", exact=True).click()
    expect(bob.page).to_have_url(re.compile(r"/accounts/login/"))
    expect(staff.locator("#info-notice")).to_contain_text(f"{bob.name}'s account is deactivated")


def test_people_who_are_not_staff_get_no_staff_menu(chat_person):
    alice, bob = chat_person("alice"), chat_person("bob")
    expect(alice.page.locator(f'#online li[data-user="{bob.name}"]')).to_have_count(1)
    expect(alice.page.locator(".staff-menu-button")).to_have_count(0)


def test_staff_mute_a_sender_in_the_open_room_only_from_their_message(staff_person, chat_person):
    bob = chat_person("bob")
    staff = staff_person.page
    text = f"rude words {marker()}"
    say_stored(bob.page, text)
    row = message_row(staff, text)
    row.hover()
    row.get_by_role("button", name=f"Moderate {bob.name}").click()
    menu = row.get_by_role("menu", name=f"Moderate {bob.name}")
    menu.get_by_label("Only in general").check()
    menu.get_by_role("menuitem", name="Mute 1 h").click()
    expect(staff.locator("#info-notice")).to_contain_text(f"{bob.name} is muted in general until")

    refused = f"again {marker()}"
    say(bob.page, refused)
    failed = bob.page.locator("#messages .message.failed").filter(has_text=refused)
    expect(failed.locator(".reason")).to_contain_text("You are muted until")
    # Elsewhere bob still talks: a direct message to the staff member goes through.
    open_direct(bob.page, staff_person.name)
    say_stored(bob.page, f"sorry {marker()}")
