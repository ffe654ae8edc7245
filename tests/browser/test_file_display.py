"""A message's files as another person's page shows them: a photo's thumbnail that
opens the image viewer, a PDF's card that downloads the same bytes, in a room and
in a direct conversation nobody else may open.
"""

import base64
import io
import uuid

import pytest
from PIL import Image

from tests.browser.chat_page import expect, open_direct, row_with_id

pytestmark = [pytest.mark.browser, pytest.mark.server]

PHOTO_SIZE = (1200, 900)

# Uploads a file from the page as the composer does: multipart, CSRF token from the cookie.
UPLOAD = """async ([name, type, data]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const form = new FormData();
    form.append('file', new File([bytes], name, { type }));
    const cookie = document.cookie.split('; ').find((c) => c.startsWith('csrftoken='));
    const headers = { 'X-CSRFToken': cookie ? cookie.split('=')[1] : '' };
    const response = await fetch('/uploads/', { method: 'POST', body: form, headers });
    return { status: response.status, json: await response.json().catch(() => null) };
}"""

# Sends one frame on a socket of its own (same origin, same cookies) and returns
# the server's answer to it: its ack, or an error frame.
SEND = """(frame) => new Promise((resolve, reject) => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}/ws/chat/`);
    socket.onmessage = (event) => {
        const answer = JSON.parse(event.data);
        if (answer.type === 'hello') socket.send(JSON.stringify(frame));
        const ours = answer.client_id === frame.client_id;
        if ((answer.type === 'ack' && ours) || answer.type === 'error') {
            socket.close();
            resolve(answer);
        }
    };
    socket.onerror = () => reject(new Error('socket failed'));
})"""

IMAGE_LOADED = "img => img.complete && img.naturalWidth > 0"


