"""Takes the README's screenshots from the running site: `make screenshots`.

Starts a real server process (`python -m chatsite.server`, embedded mode) on a
throwaway database, signs people up through the sign-up page in separate
Chromium contexts, lets them chat, and photographs each situation into
docs/screenshots/. Nothing is staged: every image is the page in that state.
Two things are helped along: a tab switched away from is told so by overriding
its visibility (headless Chromium never hides a page), and the fading highlight
of a search result is held still for the moment of its photograph.
"""

import io
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw  # noqa: E402
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402

from tests.browser.conftest import CHROMIUM_ARGS  # noqa: E402
from tests.browser.test_file_display import send_files, upload  # noqa: E402
from tests.server import PASSWORD, Database, ServerProcess, base_env  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1100, "height": 700}
PHONE = {"width": 390, "height": 844}
# The rate limit of the restarted server, low enough to reach by hand.
TIGHT_RATE_LIMIT = "3/60s"
MAX_PNG_BYTES = 300_000
ADMIN_NAME = "admin"


class Site:
    """The server process, the browser and the people using it."""

    def __init__(self, browser: Browser, server: ServerProcess) -> None:
        self.browser = browser
        self.server = server
        self.contexts: dict[str, BrowserContext] = {}

    def context(self, name: str, viewport: dict = DESKTOP, locale: str = "en-GB") -> BrowserContext:
        """A browser context of its own (its own cookies), as another person's browser."""
        context = self.browser.new_context(
            viewport=viewport,
            device_scale_factor=1,
            locale=locale,
            timezone_id="UTC",
            color_scheme="light",
        )
        self.contexts[name] = context
        return context

    def sign_up(self, username: str, locale: str = "en-GB") -> Page:
        """Signs `username` up through the sign-up page; returns the chat page it lands on."""
        page = self.context(username, locale=locale).new_page()
        page.goto(self.server.url + "/accounts/signup/")
        page.fill("#id_username", username)
        page.fill("#id_password1", PASSWORD)
        page.fill("#id_password2", PASSWORD)
        page.click("button[type=submit]")
        wait_until_connected(page)
        return page


def wait_until_connected(page: Page) -> None:
    """Waits until the page's socket is open and `hello` has been handled."""
    expect(page.locator("body")).to_have_attribute("data-socket-state", "open", timeout=20_000)


def say(page: Page, text: str, shown: str | None = None) -> None:
    """Types `text` into the composer, sends it, and waits until the server stored it.

    `shown` is the text the page draws when formatting changes it (`*bold*` loses
    its stars); by default the text as typed.
    """
    page.fill("#composer", text)
    page.press("#composer", "Enter")
    expect(page.locator("#messages .message.pending")).to_have_count(0)
    expect(page.locator("#messages .message[data-id] .body").last).to_have_text(shown or text)


def open_direct(page: Page, username: str) -> None:
    """Opens the direct conversation with `username` from the online list."""
    page.click(f"#online li[data-user={username}]")
    expect(page.locator("#conversation-title")).to_have_text(re.compile(re.escape(username)))


def settle(page: Page) -> None:
    """Lets pending renders and transitions finish, and puts the caret and the pointer away."""
    page.evaluate("document.activeElement && document.activeElement.blur()")
    # The pointer rests on the page title: where a click left it, a list entry would show hovered.
    page.mouse.move(20, 20)
    page.wait_for_timeout(400)


def set_hidden(page: Page, hidden: bool) -> None:
    """Makes the page's tab hidden (or shown again), as switching to another tab does.

    Headless Chromium keeps every page visible, so the page's own visibility state
    is overridden and its `visibilitychange` event dispatched.
    """
    page.evaluate(
        """hidden => {
            Object.defineProperty(document, 'visibilityState', {
                configurable: true, get: () => (hidden ? 'hidden' : 'visible'),
            });
            Object.defineProperty(document, 'hidden', { configurable: true, get: () => hidden });
            document.dispatchEvent(new Event('visibilitychange'));
        }""",
        hidden,
    )


