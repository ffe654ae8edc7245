"""Text that cannot impersonate, in a real Chromium: a message body is a bidi island of
its own (an override character inside it reorders nothing around it), and usernames
are isolated wherever the page shows them.
"""

import uuid

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.server]

RIGHT_TO_LEFT_OVERRIDE = "\u202e"
SHALOM = "\u05e9\u05dc\u05d5\u05dd"  # Hebrew: a right-to-left name

# Where the parts of one message row are drawn, and how the browser isolates them.
ROW_LAYOUT = """row => {
  const box = (el) => { const r = el.getBoundingClientRect();
                        return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
  const [from, time, body] = ['.from', '.time', '.body'].map((s) => row.querySelector(s));
  return {
    from: box(from), time: box(time), body: box(body),
    fromBidi: getComputedStyle(from).unicodeBidi,
    bodyBidi: getComputedStyle(body).unicodeBidi,
  };
}"""


def say(page: Page, text: str) -> None:
    page.fill("#composer", text)
    page.press("#composer", "Enter")


def right_to_left_name() -> str:
    """A fresh Hebrew username: Hebrew letters and digits, one script."""
    return f"{SHALOM}{uuid.uuid4().int % 10**10:010d}"


def unicode_bidi(page: Page, selector: str) -> str:
    return page.locator(selector).first.evaluate("el => getComputedStyle(el).unicodeBidi")


def test_an_override_in_a_body_stays_in_the_body_and_the_name_and_time_stay_in_place(
    signed_up,
):
    marker = uuid.uuid4().hex[:8]
    sender_name = right_to_left_name()
    sender = signed_up(sender_name)
    observer = signed_up(f"observer{marker}")
    # An override with no end: unisolated, it would run on into whatever follows.
    body = f"invoice {marker} {RIGHT_TO_LEFT_OVERRIDE}fdp.exe"
    say(sender, body)

    row = observer.locator("#messages .message[data-id]").filter(has_text=marker)
    expect(row).to_have_count(1)
    expect(row.locator(".body")).to_have_text(body)  # every character kept, none stripped
    expect(row.locator(".body")).to_have_attribute("dir", "auto")
    expect(row.locator(".from")).to_have_text(sender_name)
    expect(row.locator(".time")).not_to_be_empty()

    layout = row.evaluate(ROW_LAYOUT)
    assert layout["bodyBidi"] in {"isolate", "plaintext"}
    assert layout["fromBidi"] == "isolate"
    # A right-to-left name followed by a time is where an unisolated line goes wrong:
    # the time's digits join the name's run and are drawn to its left.
    assert layout["from"]["right"] <= layout["time"]["left"]
    assert layout["from"]["bottom"] <= layout["body"]["top"]
    assert layout["time"]["bottom"] <= layout["body"]["top"]

    # A later message is drawn as usual: the override did not reach past its own body.
    say(observer, f"after {marker}")
    after = observer.locator("#messages .message[data-id]").filter(has_text=f"after {marker}")
    expect(after.locator(".from")).to_have_text(f"observer{marker}")
    later = after.evaluate(ROW_LAYOUT)
    assert later["from"]["right"] <= later["time"]["left"]
    assert later["time"]["bottom"] <= later["body"]["top"]


def test_usernames_are_isolated_in_the_lists_the_title_and_the_header(signed_up):
    marker = uuid.uuid4().hex[:8]
    name = right_to_left_name()
    person = signed_up(name)
    observer = signed_up(f"observer{marker}")

    entry = observer.locator(f'#online li[data-user="{name}"]')
    expect(entry.locator(".entry-label")).to_have_text(name)
    assert unicode_bidi(observer, f'#online li[data-user="{name}"] .entry-label') == "isolate"

    entry.click()
    expect(observer.locator("#conversation-title bdi")).to_have_text(name)
    assert unicode_bidi(observer, "#conversation-title bdi") == "isolate"

    # My own entry: the name isolated, "(you)" after it.
    own = person.locator(f'#online li[data-user="{name}"]')
    expect(own.locator(".entry-label")).to_have_text(name)
    expect(own.locator(".entry-note")).to_have_text("(you)")
    label_box = own.locator(".entry-label").bounding_box()
    note_box = own.locator(".entry-note").bounding_box()
    assert label_box["x"] + label_box["width"] <= note_box["x"]

    expect(person.locator(".account-name")).to_have_text(name)
    assert unicode_bidi(person, ".account-name") == "isolate"
