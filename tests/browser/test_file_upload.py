"""Files in the composer: picked with the attach button, dropped on the conversation or
pasted; uploaded with a progress bar, cancelled, refused when too big, and sent.
"""

import contextlib
import io
import time
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Error as PlaywrightError

from tests.browser.chat_page import expect, marker, message_row
from tests.server import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.server]

LIMIT = 300_000  # bytes: low, so a too-big file stays small
TRAY = "#composer-files"


@pytest.fixture(scope="module")
def site_server(database, suite_redis_url, tmp_path_factory):
    """This module's own server: its files in a fresh folder, and a low upload limit."""
    media = tmp_path_factory.mktemp("media")
    extra = {"REDIS_URL": suite_redis_url} if suite_redis_url else {}
    server = ServerProcess(
        database, MEDIA_ROOT=str(media), CHAT_MAX_UPLOAD_BYTES=str(LIMIT), **extra
    ).start()
    server.media_root = media
    yield server
    server.stop()


def png(name: str = "photo.png") -> dict:
    """A small real PNG made with Pillow, as Playwright's file payload."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 90)).save(buffer, format="PNG")
    return {"name": name, "mimeType": "image/png", "buffer": buffer.getvalue()}


def text_file(name: str, content: bytes) -> dict:
    """A plain text file as Playwright's file payload."""
    return {"name": name, "mimeType": "text/plain", "buffer": content}


class HeldUploads:
    """Holds every POST /uploads/ of a page until the test lets it through."""

    def __init__(self, page) -> None:
        self.page = page
        self.routes = []
        page.route("**/uploads/", self._hold)

    def _hold(self, route) -> None:
        self.routes.append(route)

    def wait_for(self, count: int, timeout: float = 15) -> None:
        """Waits until `count` uploads are held (the page's requests reached the route)."""
        deadline = time.monotonic() + timeout
        while len(self.routes) < count:
            assert time.monotonic() < deadline, f"{len(self.routes)} of {count} uploads arrived"
            self.page.wait_for_timeout(50)

    def drop(self) -> None:
        """Fails every held upload and stops holding.

        Left pending, a held request could still be passed on to the server by
        Playwright after its page gave it up; failed here, it never reaches it.
        """
        for route in self.routes:
            with contextlib.suppress(PlaywrightError):
                route.abort()
        self.routes.clear()
        self.page.unroute("**/uploads/")

    def release(self) -> None:
        """Lets every held upload go on to the server and stops holding."""
        for route in self.routes:
            route.continue_()
        self.page.unroute("**/uploads/")


def pick(page, files: list[dict]) -> None:
    """Presses the attach button and picks `files` in the file chooser."""
    with page.expect_file_chooser() as chooser:
        page.click("#attach")
    chooser.value.set_files(files)


def chip(page, name: str):
    """The tray's chip of file `name`."""
    return page.locator(f"{TRAY} li").filter(has_text=name)


def stored_files(media_root: Path) -> list[bytes]:
    """The contents of every file the server stored."""
    return [path.read_bytes() for path in media_root.rglob("*") if path.is_file()]


