"""A room renamed or removed by staff in the admin, seen from a page open on it: the page
moves to general, says why, drops the room from the sidebar and sends there.
"""

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.server import Browser

pytestmark = [pytest.mark.browser, pytest.mark.server]

ROOMS = "/admin/chat/room/"


class RoomAdmin:
    """Staff at the Django admin over HTTP: each change is one committed admin request."""

    def __init__(self, base_url: str, login: tuple[str, str]) -> None:
        self.browser = Browser(base_url)
        self.added: list[int] = []  # ids of the rooms added, to remove them afterwards
        username, password = login
        status, headers, _ = self.browser.post_form(
            "/admin/login/?next=/admin/",
            {"username": username, "password": password, "next": "/admin/"},
        )
        assert status == 302 and headers["location"] == "/admin/", "admin login failed"

    def add(self, name: str) -> int:
        """Adds a room; returns its id."""
        status, headers, body = self.browser.post_form(
            ROOMS + "add/", {"name": name, "_continue": "1"}
        )
        assert status == 302, body[:500]
        self.added.append(int(re.search(r"/(\d+)/change/", headers["location"])[1]))
        return self.added[-1]

    def rename(self, room_id: int, name: str) -> None:
        """Renames a room."""
        status, _, body = self.browser.post_form(
            f"{ROOMS}{room_id}/change/", {"name": name, "_save": "1"}
        )
        assert status == 302, body[:500]

    def delete(self, room_id: int) -> None:
        """Deletes a room (and its messages)."""
        status, _, body = self.browser.post_form(f"{ROOMS}{room_id}/delete/", {"post": "yes"})
        assert status == 302, body[:500]


@pytest.fixture
def room_admin(site_server, staff_login):
    """The admin, and afterwards the removal of every room it added."""
    admin = RoomAdmin(site_server.url, staff_login)
    yield admin
    for room_id in admin.added:
        # A room the test deleted already is answered with a redirect too.
        admin.browser.post_form(f"{ROOMS}{room_id}/delete/", {"post": "yes"})


def say(page: Page, text: str) -> None:
    page.fill("#composer", text)
    page.press("#composer", "Enter")


def room_entry(page: Page, name: str):
    return page.locator(f'#rooms li[data-room="{name}"]')


def open_room(page: Page, name: str) -> None:
    """Waits for the room to be listed (its `rooms` frame arrived) and opens it."""
    room_entry(page, name).click()
    expect(page.locator("#conversation-title")).to_have_text(f"# {name}")


def test_a_page_in_a_renamed_room_moves_to_general_says_why_and_sends_there(room_admin, signed_up):
    marker = uuid.uuid4().hex[:8]
    room = f"x{marker}"
    room_id = room_admin.add(room)
    reader = signed_up(f"reader{marker}")
    neighbour = signed_up(f"neighbour{marker}")  # stays in general throughout
    open_room(reader, room)
    say(reader, f"in the room {marker}")
    expect(reader.locator("#messages .message[data-id]")).to_have_count(1)

    room_admin.rename(room_id, f"{room}-renamed")

    notice = reader.locator("#info-notice")
    expect(notice).to_contain_text(
        f"The room #{room} was removed or renamed; you are now in #general."
    )
    expect(notice).to_be_visible()
    expect(notice).to_have_attribute("aria-live", "polite")
    expect(reader.locator("#conversation-title")).to_have_text("# general")
    expect(reader).to_have_url(re.compile("#room%3Ageneral$"))
    expect(room_entry(reader, room)).to_have_count(0)
    expect(room_entry(reader, f"{room}-renamed")).to_have_count(1)

    # The next message goes to general: acknowledged, and seen by someone there.
    say(reader, f"after the move {marker}")
    sent = reader.locator("#messages .message[data-id]").filter(has_text=f"after the move {marker}")
    expect(sent).to_have_count(1)
    expect(reader.locator("#messages .message.pending, #messages .message.failed")).to_have_count(0)
    seen = neighbour.locator("#messages .message[data-id]").filter(
        has_text=f"after the move {marker}"
    )
    expect(seen.locator(".from")).to_have_text(f"reader{marker}")


def test_a_page_in_a_deleted_room_moves_to_general_and_a_bystander_page_stays_put(
    room_admin, signed_up
):
    marker = uuid.uuid4().hex[:8]
    room, other = f"gone{marker}", f"kept{marker}"
    room_id = room_admin.add(room)
    room_admin.add(other)
    reader = signed_up(f"reader{marker}")
    bystander = signed_up(f"bystander{marker}")  # in the other room: nothing to move
    open_room(reader, room)
    open_room(bystander, other)

    room_admin.delete(room_id)

    expect(reader.locator("#info-notice")).to_contain_text(
        f"The room #{room} was removed or renamed; you are now in #general."
    )
    expect(reader.locator("#conversation-title")).to_have_text("# general")
    expect(room_entry(reader, room)).to_have_count(0)
    # The same rooms frame took the room off the bystander's list, and left the page alone.
    expect(room_entry(bystander, room)).to_have_count(0)
    expect(bystander.locator("#conversation-title")).to_have_text(f"# {other}")
    expect(bystander.locator("#info-notice .notice-item")).to_have_count(0)

    say(reader, f"still here {marker}")
    expect(
        reader.locator("#messages .message[data-id]").filter(has_text=f"still here {marker}")
    ).to_have_count(1)