def shot(page: Page, name: str, *, full_page: bool = False, animations: str = "disabled") -> Path:
    """Saves the page's viewport (or the whole page) as docs/screenshots/<name>.png.

    Animations are stopped at their end unless `animations="allow"`.
    """
    path = OUT / f"{name}.png"
    page.screenshot(path=path, type="png", full_page=full_page, animations=animations, caret="hide")
    size = path.stat().st_size
    print(f"  {path.relative_to(ROOT)}  {size // 1024} KB")
    if size > MAX_PNG_BYTES:
        raise SystemExit(f"{path.name} is {size} bytes; keep screenshots under {MAX_PNG_BYTES}")
    return path


# --- The situations, in the order the README shows them -------------------------


def signup_error(site: Site) -> None:
    """1. Sign-up refused: the username is taken and the password is weak."""
    page = site.context("newcomer").new_page()
    page.goto(site.server.url + "/accounts/signup/")
    page.fill("#id_username", "alice")
    page.fill("#id_password1", "password")
    page.fill("#id_password2", "password")
    page.click("button[type=submit]")
    expect(page.locator("#id_username ~ .errorlist")).to_contain_text("already exists")
    expect(page.locator(".field.has-errors")).to_have_count(2)
    settle(page)
    shot(page, "01-signup-error", full_page=True)


def people_online(site: Site, pages: dict[str, Page]) -> None:
    """2. Four people online; alice's page lists them all."""
    alice = pages["alice"]
    expect(alice.locator("#online li")).to_have_count(4)
    expect(alice.locator("#online-count")).to_have_text("4")
    settle(alice)
    shot(alice, "02-online")


def room_conversation(site: Site, pages: dict[str, Page]) -> None:
    """3. A conversation in `general` among four people, seen by bob."""
    # (person, text typed, text the page draws when formatting changes it)
    lines = [
        ("alice", "Morning all! Is the release still on for Friday?", None),
        ("bob", "Yes. The suite passes on PostgreSQL with Redis too.", None),
        ("dave", "Привет, деплой в пятницу: я на связи весь день.", None),
        ("carol", "Great, I'll write the changelog tonight.", None),
        ("carol", "Draft so far: https://wiki.example.com/releases/2.4", None),
        (
            "carol",
            "It mentions the new `make screenshots` target too.",
            "It mentions the new make screenshots target too.",
        ),
        (
            "alice",
            "@bob could you look at the *reconnect banner* once more?",
            "@bob could you look at the reconnect banner once more?",
        ),
        ("bob", "On it after lunch.", None),
    ]
    previous = None
    for name, text, shown in lines:
        if previous not in (None, name):
            pages[name].wait_for_timeout(1000)  # a moment between people, as in a real chat
        say(pages[name], text, shown)
        previous = name
    bob = pages["bob"]
    expect(bob.locator("#messages .message[data-id]")).to_have_count(len(lines))
    expect(bob.locator("#messages .message.continued")).to_have_count(2)  # carol's run
    expect(bob.locator("#messages .body a[href]")).to_have_count(1)
    expect(bob.locator("#messages .body code")).to_have_count(1)
    expect(bob.locator("#messages .body .mention.mention-me")).to_have_count(1)
    settle(bob)
    shot(bob, "03-room")


def mention_autocomplete(site: Site, pages: dict[str, Page]) -> None:
    """4. alice types "@b" in general: the list of people offers bob."""
    alice = pages["alice"]
    alice.click("#composer")
    alice.keyboard.type("@b")
    options = alice.locator("#mention-list [role=option]")
    expect(alice.locator("#mention-list")).to_be_visible()
    expect(options.first).to_have_attribute("data-user", "bob")
    # Not settled: blurring the composer closes the list that is to be shown.
    alice.mouse.move(20, 20)
    alice.wait_for_timeout(400)
    shot(alice, "04-mention")
    alice.fill("#composer", "")
    alice.locator("#composer").blur()
    expect(alice.locator("#mention-list")).to_be_hidden()


