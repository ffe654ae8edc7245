"""A private room seen from open pages: only its members' sidebars list it, and a member
removed in the admin loses it at once: the page moves to general and keeps none of its
messages.
"""

import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.chat_page import say
from tests.browser.test_rooms_change import RoomAdmin, open_room, room_entry
from tests.server import Browser
from tests.test_private_rooms_multiprocess import admin_room_id, admin_room_save, admin_user_id

pytestmark = [pytest.mark.browser, pytest.mark.server]


@pytest.fixture
def room_admin(site_server, staff_login):
    """The admin, and afterwards the removal of every room it added."""
    admin = RoomAdmin(site_server.url, staff_login)
    yield admin
    for room_id in admin.added:
        admin.browser.post_form(f"/admin/chat/room/{room_id}/delete/", {"post": "yes"})


def test_only_members_see_a_private_room_and_a_removed_one_loses_it_at_once(
    site_server, room_admin, signed_up
):
    marker = uuid.uuid4().hex[:8]
    room, later_room = f"p{marker}", f"o{marker}"
    member = signed_up(f"member{marker}")
    other = signed_up(f"other{marker}")
    stays = f"stays{marker}"
    Browser(site_server.url).signup(stays)
    staff = room_admin.browser
    ids = [admin_user_id(staff, name) for name in (f"member{marker}", stays)]

    assert admin_room_save(staff, "/admin/chat/room/add/", room, ids) == 302
    room_admin.added.append(admin_room_id(staff, room))
    open_room(member, room)
    say(member, f"secret plan {marker}")
    expect(member.locator("#messages .message[data-id]")).to_have_count(1)
    # An open room added later reaches the other page after the private one would have.
    room_admin.add(later_room)
    expect(room_entry(other, later_room)).to_have_count(1)
    expect(room_entry(other, room)).to_have_count(0)

    path = f"/admin/chat/room/{room_admin.added[0]}/change/"
    assert admin_room_save(staff, path, room, ids[1:]) == 302
    expect(member.locator("#info-notice")).to_contain_text(f"The room #{room} was removed")
    expect(member.locator("#conversation-title")).to_have_text("# general")
    expect(room_entry(member, room)).to_have_count(0)
    expect(member.locator("#messages")).not_to_contain_text(f"secret plan {marker}")
