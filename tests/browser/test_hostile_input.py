"""Hostile markup in a real Chromium: message bodies and user names are shown as
text on every path (live, history after a reload, online list, direct list), never
run; the admin works under the site's Content-Security-Policy.
"""

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.server import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.server]

# Each payload, if it ever ran, would set window.__pwned or open a dialog.
PAYLOADS = [
    '<img src=x onerror="window.__pwned=1;alert(1)">',
    '<svg onload="window.__pwned=2;alert(2)"></svg>',
    '"><script>window.__pwned=3;alert(3)</script>',
    "javascript:window.__pwned=4;alert(4)",
    '<a href="javascript:window.__pwned=5;alert(5)">x</a>',
    '<iframe srcdoc="<script>parent.__pwned=6;parent.alert(6)</script>"></iframe>',
    "</textarea><script>window.__pwned=7;alert(7)</script>",
    '<details open ontoggle="window.__pwned=8;alert(8)">',
    "{{constructor.constructor('window.__pwned=9;alert(9)')()}}",
    "<style>*{display:none!important}</style>",
]
# What a payload would have become had it been parsed as markup.
INJECTED = "img, svg, script, iframe, details, style, a[href^='javascript:']"
# Usernames as hostile as Django's validator allows: only letters, digits and @.+-_,
# so the danger is to JavaScript objects and to CSS selectors built from names.
PROTO_NAME = "__proto__"


class Watch:
    """What a page did that it should not: dialogs, CSP violations, page errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", lambda message: self.console.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        # Runs before any page script, and is not subject to the page's policy.
        page.add_init_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation', e =>"
            " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_nothing_ran(self) -> None:
        """Asserts no payload ran and the page's policy never had to block anything."""
        assert self.page.evaluate("window.__pwned") is None
        assert self.dialogs == []
        assert self.page.evaluate("window.__violations") == []
        assert [line for line in self.console if "Content Security Policy" in line] == []
        assert self.errors == []