def direct_conversation(site: Site, pages: dict[str, Page]) -> None:
    """5. carol and bob talk privately while general and dave's message wait, counted."""
    carol, bob = pages["carol"], pages["bob"]
    open_direct(carol, "bob")
    say(carol, "Bob, can you review my changelog draft before I post it?")
    bob_entry = bob.locator("#direct li[data-user=carol]")
    expect(bob_entry.locator(".badge")).to_have_text("1")
    bob_entry.click()
    say(bob, "Sure, send me the link.")
    say(carol, "It's in the wiki under Releases. Thanks!")

    # Meanwhile the others write elsewhere: carol's sidebar counts it.
    say(pages["alice"], "@bob reminder: stand-up moves to 10:30 tomorrow.")
    say(pages["alice"], "And there is cake.")
    open_direct(pages["dave"], "carol")
    say(pages["dave"], "Carol, do you have the logo in SVG?")

    expect(carol.locator("#rooms li[data-room=general] .badge")).to_have_text("2")
    expect(carol.locator("#direct li[data-user=dave] .badge")).to_have_text("1")
    expect(carol.locator("#messages .message[data-id]")).to_have_count(3)
    settle(carol)
    shot(carol, "05-direct")


def search(site: Site, pages: dict[str, Page]) -> None:
    """6. bob searches (Ctrl+K) for "депл" and jumps from the result to the message."""
    bob = pages["bob"]
    general = bob.locator("#rooms li[data-room=general]")
    expect(general.locator(".mention-badge")).to_have_text("@1")  # alice's reminder
    bob.keyboard.press("Control+k")
    expect(bob.locator("#search")).to_be_focused()
    bob.keyboard.type("депл")
    result = bob.locator("#search-results button.search-result")
    expect(result).to_have_count(1)
    expect(result.locator("mark")).to_have_text("депл")
    expect(bob.locator("#search-status")).to_have_text("1 message found")
    bob.mouse.move(20, 20)
    bob.wait_for_timeout(400)
    shot(bob, "06-search")

    result.click()
    row = bob.locator("#messages .message.jumped")
    expect(row.locator(".body")).to_have_text(re.compile("^Привет, деплой"))
    expect(bob.locator("#conversation-title")).to_contain_text("general")
    # The highlight fades within 3 s, and disabling animations for the shot would
    # jump to its faded end: it is held where it is for the shot, then let go.
    row.evaluate("r => r.getAnimations().forEach(a => a.pause())")
    bob.mouse.move(20, 20)
    shot(bob, "06-search-jump", animations="allow")
    row.evaluate("r => r.getAnimations().forEach(a => a.play())")


def someone_leaves(site: Site, pages: dict[str, Page]) -> None:
    """7a. dave closes his tab: he leaves carol's online list, stays under Direct, greyed."""
    carol = pages["carol"]
    expect(carol.locator("#online li[data-user=dave]")).to_have_count(1)
    site.contexts["dave"].close()
    del pages["dave"]
    expect(carol.locator("#online li[data-user=dave]")).to_have_count(0)
    expect(carol.locator("#online-count")).to_have_text("3")
    expect(carol.locator("#direct li[data-user=dave]")).not_to_have_class(re.compile(r"\bonline\b"))
    settle(carol)
    shot(carol, "07-offline")


def someone_away(site: Site, pages: dict[str, Page]) -> None:
    """7b. alice switches to another tab: carol sees her away; dave was last seen just now."""
    carol, alice = pages["carol"], pages["alice"]
    set_hidden(alice, True)
    expect(carol.locator("#online li[data-user=alice]")).to_have_class(re.compile(r"\baway\b"))
    expect(carol.locator("#online li[data-user=alice] .presence-note")).to_have_text("away")
    expect(carol.locator("#direct li[data-user=dave] .presence-note")).to_have_text(
        "last seen just now"
    )
    settle(carol)
    shot(carol, "07-away")
    set_hidden(alice, False)
    expect(carol.locator("#online li[data-user=alice]")).not_to_have_class(re.compile(r"\baway\b"))


def too_long(site: Site, pages: dict[str, Page]) -> None:
    """8a. A message over 4000 characters is refused by the page, in words."""
    alice = pages["alice"]
    alice.click("#rooms li[data-room=general]")
    steps = ["collecting static files", "running migrations", "checking the database"]
    log = [
        f"[02:{n // 60:02d}:{n % 60:02d}] step {n + 1} of 80: {steps[n % 3]} on staging ... ok"
        for n in range(80)
    ]
    text = "Here is last night's whole build log:\n" + "\n".join(log)
    assert len(text) > 4000
    alice.fill("#composer", text)
    alice.click("#send")
    expect(alice.locator("#composer-error")).to_contain_text("longer than 4000 characters")
    expect(alice.locator("#composer-count")).to_be_visible()
    alice.locator("#composer").evaluate("c => { c.scrollTop = 0; }")
    settle(alice)
    shot(alice, "08-too-long")
    alice.fill("#composer", "")


