"""The message list in a real Chromium: messages grouped under one name, day headings,
links and formatting built safely, long messages folded, the last conversation
reopened, and an empty conversation that says so.
"""

import re
import subprocess
import sys

import pytest

from tests.browser.chat_page import expect, marker, message_row, open_direct, say, say_stored
from tests.server import ROOT, base_env

pytestmark = [pytest.mark.browser, pytest.mark.server]

# Stores a direct message from FROM to TO as the site would, then moves its time to WHEN.
STORE_OLD_MESSAGE = """
import os
from datetime import datetime
from django.contrib.auth import get_user_model
from chat.messaging.store import message_store
from chat.models import Message
from chat.protocol import Send

sender = get_user_model().objects.get(username=os.environ["FROM"])
send = Send(body=os.environ["BODY"], client_id=os.environ["CLIENT_ID"], to=os.environ["TO"])
posted = message_store(sender=sender, send=send)
Message.objects.filter(id=posted.message.id).update(sent_at=datetime.fromisoformat(os.environ["WHEN"]))
"""

# Noon yesterday in the page's own time zone, as an ISO time in UTC.
NOON_YESTERDAY = """() => {
  const day = new Date();
  day.setDate(day.getDate() - 1);
  day.setHours(12, 0, 0, 0);
  return day.toISOString();
}"""


ANY_TEXT = re.compile(r"\S")


def has_class(name: str) -> re.Pattern:
    """A pattern for a class list that holds `name`."""
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


def store_old_message(database, *, sender: str, to: str, body: str, when: str) -> None:
    """Stores a direct message sent at `when` straight into the site's database."""
    env = base_env(
        DATABASE_URL=database.url, FROM=sender, TO=to, BODY=body, CLIENT_ID=marker(), WHEN=when
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", STORE_OLD_MESSAGE],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def name_width(row) -> float:
    """How wide the sender's name is drawn in `row` (a hidden name is at most 1px)."""
    return row.locator(".from").evaluate("el => el.getBoundingClientRect().width")


def test_quick_messages_share_one_name_until_another_sender_speaks(chat_person):
    alice, bob = chat_person("alice"), chat_person("bob")
    open_direct(alice.page, bob.name)
    open_direct(bob.page, alice.name)
    tag = marker()

    first = say_stored(alice.page, f"first {tag}")
    second = say_stored(alice.page, f"second {tag}")
    say_stored(bob.page, f"bob here {tag}")
    expect(message_row(alice.page, f"bob here {tag}")).to_have_count(1)
    third = say_stored(alice.page, f"third {tag}")

    # One name over alice's two quick messages; bob's reply starts a new group.
    expect(second).to_have_class(has_class("continued"))
    for row in (first, third, message_row(alice.page, f"bob here {tag}")):
        expect(row).not_to_have_class(has_class("continued"))
    assert name_width(first) > 1
    assert name_width(second) <= 1
    # The name is still there for screen readers, and the time shows on hover.
    expect(second.locator(".from")).to_have_text(alice.name)
    expect(second.locator(".time")).to_have_css("opacity", "0")
    second.hover()
    expect(second.locator(".time")).to_have_css("opacity", "1")
    expect(second.locator("time.time")).to_have_attribute("title", ANY_TEXT)

    # One heading for today, above the first message, and it is not a message.
    expect(alice.page.locator("#messages .day-divider")).to_have_text(["Today"])
    expect(alice.page.locator("#messages .day-divider.message")).to_have_count(0)


def test_an_older_message_sits_under_yesterday(chat_person, site_database):
    alice, bob = chat_person("alice"), chat_person("bob")
    tag = marker()
    when = alice.page.evaluate(NOON_YESTERDAY)
    store_old_message(site_database, sender=bob.name, to=alice.name, body=f"old {tag}", when=when)

    open_direct(alice.page, bob.name)
    expect(message_row(alice.page, f"old {tag}")).to_have_count(1)
    say_stored(alice.page, f"new {tag}")
    expect(alice.page.locator("#messages .day-divider")).to_have_text(["Yesterday", "Today"])
    # Each heading stands above its day's first message (the old one is unread).
    rows = alice.page.locator("#messages > li").evaluate_all(
        "rows => rows.map((row) => row.querySelector('.body')?.textContent ?? row.textContent)"
    )
    assert rows == ["Yesterday", "New messages", f"old {tag}", "Today", f"new {tag}"]


def test_links_open_safely_and_formatting_is_built_from_text(chat_person):
    alice, bob = chat_person("alice"), chat_person("bob")
    open_direct(alice.page, bob.name)
    open_direct(bob.page, alice.name)
    tag = marker()

    say(alice.page, f"see https://example.com/a_(b), *bold* and `a*b*c` {tag}")
    row = message_row(bob.page, tag)
    expect(row).to_have_count(1)
    link = row.locator(".body a")
    expect(link).to_have_count(1)
    expect(link).to_have_text("https://example.com/a_(b)")
    expect(link).to_have_attribute("href", "https://example.com/a_(b)")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(row.locator(".body strong")).to_have_text("bold")
    expect(row.locator(".body code")).to_have_text("a*b*c")
    expect(row.locator(".body")).to_have_text(
        f"see https://example.com/a_(b), bold and a*b*c {tag}"
    )

    hostile = f"javascript:alert(1) {tag}x"
    say(alice.page, hostile)
    row = message_row(bob.page, f"{tag}x")
    expect(row.locator(".body")).to_have_text(hostile)
    expect(row.locator("a")).to_have_count(0)


def test_a_mention_of_me_is_highlighted(chat_person):
    alice, bob = chat_person("alice"), chat_person("bob")
    open_direct(alice.page, bob.name)
    open_direct(bob.page, alice.name)
    tag = marker()

    say(bob.page, f"hey @{alice.name} and @nobody{tag}")
    row = message_row(alice.page, tag)
    expect(row.locator(".body .mention")).to_have_text([f"@{alice.name}"])
    expect(row.locator(".body .mention")).to_have_class(has_class("mention-me"))


def test_a_long_message_folds_behind_show_more(chat_person):
    alice, bob = chat_person("alice"), chat_person("bob")
    open_direct(alice.page, bob.name)
    open_direct(bob.page, alice.name)
    tag = marker()
    lines = "\n".join(f"line {n} {tag}" for n in range(30))

    say(alice.page, lines)
    row = message_row(bob.page, f"line 29 {tag}")
    toggle = row.get_by_role("button", name="Show more")
    expect(toggle).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    cut = "el => el.scrollHeight > el.clientHeight"
    assert row.locator(".body").evaluate(cut)

    toggle.click()
    toggle = row.get_by_role("button", name="Show less")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    assert not row.locator(".body").evaluate(cut)
    expect(row.locator(".body")).to_have_text(lines)


def test_the_page_reopens_the_conversation_last_open(chat_person, site_server):
    alice, bob = chat_person("alice"), chat_person("bob")
    open_direct(alice.page, bob.name)

    # A fresh visit, not a reload: the address names no conversation.
    alice.page.goto(site_server.url + "/")
    expect(alice.page.locator("body")).to_have_attribute("data-socket-state", "open")
    expect(alice.page.locator("#conversation-title")).to_have_text(bob.name)


def test_an_empty_conversation_says_so(chat_person):
    alice, bob = chat_person("alice"), chat_person("bob")
    open_direct(alice.page, bob.name)
    status = alice.page.locator("#message-status")
    expect(status).to_be_visible()
    expect(status).to_have_text(f"This is the start of your conversation with {bob.name}.")

    say_stored(alice.page, f"hello {marker()}")
    expect(status).to_be_hidden()