def wait_until_connected(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-socket-state", "open", timeout=10_000)


def sign_up(page: Page, url: str, username: str) -> None:
    """Signs up through the page, as a person would."""
    page.goto(url + "/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("button[type=submit]")


def say(page: Page, text: str) -> None:
    page.fill("#composer", text)
    page.press("#composer", "Enter")


def assert_shown_as_text(page: Page, name: str, bodies: list[str]) -> None:
    """Each body is one stored message from `name`, shown character for character."""
    for body in bodies:
        row = page.locator("#messages .message[data-id]").filter(has_text=body[-12:])
        expect(row).to_have_count(1)
        expect(row.locator(".body")).to_have_text(body)
        expect(row.locator(".from")).to_have_text(name)
    # Files other tests sent to the shared room show as thumbnails: real images,
    # inside a message's attachments, never made from a body or a name.
    injected = page.locator("#messages").locator(f":is({INJECTED}):not(.attachments *)")
    expect(injected).to_have_count(0)


def test_hostile_signup_name_is_refused_and_echoed_as_text(site_server, new_page):
    page = new_page()
    watch = Watch(page)
    hostile = '"><img src=x onerror="window.__pwned=1;alert(1)">'
    sign_up(page, site_server.url, hostile)
    expect(page.locator(".field.has-errors .errorlist")).to_contain_text("Enter a valid username")
    expect(page.locator("#id_username")).to_have_value(hostile)
    assert page.locator("main img").count() == 0
    watch.assert_nothing_ran()


def test_hostile_bodies_and_names_never_run_live_after_reload_or_in_the_lists(
    site_server, new_page
):
    marker = uuid.uuid4().hex[:8]
    dotted = f"-1.+@_{marker}"  # starts like a number, full of selector punctuation
    bodies = [f"{payload} #{marker}{n:02d}" for n, payload in enumerate(PAYLOADS)]

    sender, observer = new_page(), new_page()
    watches = [Watch(sender), Watch(observer)]
    sign_up(sender, site_server.url, dotted)
    wait_until_connected(sender)
    sign_up(observer, site_server.url, f"observer{marker}")
    wait_until_connected(observer)

    # The live path: each body reaches the other person as text.
    for body in bodies:
        say(sender, body)
    expect(sender.locator("#messages .message.pending")).to_have_count(0, timeout=10_000)
    assert_shown_as_text(observer, dotted, bodies)
    assert_shown_as_text(sender, dotted, bodies)

    # The online list shows the name as text, and picking it opens the conversation.
    entry = observer.locator("#online li").filter(has_text=dotted)
    expect(entry).to_have_count(1)
    entry.click()
    expect(observer.locator("#conversation-title")).to_have_text(dotted)
    say(observer, bodies[0])
    expect(sender.locator("#direct li").filter(has_text=f"observer{marker}")).to_have_count(1)

    # The history path: after a reload the same messages come from the server's store.
    observer.reload()
    wait_until_connected(observer)
    observer.click("#rooms li[data-room=general]")
    assert_shown_as_text(observer, dotted, bodies)
    expect(observer.locator("#direct li").filter(has_text=dotted)).to_have_count(1)
    for watch in watches:
        watch.assert_nothing_ran()


def test_a_user_named_proto_can_chat_and_be_listed(site_server, new_page):
    # __proto__, constructor ... are names Django accepts and JavaScript objects do not.
    marker = uuid.uuid4().hex[:8]
    proto, observer = new_page(), new_page()
    watches = [Watch(proto), Watch(observer)]
    sign_up(proto, site_server.url, PROTO_NAME)
    if "/accounts/signup/" in proto.url:  # taken by an earlier run on this database
        pytest.skip("__proto__ already exists in this test database")
    wait_until_connected(proto)
    sign_up(observer, site_server.url, f"observer{marker}")
    wait_until_connected(observer)

    expect(observer.locator("#online li").filter(has_text=PROTO_NAME)).to_have_count(1)
    say(proto, f"hello from the prototype {marker}")
    assert_shown_as_text(observer, PROTO_NAME, [f"hello from the prototype {marker}"])
    observer.locator("#online li").filter(has_text=PROTO_NAME).click()
    say(observer, f"a direct word {marker}")
    entry = proto.locator("#direct li").filter(has_text=f"observer{marker}")
    expect(entry).to_have_count(1)
    entry.click()
    expect(proto.locator("#messages .message[data-id] .body")).to_have_text(
        [f"a direct word {marker}"]
    )
    proto.reload()
    wait_until_connected(proto)
    expect(observer.locator("#online li").filter(has_text=PROTO_NAME)).to_have_count(1)
    for watch in watches:
        watch.assert_nothing_ran()


# --- The admin under the Content-Security-Policy -----------------------------------


def test_the_admin_works_under_the_policy_without_a_single_violation(
    site_server, new_page, staff_login
):
    page = new_page()
    watch = Watch(page)
    base = site_server.url
    # A hostile message for the admin to list (and to show as text).
    marker = uuid.uuid4().hex[:8]
    hostile = f"{PAYLOADS[0]} admin{marker}"
    sender = new_page()
    sign_up(sender, base, f"fodder{marker}")
    wait_until_connected(sender)
    say(sender, hostile)
    expect(sender.locator("#messages .message.pending")).to_have_count(0)

    page.goto(base + "/admin/login/?next=/admin/")
    page.fill("#id_username", staff_login[0])
    page.fill("#id_password", staff_login[1])
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(r"/admin/$"))

    # The navigation filter, the changelist's select-all and search, a message's page.
    page.goto(base + "/admin/chat/message/")
    expect(page.locator("#result_list")).to_be_visible()
    page.click("#action-toggle")
    expect(page.locator(".action-counter")).to_contain_text("selected")
    page.fill("#nav-filter", "room")
    page.fill("#searchbar", f"admin{marker}")
    page.press("#searchbar", "Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text(hostile)
    page.locator("#result_list tbody tr th a").first.click()
    expect(page.locator("#message_form textarea")).to_have_value(hostile)

    # A user's page: date and time shortcuts, and the password form.
    page.goto(base + "/admin/auth/user/")
    page.locator("#result_list tbody tr th a").first.click()
    page.locator(".datetimeshortcuts a").first.click()
    page.goto(page.url.replace("/change/", "/password/"))
    expect(page.locator("#id_password1")).to_be_visible()
    for path in ("/admin/chat/room/add/", "/admin/axes/accessattempt/"):
        page.goto(base + path)
        expect(page.locator("#content")).to_be_visible()
    assert page.locator("img").count() > 0  # icons load under img-src 'self'
    watch.assert_nothing_ran()
