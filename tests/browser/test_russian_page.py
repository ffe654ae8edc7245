"""The chat page in Russian: a browser that asks for Russian gets the page's own
texts and its scripts' texts (banner, headings, counts, times) in Russian, with no
English left over, and the header's language switcher turns it all back to English.
"""

import re
import uuid
from pathlib import Path

import pytest

from tests.browser.chat_page import (
    SocketCut,
    expect,
    open_direct,
    say_stored,
    sign_up,
    wait_until_connected,
)
from tests.server import ROOT

# Words of the page's English texts; none may show on the Russian page.
ENGLISH = re.compile(
    r"\b(Rooms|Direct|Online|Conversations|Chat|Search|Send|Attach|Notify|All messages|Mentions"
    r"|Nothing|Write a message|Connecting|Reconnecting|Loading|Load older|Load newer|Today"
    r"|Yesterday|online|offline|you|notes to self|Nobody|Turn on|Dismiss|Show more|unread"
    r"|mention|message)\b"
)
CYRILLIC = re.compile(r"[\u0400-\u04ff]")


@pytest.fixture(scope="session", autouse=True)
def compiled_translations():
    """Compiles the .po catalogues whose .mo is missing or older, before the site serves them."""
    from django.core.management import call_command

    def is_stale(po: Path) -> bool:
        mo = po.with_suffix(".mo")
        return not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime

    stale = [po for po in (Path(ROOT) / "locale").glob("*/LC_MESSAGES/*.po") if is_stale(po)]
    if stale:
        languages = sorted({po.parent.parent.name for po in stale})
        call_command(
            "compilemessages",
            locale=languages,
            ignore_patterns=[".venv", "node_modules"],
            verbosity=0,
        )


@pytest.fixture
def russian_page(chromium, site_server, page_watch):
    """A page of a browser whose language is Russian (it sends Accept-Language: ru-RU)."""
    context = chromium.new_context(locale="ru-RU", viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page_watch.watch(page)
    yield page
    context.close()


def visible_words(page) -> str:
    """The visible text of the sidebar, the conversation's header and the composer."""
    parts = ["#sidebar", ".conversation-header", "#composer-form", "#message-status"]
    return "\n".join(page.locator(part).inner_text() for part in parts)


def test_russian_page_then_english_through_the_switcher(russian_page, site_server):
    page = russian_page
    name = f"ivan{uuid.uuid4().hex[:8]}"
    sign_up(page, site_server.url, name)
    # The socket goes through a proxy the test can cut, to see the banner's words.
    cut = SocketCut(page)
    page.reload()
    wait_until_connected(page)
    expect(page.locator("html")).to_have_attribute("lang", "ru")

    # The template's texts.
    expect(page.locator("#sidebar h2").first).to_have_text(CYRILLIC)
    expect(page.locator("#composer")).to_have_attribute("placeholder", CYRILLIC)

    # The scripts' texts: my own entry, my notes to self (empty, then a day heading
    # and Russian times), a plural count of found messages.
    expect(page.locator(f'#online li[data-user="{name}"] .entry-note')).to_have_text("(вы)")
    open_direct(page, name)
    expect(page.locator("#conversation-title")).to_have_text(f"{name} (вы): заметки для себя")
    expect(page.locator("#message-status")).to_have_text(
        "Здесь ваши заметки для себя. Их не видит никто другой."
    )
    tag = uuid.uuid4().hex[:8]
    say_stored(page, f"1 {tag}")
    say_stored(page, f"2 {tag}")
    expect(page.locator("#messages .day-divider-text")).to_have_text(["Сегодня"])
    # A 24-hour clock, as Russian writes it, whatever the browser's own habit.
    expect(page.locator("#messages .message .time").first).to_have_text(
        re.compile(r"^\d{1,2}:\d{2}$")
    )
    page.fill("#search", tag)
    expect(page.locator("#search-status")).to_have_text("Найдено 2 сообщения")

    # Nothing English is left in what the page shows.
    page.keyboard.press("Escape")
    shown = visible_words(page)
    assert CYRILLIC.search(shown)
    assert ENGLISH.findall(shown) == [], shown

    # The connection banner, when the socket is lost.
    cut.cut()
    expect(page.locator("#connection-banner .connection-text")).to_have_text(
        re.compile(r"^(Соединение потеряно\. )?Переподключение…$")
    )
    cut.restore()

    # The header's switcher: English for this person from now on.
    page.select_option("#language-select", "en")
    page.locator(".language-form button").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    wait_until_connected(page)
    expect(page.locator("#sidebar h2").first).to_have_text("Rooms")
    expect(page.locator("#composer")).to_have_attribute("placeholder", "Write a message…")
    expect(page.locator(f'#online li[data-user="{name}"] .entry-note')).to_have_text("(you)")
    open_direct(page, name)
    expect(page.locator("#conversation-title")).to_have_text(f"{name} (you): notes to self")
    expect(page.locator("#messages .day-divider-text")).to_have_text(["Today"])
    expect(page.locator("#messages .message .time").first).to_have_text(
        re.compile(r"^\d{1,2}:\d{2}\s?[AP]M$")
    )
    page.fill("#search", tag)
    expect(page.locator("#search-status")).to_have_text("2 messages found")
    assert not CYRILLIC.search(visible_words(page))