def photo_bytes(colour: tuple[int, int, int]) -> bytes:
    """A real JPEG photo-sized image, drawn with Pillow: a colour band on a white field."""
    image = Image.new("RGB", PHOTO_SIZE, (250, 250, 250))
    image.paste(colour, (0, PHOTO_SIZE[1] // 3, PHOTO_SIZE[0], 2 * PHOTO_SIZE[1] // 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def pdf_bytes(size: int) -> bytes:
    """A one-page PDF padded with a comment to exactly `size` bytes."""
    head = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    head += b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    tail = b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    return head + b"%" + b"x" * (size - len(head) - len(tail) - 1) + tail


def upload(page, name: str, content_type: str, data: bytes) -> dict:
    """Uploads `data` as `name` from `page`; returns the upload's JSON."""
    answer = page.evaluate(UPLOAD, [name, content_type, base64.b64encode(data).decode()])
    assert answer["status"] == 201, answer
    return answer["json"]


def send_files(page, where: dict, *uploads: dict, body: str = "") -> int:
    """Sends `uploads` (with `body`, empty by default) to `where`; returns the stored id."""
    frame = {"type": "send", **where, "body": body, "client_id": uuid.uuid4().hex}
    frame["attachments"] = [item["id"] for item in uploads]
    answer = page.evaluate(SEND, frame)
    assert answer["type"] == "ack", answer
    return answer["id"]


def sent_photo_url(row) -> str:
    """The full image's link a thumbnail opens."""
    return row.locator("button.attachment-thumb").get_attribute("data-url")


def open_viewer(page, thumb) -> None:
    """Clicks a thumbnail and waits for the viewer's full image."""
    thumb.click()
    viewer = page.locator("dialog#image-viewer")
    expect(viewer).to_be_visible()
    page.wait_for_function(IMAGE_LOADED, arg=viewer.locator("img").element_handle())


def test_photo_and_pdf_show_as_thumbnail_and_card_and_open_or_download(chat_person, site_server):
    alice, bob, carol = chat_person("alice"), chat_person("bob"), chat_person("carol")
    photo, pdf = photo_bytes((30, 110, 200)), pdf_bytes(1536)
    sent_photo = upload(alice.page, "beach.jpg", "image/jpeg", photo)
    sent_pdf = upload(alice.page, "report.pdf", "application/pdf", pdf)
    message_id = send_files(alice.page, {"room": "general"}, sent_photo, sent_pdf)

    row = row_with_id(bob.page, str(message_id))
    expect(row).to_have_count(1)
    # Files only: no empty line of text, the thumbnail and the card under the name.
    expect(row.locator(".body")).to_be_hidden()
    thumb = row.locator("button.attachment-thumb")
    image = thumb.locator("img")
    expect(image).to_have_attribute("alt", "beach.jpg")
    # The space is held before the image arrives: 1200 by 900 fits 320 by 240.
    expect(image).to_have_attribute("width", "320")
    expect(image).to_have_attribute("height", "240")
    image.scroll_into_view_if_needed()
    bob.page.wait_for_function(IMAGE_LOADED, arg=image.element_handle())
    box = image.bounding_box()
    assert (round(box["width"]), round(box["height"])) == (320, 240)

    # The viewer shows the full image with its name; Esc closes it, focus comes back.
    open_viewer(bob.page, thumb)
    viewer = bob.page.locator("dialog#image-viewer")
    expect(viewer.get_by_role("heading")).to_have_text("beach.jpg")
    full = viewer.locator("img")
    assert full.evaluate("img => img.naturalWidth") == PHOTO_SIZE[0]
    expect(viewer.get_by_role("link", name="Download beach.jpg")).to_have_attribute(
        "href", sent_photo_url(row)
    )
    bob.page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(thumb).to_be_focused()
    # The close button and a click beside the image close it too.
    open_viewer(bob.page, thumb)
    viewer.get_by_role("button", name="Close").click()
    expect(viewer).to_be_hidden()
    expect(thumb).to_be_focused()
    open_viewer(bob.page, thumb)
    bob.page.mouse.click(5, 5)
    expect(viewer).to_be_hidden()

    # The PDF's card: its type, name and size; clicking it downloads the same bytes.
    card = row.locator("a.attachment-file")
    expect(card.locator(".attachment-type")).to_have_text("PDF")
    expect(card.locator(".attachment-name")).to_have_text("report.pdf")
    expect(card.locator(".attachment-size")).to_have_text("1.5 KB")
    with bob.page.expect_download() as download:
        card.click()
    with open(download.value.path(), "rb") as saved:
        assert saved.read() == pdf

    # A reaction redraws the row without loading its image again.
    image.evaluate("img => { img.dataset.probe = 'first'; }")
    row.hover()
    row.get_by_role("button", name="Add a reaction").click()
    row.get_by_role("button", name="React with 👍").click()
    expect(row.locator(".reaction")).to_have_count(1)
    expect(row.locator("img[data-probe=first]")).to_have_count(1)

    # Everyone in the room may fetch the room's files.
    pdf_url = card.get_attribute("href")
    assert carol.page.context.request.get(site_server.url + pdf_url).status == 200


def test_files_of_a_direct_message_show_to_its_two_people_only(chat_person, site_server):
    alice, bob, carol = chat_person("alice"), chat_person("bob"), chat_person("carol")
    photo, pdf = photo_bytes((200, 60, 40)), pdf_bytes(3000)
    sent_photo = upload(alice.page, "sunset.jpg", "image/jpeg", photo)
    sent_pdf = upload(alice.page, "invoice.pdf", "application/pdf", pdf)
    message_id = send_files(alice.page, {"to": bob.name}, sent_photo, sent_pdf)

    open_direct(bob.page, alice.name)
    row = row_with_id(bob.page, str(message_id))
    image = row.locator("button.attachment-thumb img")
    expect(image).to_have_attribute("alt", "sunset.jpg")
    image.scroll_into_view_if_needed()
    bob.page.wait_for_function(IMAGE_LOADED, arg=image.element_handle())
    card = row.locator("a.attachment-file")
    expect(card).to_contain_text("invoice.pdf")
    expect(card.locator(".attachment-size")).to_have_text("2.9 KB")
    with bob.page.expect_download() as download:
        card.click()
    with open(download.value.path(), "rb") as saved:
        assert saved.read() == pdf

    # Carol is logged in but not in the conversation: the files do not exist for her.
    request = carol.page.context.request
    for url in (card.get_attribute("href"), image.get_attribute("src"), sent_photo_url(row)):
        assert request.get(site_server.url + url).status == 404, url

    # Deleted by alice: bob's row keeps its tombstone and shows no files.
    mine = row_with_id(alice.page, str(message_id))
    open_direct(alice.page, bob.name)
    mine.hover()
    mine.get_by_role("button", name="Delete message").click()
    mine.get_by_role("button", name="Delete", exact=True).click()
    expect(row.locator(".body")).to_have_text("message deleted")
    expect(row.locator(".attachments")).to_be_hidden()
    expect(row.locator("img, a.attachment-file")).to_have_count(0)
