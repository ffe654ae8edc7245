"""Accessibility of the pages in real Chromium: an axe-core audit of every page state in
light and dark mode and at phone width, new messages read out through a polite live
region, the keyboard shortcuts between conversations, and where the focus goes.
"""

import re
import uuid

import pytest

from tests.browser.chat_page import (
    Person,
    SocketCut,
    expect,
    marker,
    message_row,
    open_direct,
    say,
    say_stored,
    wait_until_connected,
)
from tests.server import PASSWORD, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.server]

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 740}
DESKTOP = {"width": 1200, "height": 800}
SCHEMES = ["light", "dark"]

# Runs axe-core on the whole document; returns every violation with the nodes it hit.
RUN_AXE = """async () => {
  const result = await window.axe.run(document, { resultTypes: ['violations'] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\\s+/g, ' ')}`),
  }));
}"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    """The axe-core script that `make node_modules` installs from package-lock.json."""
    if not AXE.exists():
        pytest.fail("The accessibility audit needs axe-core: run 'make node_modules'.")
    return AXE.read_text()


@pytest.fixture
def open_page(chromium, page_watch):
    """Opens watched pages in fresh contexts with a colour scheme and a viewport."""
    contexts = []

    def _open_page(scheme: str = "light", viewport: dict | None = None):
        context = chromium.new_context(color_scheme=scheme, viewport=viewport or DESKTOP)
        contexts.append(context)
        page = context.new_page()
        page_watch.watch(page)
        return page

    yield _open_page
    for context in contexts:
        context.close()


@pytest.fixture
def sign_up(site_server, open_page):
    """Signs a new person up in a fresh page; returns a Person once connected."""

    def _sign_up(prefix: str, scheme: str = "light", viewport: dict | None = None) -> Person:
        page = open_page(scheme, viewport)
        person = Person(page, f"{prefix}{uuid.uuid4().hex[:8]}")
        person.listen(page)
        page.goto(site_server.url + "/accounts/signup/")
        page.fill("#id_username", person.name)
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("button[type=submit]")
        wait_until_connected(page)
        return person

    return _sign_up


BLOCKING = {"serious", "critical"}


def audit(page, axe_source: str, state: str) -> list[dict]:
    """Runs axe-core on `page` as it stands; returns every violation, tagged with `state`.

    The script goes in through the automation protocol, which the page's
    Content-Security-Policy does not govern; the page itself stays as served.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source)
    return [{"state": state, **violation} for violation in page.evaluate(RUN_AXE)]


def assert_no_blocking(violations: list[dict]) -> None:
    """Fails on any serious or critical violation, listing every violation and its elements."""
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    report = "\n".join(
        f"[{v['state']}] {v['impact']} {v['id']}: {v['help']}\n    " + "\n    ".join(v["nodes"])
        for v in violations
    )
    assert blocking == [], f"axe-core found serious or critical violations:\n{report}"


def react_with(page, row, emoji: str) -> None:
    """Reacts to a message row with `emoji` through the actions and the picker."""
    row.hover()
    row.locator("[data-action=react]").click()
    page.locator(f'.reaction-picker [data-emoji="{emoji}"]').click()
    expect(row.locator(".reaction.mine")).to_have_count(1)


def edit_last(page, row, text: str) -> None:
    """Edits my last message (Up in the empty composer) to `text`."""
    page.focus("#composer")
    page.keyboard.press("ArrowUp")
    editor = row.locator(".edit-input")
    editor.fill(text)
    editor.press("Enter")
    expect(row.locator(".edited")).to_be_visible()


# ---- the axe-core audit ---------------------------------------------------------------