def test_picked_files_upload_with_progress_then_go_with_the_message(chat_person, site_server):
    alice = chat_person("alice")
    bob = chat_person("bob")
    page = alice.page
    held = HeldUploads(page)
    tag = marker()
    notes = text_file("notes.txt", f"notes {tag}".encode())

    pick(page, [notes, png()])
    held.wait_for(2)
    # Held on the way: each chip shows a progress bar named after its file, and Send waits.
    expect(page.get_by_role("list", name="Files to send").locator("li")).to_have_count(2)
    expect(page.get_by_role("progressbar", name="Uploading notes.txt")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Uploading photo.png")).to_be_visible()
    expect(page.locator("#send")).to_be_disabled()

    held.release()
    expect(chip(page, "notes.txt")).to_have_attribute("data-state", "done")
    expect(chip(page, "photo.png")).to_have_attribute("data-state", "done")
    expect(page.locator(f"{TRAY} progress:visible")).to_have_count(0)
    # The photo's chip shows the server's thumbnail of it.
    thumb = chip(page, "photo.png").locator("img")
    expect(thumb).to_be_visible()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    expect(page.locator("#send")).to_be_enabled()

    page.fill("#composer", f"two files {tag}")
    page.press("#composer", "Enter")
    expect(page.locator(TRAY)).to_be_hidden()
    expect(page.locator(f"{TRAY} li")).to_have_count(0)

    # Bob sees the message with both files.
    row = message_row(bob.page, tag)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("notes.txt")
    frame = next(f for f in bob.frames if f.get("type") == "message" and tag in f.get("body", ""))
    names = sorted(attachment["name"] for attachment in frame["attachments"])
    assert names == ["notes.txt", "photo.png"]
    assert f"notes {tag}".encode() in stored_files(site_server.media_root)


def test_a_message_of_files_only_is_sent(chat_person):
    alice = chat_person("alice")
    page = alice.page
    tag = marker()
    pick(page, [text_file(f"only-{tag}.txt", b"just a file")])
    expect(chip(page, f"only-{tag}.txt")).to_have_attribute("data-state", "done")
    page.click("#send")
    expect(page.locator(f"{TRAY} li")).to_have_count(0)
    row = message_row(page, f"only-{tag}.txt")
    expect(row).to_have_count(1)
    expect(page.locator("#messages .message.pending")).to_have_count(0)


def test_cancel_stops_a_held_upload_and_nothing_is_stored(chat_person, site_server):
    alice = chat_person("alice")
    page = alice.page
    held = HeldUploads(page)
    tag = marker()
    cancelled = f"cancelled {tag}".encode()

    pick(page, [text_file("cancel-me.txt", cancelled)])
    held.wait_for(1)
    expect(page.get_by_role("progressbar", name="Uploading cancel-me.txt")).to_be_visible()
    # Cancel aborts the request itself: the browser gives it up.
    with page.expect_event("requestfailed", lambda r: r.url.endswith("/uploads/")):
        page.get_by_role("button", name="Cancel uploading cancel-me.txt").click()
    expect(page.locator(f"{TRAY} li")).to_have_count(0)
    expect(page.locator(TRAY)).to_be_hidden()

    # A later upload goes through; the cancelled one never reached the storage.
    held.drop()
    kept = f"kept {tag}".encode()
    pick(page, [text_file("kept.txt", kept)])
    expect(chip(page, "kept.txt")).to_have_attribute("data-state", "done")
    files = stored_files(site_server.media_root)
    assert kept in files
    assert cancelled not in files


def test_a_file_over_the_limit_is_refused_before_uploading(chat_person):
    alice = chat_person("alice")
    page = alice.page
    posted = []
    page.on("request", lambda request: request.url.endswith("/uploads/") and posted.append(request))

    pick(page, [text_file("huge.bin", b"x" * (LIMIT + 1))])
    expect(page.locator("#composer-error")).to_contain_text("Too big to send")
    expect(page.locator("#composer-error")).to_contain_text("huge.bin")
    expect(page.locator(f"{TRAY} li")).to_have_count(0)

    # The next file is the first request the page makes.
    pick(page, [text_file("small.txt", b"small")])
    expect(chip(page, "small.txt")).to_have_attribute("data-state", "done")
    assert len(posted) == 1


def test_the_servers_413_is_shown_with_retry(chat_person, site_server):
    alice = chat_person("alice")
    page = alice.page

    # A page that does not know the limit: the server's answer has to say it. The
    # attribute goes once the document is parsed, before the page's modules run.
    page.add_init_script(
        """document.addEventListener('readystatechange', () => {
            if (document.readyState === 'interactive') {
                document.getElementById('composer-form').removeAttribute('data-max-upload-bytes');
            }
        });"""
    )
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-socket-state", "open")
    pick(page, [text_file("huge.bin", b"x" * (LIMIT + 1))])
    failed = chip(page, "huge.bin")
    expect(failed).to_have_attribute("data-state", "failed")
    # The server's own sentence, not a bare status.
    expect(failed.locator(".composer-file-status")).not_to_be_empty()
    expect(failed.locator(".composer-file-status")).not_to_contain_text("HTTP 413")
    expect(failed.get_by_role("button", name="Retry uploading huge.bin")).to_be_visible()
    # A failed file holds the message back until it is removed.
    page.fill("#composer", "not yet")
    page.press("#composer", "Enter")
    expect(page.locator("#composer-error")).to_contain_text("retry it or remove it")
    failed.get_by_role("button", name="Remove huge.bin").click()
    expect(page.locator(f"{TRAY} li")).to_have_count(0)


def test_an_eleventh_file_is_refused(chat_person):
    alice = chat_person("alice")
    page = alice.page
    HeldUploads(page)  # nothing needs to reach the server here
    pick(page, [text_file(f"f{number}.txt", b"x") for number in range(11)])
    expect(page.locator(f"{TRAY} li")).to_have_count(10)
    expect(page.locator("#composer-error")).to_contain_text("At most 10 files per message")


def test_files_dropped_on_the_conversation_are_uploaded(chat_person):
    alice = chat_person("alice")
    page = alice.page
    transfer = page.evaluate_handle(
        """() => {
            const transfer = new DataTransfer();
            transfer.items.add(new File(['dropped'], 'dropped.txt', { type: 'text/plain' }));
            return transfer;
        }"""
    )
    page.dispatch_event("#message-scroller", "dragenter", {"dataTransfer": transfer})
    expect(page.locator(".conversation")).to_have_class("conversation dropping")
    page.dispatch_event("#message-scroller", "drop", {"dataTransfer": transfer})
    expect(page.locator(".conversation")).to_have_class("conversation")
    expect(chip(page, "dropped.txt")).to_have_attribute("data-state", "done")


def test_a_pasted_image_is_attached(chat_person):
    alice = chat_person("alice")
    page = alice.page
    image = png("pasted.png")["buffer"]
    page.evaluate(
        """(bytes) => {
            const transfer = new DataTransfer();
            const file = new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' });
            transfer.items.add(file);
            const event = new ClipboardEvent(
                'paste', { clipboardData: transfer, bubbles: true, cancelable: true },
            );
            document.getElementById('composer').dispatchEvent(event);
        }""",
        list(image),
    )
    expect(chip(page, "pasted.png")).to_have_attribute("data-state", "done")
    expect(chip(page, "pasted.png").locator("img")).to_be_visible()