def reconnecting(site: Site, pages: dict[str, Page]) -> None:
    """9. The server stops: the page says it is reconnecting and keeps what is typed.

    The server comes back with a tight rate limit for the next situation; the
    pages reconnect on their own and send what waited.
    """
    alice, bob = pages["alice"], pages["bob"]
    bob.click("#rooms li[data-room=general]")
    site.server.stop()
    banner = alice.locator("#connection-banner")
    expect(banner).to_be_visible(timeout=10_000)
    expect(banner).to_contain_text("Reconnecting")
    say_offline = "Did the server just restart?"
    alice.fill("#composer", say_offline)
    alice.press("#composer", "Enter")
    expect(alice.locator("#messages .message.pending")).to_have_count(1)
    expect(banner).to_contain_text("Reconnecting")
    settle(alice)
    shot(alice, "09-reconnecting")

    site.server.env["CHAT_RATE_LIMIT"] = TIGHT_RATE_LIMIT
    site.server.start()
    for page in pages.values():
        retry = page.locator("#connection-banner .connection-retry")
        if retry.is_visible():
            retry.click()
        wait_until_connected(page)
    expect(alice.locator("#messages .message.pending")).to_have_count(0)
    expect(bob.locator("#messages .message .body").last).to_have_text(say_offline)
    say(bob, "It did. Nothing got lost, though.")
    expect(alice.locator("#messages .message[data-id] .body").last).to_have_text(
        "It did. Nothing got lost, though."
    )
    expect(banner).to_be_hidden()
    settle(alice)
    shot(alice, "09-reconnected")


def rate_limited(site: Site, pages: dict[str, Page]) -> None:
    """8b. Over the server's rate limit: the message is not sent, with retry and dismiss."""
    carol = pages["carol"]
    carol.click("#rooms li[data-room=general]")
    for text in ("Changelog is up!", "Link in the wiki.", "Screenshots too."):
        say(carol, text)
    carol.fill("#composer", "And one more thing…")
    carol.press("#composer", "Enter")
    failed = carol.locator("#messages .message.failed")
    expect(failed.locator(".reason")).to_contain_text("sending too fast")
    settle(carol)
    shot(carol, "08-rate-limited")


def phone(site: Site) -> None:
    """10. Phone width: the conversation fills the screen; the sidebar hides behind a toggle."""
    page = site.context("erin", viewport=PHONE).new_page()
    page.goto(site.server.url + "/accounts/signup/")
    page.fill("#id_username", "erin")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("button[type=submit]")
    wait_until_connected(page)
    expect(page.locator("#sidebar")).to_be_hidden()
    expect(page.locator("#messages .message[data-id]").first).to_be_visible()
    page.locator("#message-scroller").evaluate("s => { s.scrollTop = s.scrollHeight; }")
    settle(page)
    shot(page, "10-phone")
    page.click("#sidebar-toggle")
    expect(page.locator("#sidebar")).to_be_visible()
    settle(page)
    shot(page, "10-phone-sidebar")