@pytest.mark.parametrize("scheme", SCHEMES)
def test_login_and_signup_pages_have_no_serious_violations(
    site_server, open_page, axe_source, scheme
):
    problems = []
    for viewport, width in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = open_page(scheme, viewport)
        page.goto(site_server.url + "/accounts/login/")
        problems += audit(page, axe_source, f"{scheme} {width} login")

        # A sign-up refused for a password typed twice differently shows its errors.
        page.goto(site_server.url + "/accounts/signup/")
        page.fill("#id_username", f"ax{uuid.uuid4().hex[:8]}")
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD + "x")
        page.click("button[type=submit]")
        expect(page.locator(".field.has-errors")).not_to_have_count(0)
        problems += audit(page, axe_source, f"{scheme} {width} sign-up with an error")
    assert_no_blocking(problems)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_chat_page_states_have_no_serious_violations(sign_up, axe_source, scheme):
    alice, bob = sign_up("alice", scheme), sign_up("bob", scheme)
    page, tag = alice.page, marker()
    problems = []

    # A room with messages: one of bob's with a reaction, one of alice's edited.
    bobs = say_stored(bob.page, f"hello alice {tag}")
    expect(message_row(page, f"hello alice {tag}")).to_have_count(1)
    react_with(page, message_row(page, f"hello alice {tag}"), "👍")
    mine = say_stored(page, f"first try {tag}")
    edit_last(page, mine, f"second try {tag}")
    expect(bobs.locator(".reaction")).to_have_count(1)
    problems += audit(page, axe_source, f"{scheme} room with messages")

    # The message actions: the toolbar on hover, the reaction picker, the delete confirmation.
    row = message_row(page, f"second try {tag}")
    row.hover()
    row.locator("[data-action=react]").click()
    expect(row.locator(".reaction-picker")).to_be_visible()
    problems += audit(page, axe_source, f"{scheme} reaction picker open")
    page.keyboard.press("Escape")
    row.hover()
    row.locator("[data-action=delete]").click()
    expect(row.locator(".confirm-delete")).to_be_visible()
    problems += audit(page, axe_source, f"{scheme} delete confirmation open")
    page.keyboard.press("Escape")
    expect(row.locator(".confirm-delete")).to_have_count(0)

    # Whatever the composer offers while a name is typed (a list of mentions, if any).
    page.fill("#composer", f"@{bob.name[:3]}")
    problems += audit(page, axe_source, f"{scheme} composer with a mention typed")
    page.fill("#composer", "")

    # A direct conversation with a message from each side.
    open_direct(page, bob.name)
    say_stored(page, f"psst {tag}")
    open_direct(bob.page, alice.name)
    say_stored(bob.page, f"yes? {tag}")
    expect(message_row(page, f"yes? {tag}")).to_have_count(1)
    problems += audit(page, axe_source, f"{scheme} direct conversation")
    assert_no_blocking(problems)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_reconnecting_banner_has_no_serious_violations(sign_up, axe_source, scheme):
    alice = sign_up("alice", scheme)
    page = alice.page
    say_stored(page, f"before the cut {marker()}")

    # Put the socket behind a proxy, cut it, and refuse every reconnect.
    cut = SocketCut(page)
    page.reload()
    wait_until_connected(page)
    cut.cut()
    expect(page.locator("#connection-banner")).to_be_visible()
    expect(page.locator("#connection-banner .connection-retry")).to_be_visible()
    assert_no_blocking(audit(page, axe_source, f"{scheme} reconnecting banner"))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_phone_width_chat_and_open_sidebar_have_no_serious_violations(sign_up, axe_source, scheme):
    alice = sign_up("alice", scheme, PHONE)
    page = alice.page
    say_stored(page, f"from a phone {marker()}")
    problems = audit(page, axe_source, f"{scheme} phone chat")

    page.click("#sidebar-toggle")
    expect(page.locator("#sidebar-toggle")).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#sidebar")).to_be_in_viewport()
    problems += audit(page, axe_source, f"{scheme} phone sidebar open")

    page.keyboard.press("Escape")
    expect(page.locator("#sidebar-toggle")).to_have_attribute("aria-expanded", "false")
    assert_no_blocking(problems)


# ---- what screen readers hear -------------------------------------------------------------


def test_a_new_message_in_the_open_room_is_read_out_with_its_author(sign_up):
    alice, bob = sign_up("alice"), sign_up("bob")
    tag = marker()
    announcer = alice.page.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")

    # Her own message is not read to her, bob's is; the region held nothing before.
    say_stored(alice.page, f"mine {tag}")
    say(bob.page, f"hello {tag}")
    expect(message_row(alice.page, f"hello {tag}")).to_have_count(1)
    expect(announcer).to_have_text(f"{bob.name}: hello {tag}")


def test_a_direct_message_elsewhere_is_named_and_not_read_out(sign_up):
    alice, bob = sign_up("alice"), sign_up("bob")
    tag = marker()
    open_direct(bob.page, alice.name)
    say_stored(bob.page, f"secret {tag}")
    announcer = alice.page.locator("#announcer")
    expect(announcer).to_have_text(f"New message from {bob.name}")
    assert tag not in announcer.text_content()


def test_the_online_list_says_online_in_words(sign_up):
    alice, bob = sign_up("alice"), sign_up("bob")
    entry = alice.page.locator(f'#online li[data-user="{bob.name}"] button')
    expect(entry).to_have_accessible_name(re.compile(rf"{bob.name}.*\bonline\b"))


# ---- keyboard and focus -------------------------------------------------------------------


def test_the_composer_has_the_focus_after_the_page_loads(sign_up):
    alice = sign_up("alice")
    expect(alice.page.locator("#composer")).to_be_focused()
    alice.page.reload()
    wait_until_connected(alice.page)
    expect(alice.page.locator("#composer")).to_be_focused()


def test_alt_arrows_move_between_conversations_in_sidebar_order(sign_up):
    alice, bob = sign_up("alice"), sign_up("bob")
    page = alice.page
    open_direct(page, bob.name)
    title = page.locator("#conversation-title")

    # Rooms come before direct conversations; other tests of the session may have
    # added rooms, so the one above the first DM is whichever room is listed last.
    last_room = page.locator("#rooms li").last.get_attribute("data-room")
    page.keyboard.press("Alt+ArrowUp")
    expect(title).to_have_text(f"# {last_room}")
    expect(page.locator("#composer")).to_be_focused()

    page.keyboard.press("Alt+ArrowDown")
    expect(title).to_contain_text(bob.name)
    expect(page.locator("#composer")).to_be_focused()
    # Up in the composer still edits nothing here: Alt+ArrowUp only changed conversation.
    expect(page.locator("#messages .edit-input")).to_have_count(0)


def test_escape_closes_the_reaction_picker_from_anywhere(sign_up):
    alice = sign_up("alice")
    page = alice.page
    row = say_stored(page, f"react to me {marker()}")
    row.hover()
    row.locator("[data-action=react]").click()
    expect(row.locator(".reaction-picker")).to_be_visible()

    page.focus("#composer")  # the focus left the message, the picker stays open
    expect(row.locator(".reaction-picker")).to_be_visible()
    page.keyboard.press("Escape")
    expect(row.locator(".reaction-picker")).to_have_count(0)