def admin(site: Site) -> None:
    """11. The admin's message list searched for a word, with its filters, as staff see it."""
    create_staff(site.server)
    page = site.context(ADMIN_NAME).new_page()
    page.goto(site.server.url + "/admin/login/?next=/admin/")
    page.fill("#id_username", ADMIN_NAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()
    page.goto(site.server.url + "/admin/chat/message/")
    page.click("#toggle-nav-sidebar")  # fold the app list away: the table needs the width
    expect(page.locator("#nav-sidebar")).to_be_hidden()
    page.fill("#searchbar", "changelog")
    page.press("#searchbar", "Enter")
    expect(page.locator("#result_list tbody tr")).not_to_have_count(0)
    settle(page)
    shot(page, "11-admin")


def beach_photo() -> bytes:
    """A 1600x1000 JPEG drawn with Pillow: sky, sun, sea and sand."""
    width, height = 1600, 1000
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height * 3 // 5):
        shade = y / (height * 3 // 5)
        draw.line([(0, y), (width, y)], fill=(int(90 + 120 * shade), int(150 + 80 * shade), 235))
    draw.ellipse((1100, 140, 1300, 340), fill=(255, 214, 120))
    draw.rectangle((0, height * 3 // 5, width, height * 4 // 5), fill=(28, 110, 170))
    sand = [(0, height * 4 // 5), (width, height * 3 // 4), (width, height), (0, height)]
    draw.polygon(sand, fill=(236, 214, 170))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def agenda_pdf() -> bytes:
    """A one-page PDF drawn with Pillow: the agenda the message sends along."""
    page = Image.new("RGB", (595, 842), "white")
    draw = ImageDraw.Draw(page)
    lines = ["Offsite agenda", "", "09:30  Coffee", "10:00  Release retro", "12:30  Lunch"]
    for number, line in enumerate(lines):
        draw.text((60, 80 + 28 * number), line, fill="black")
    out = io.BytesIO()
    page.save(out, "PDF", resolution=72)
    return out.getvalue()


def files(site: Site, pages: dict[str, Page]) -> None:
    """12. bob asks alice for the offsite photos: her answer brings a photo and a PDF."""
    alice, bob = pages["alice"], pages["bob"]
    bob.fill("#search", "")  # what bob searched for in 6 is done with
    open_direct(bob, "alice")
    say(bob, "Did anyone take pictures at the offsite?")
    photo = upload(alice, "offsite-beach.jpg", "image/jpeg", beach_photo())
    pdf = upload(alice, "offsite-agenda.pdf", "application/pdf", agenda_pdf())
    send_files(alice, {"to": "bob"}, photo, pdf, body="Here you go, and the agenda for next time.")
    row = bob.locator("#messages .message[data-id]").last
    image = row.locator(".attachment-thumb img")
    expect(image).to_have_attribute("alt", "offsite-beach.jpg")
    bob.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    expect(row.locator(".attachment-file .attachment-name")).to_have_text("offsite-agenda.pdf")
    settle(bob)
    shot(bob, "12-files")


def russian(site: Site, pages: dict[str, Page]) -> None:
    """14. olga's browser asks for Russian: the page, its texts and its times are Russian."""
    olga = site.sign_up("olga", locale="ru-RU")
    expect(olga.locator("html")).to_have_attribute("lang", "ru")
    alice = pages["alice"]
    alice.click("#rooms li[data-room=general]")
    say(alice, "Olga, welcome! The page speaks Russian for you.")
    expect(olga.locator("#messages .message .body").last).to_have_text(
        "Olga, welcome! The page speaks Russian for you."
    )
    settle(olga)
    shot(olga, "14-russian")


def create_staff(server: ServerProcess) -> None:
    """Creates the staff account with Django's createsuperuser, against the server's database."""
    env = {
        **server.env,
        "DJANGO_SUPERUSER_USERNAME": ADMIN_NAME,
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
    }
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def run(step: Callable, *args) -> None:
    print(step.__doc__.splitlines()[0])
    step(*args)


def main() -> None:
    """Regenerates every screenshot in docs/screenshots/."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("The screenshots need Debian's chromium: run 'apt-get install chromium'.")
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()

    database = Database()
    database.migrate(base_env())
    server = ServerProcess(database)
    try:
        server.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            site = Site(browser, server)
            pages = {"alice": site.sign_up("alice")}
            run(signup_error, site)
            for name in ("bob", "carol", "dave"):
                pages[name] = site.sign_up(name)
            run(people_online, site, pages)
            run(room_conversation, site, pages)
            run(mention_autocomplete, site, pages)
            run(direct_conversation, site, pages)
            run(search, site, pages)
            run(someone_leaves, site, pages)
            run(someone_away, site, pages)
            run(too_long, site, pages)
            run(reconnecting, site, pages)
            run(rate_limited, site, pages)
            run(phone, site)
            run(admin, site)
            run(files, site, pages)
            run(russian, site, pages)
            browser.close()
    except Exception:
        print(f"--- server log ({server.log.name}) ---\n{server.output()[-4000:]}", file=sys.stderr)
        raise
    finally:
        server.stop()
        database.drop()
    # The terminal client's picture: its own server and its own asyncio run.
    subprocess.run([sys.executable, str(ROOT / "docs" / "screenshot_terminal.py")], check=True)


if __name__ == "__main__":
    main()
