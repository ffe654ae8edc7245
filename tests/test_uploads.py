"""POST /uploads/: who may upload, the size limit (declared or streamed), types read from
the bytes, images re-encoded upright without metadata and thumbnailed, and the rate limit.
"""

import io
import json
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client, RequestFactory
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse
from PIL import ExifTags, Image

from chat.files import views
from chat.files.uploads import upload_name_clean
from chat.messaging.changes import message_delete
from chat.messaging.store import message_store
from chat.models import Upload
from chat.protocol import Send
from tests.conftest import login_client

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_passwords", "media")]

UPLOAD = reverse("upload")


def stored_files(media) -> list[str]:
    """Every file in the storage, as names relative to it."""
    if not media.exists():
        return []
    return sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file())


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def client(alice) -> Client:
    return login_client(alice)


def image_bytes(fmt: str = "PNG", size=(64, 48), mode="RGB", **save) -> bytes:
    """A real image made by Pillow: a gradient, so it is not trivially compressible."""
    image = Image.new(mode, size)
    if mode == "RGB":
        image.putdata(
            [(x * 4 % 256, y * 4 % 256, 128) for y in range(size[1]) for x in range(size[0])]
        )
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def post_file(client: Client, name: str, data: bytes, **extra):
    """Uploads one file as the page does: multipart field `file`."""
    return client.post(UPLOAD, {"file": SimpleUploadedFile(name, data)}, **extra)


def served(client: Client, upload_id: str, thumb: bool = False) -> bytes:
    """The bytes the owner is served for an upload (or its thumbnail)."""
    url = reverse("upload-thumb" if thumb else "upload-file", args=[upload_id])
    response = client.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


# --- Who may upload -------------------------------------------------------------


def test_upload_answers_201_with_id_name_size_and_type(client, alice, media):
    response = post_file(client, "notes.txt", b"remember the milk\n")
    assert response.status_code == 201
    body = response.json()
    assert body == {"id": body["id"], "name": "notes.txt", "size": 18, "type": "text/plain"}
    upload = Upload.objects.get(key=body["id"])
    assert upload.owner == alice and upload.message is None
    assert served(client, body["id"]) == b"remember the milk\n"
    # The storage name is not the public id's guessable neighbour: it holds the key.
    assert upload.file.name.startswith("uploads/") and body["id"] in upload.file.name


def test_anonymous_upload_is_sent_to_the_login_page(media):
    response = post_file(Client(), "notes.txt", b"hello")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={UPLOAD}"
    assert stored_files(media) == []
    assert not Upload.objects.exists()


def test_upload_without_csrf_token_is_refused(alice, media):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    response = post_file(strict, "notes.txt", b"hello")
    assert response.status_code == 403
    assert stored_files(media) == []


def test_get_on_the_upload_endpoint_is_not_allowed(client):
    assert client.get(UPLOAD).status_code == 405


# --- Sizes ----------------------------------------------------------------------


def test_file_over_the_limit_is_refused_with_413_before_its_body_is_read(client, settings, media):
    settings.CHAT_MAX_UPLOAD_BYTES = 1000
    response = post_file(client, "big.bin", b"x" * 200_000)
    assert response.status_code == 413
    assert response.json()["error"] == "too_big"
    assert "1,000 bytes" in response.json()["message"]
    assert stored_files(media) == []
    assert not Upload.objects.exists()


class CountingStream(io.BytesIO):
    """A request body that remembers how many bytes were read from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size=-1):
        line = super().readline(size)
        self.bytes_read += len(line)
        return line


def test_body_longer_than_its_declared_length_is_stopped_after_the_limit(alice, settings, media):
    # The request says 900 bytes, so the declared-length check lets it through; the
    # body the parser streams (as an ASGI server hands it over) holds a megabyte.
    # The handler that counts streamed bytes stops reading just past the limit.
    settings.CHAT_MAX_UPLOAD_BYTES = 1000
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("big.bin", b"x" * 1_000_000)})
    request = RequestFactory().generic(
        "POST", UPLOAD, CONTENT_TYPE=MULTIPART_CONTENT, CONTENT_LENGTH="900"
    )
    request._stream = stream = CountingStream(body)
    request.user = alice
    response = views.upload(request)
    assert response.status_code == 413
    assert json.loads(response.content)["error"] == "too_big"
    assert stream.bytes_read < len(body) // 4
    assert stored_files(media) == []


def test_file_just_under_the_limit_is_accepted(client, settings):
    settings.CHAT_MAX_UPLOAD_BYTES = 1000
    assert post_file(client, "ok.bin", b"\x00" * 1000).status_code == 201
    assert post_file(client, "no.bin", b"\x00" * 1001).status_code == 413


def test_file_larger_than_memory_uploads_is_stored_whole(client):
    # Over Django's 2.5 MB in-memory threshold: the upload arrives as a temporary file.
    data = os.urandom(3 * 1024 * 1024)
    body = post_file(client, "archive.bin", data).json()
    assert (body["size"], body["type"]) == (len(data), "application/octet-stream")
    assert served(client, body["id"]) == data


def test_empty_file_is_refused(client, media):
    response = post_file(client, "empty.txt", b"")
    assert response.status_code == 400
    assert response.json()["error"] == "empty"
    assert response.json()["message"]
    assert stored_files(media) == []


def test_request_without_a_file_field_is_refused(client):
    response = client.post(UPLOAD, {"other": "value"})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_upload"
    assert response.json()["message"]


# --- Types from the bytes -----------------------------------------------------------


@pytest.mark.parametrize(
    "name, data",
    [
        ("page.html", b"<!doctype html><script>alert(document.cookie)</script>"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    ],
)
def test_active_content_is_stored_as_plain_text(client, name, data):
    response = post_file(client, name, data)
    assert response.status_code == 201
    assert response.json()["type"] == "text/plain"


def test_bytes_that_are_not_utf8_text_are_octet_stream(client):
    response = post_file(client, "data.txt", bytes(range(256)))
    assert response.json()["type"] == "application/octet-stream"


def test_known_formats_are_recognised_whatever_the_name(client):
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
    assert post_file(client, "report.txt", pdf).json()["type"] == "application/pdf"


@pytest.mark.parametrize(
    "data",
    [
        b"MZ" + b"\x90\x00" * 40 + b"This program cannot be run in DOS mode",
        b"\x7fELF\x02\x01\x01" + b"\x00" * 60,
        b"\xcf\xfa\xed\xfe" + b"\x00" * 60,
    ],
    ids=["windows", "linux", "macos"],
)
def test_programs_are_refused_whatever_their_name(client, media, data):
    response = post_file(client, "holiday.pdf", data)
    assert response.status_code == 415
    assert response.json()["error"] == "bad_type"
    assert stored_files(media) == []


def test_png_named_jpg_is_stored_as_png(client):
    response = post_file(client, "photo.jpg", image_bytes("PNG"))
    assert response.status_code == 201
    assert response.json()["type"] == "image/png"
    assert response.json()["name"] == "photo.jpg"
    assert Image.open(io.BytesIO(served(client, response.json()["id"]))).format == "PNG"


def test_text_named_as_an_image_is_refused(client, media):
    response = post_file(client, "photo.jpg", b"just some words, not a picture")
    assert response.status_code == 415
    assert response.json()["error"] == "bad_type"
    assert stored_files(media) == []


def test_broken_image_is_refused(client, media):
    truncated = image_bytes("JPEG", size=(200, 200))[:300]
    response = post_file(client, "photo.jpg", truncated)
    assert response.status_code == 415
    assert response.json()["error"] == "bad_type"
    assert stored_files(media) == []


# --- Images -------------------------------------------------------------------------


def jpeg_with_gps(size=(800, 400)) -> bytes:
    """A JPEG with camera EXIF, a GPS position, a rotation tag, a comment and XMP."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    exif[ExifTags.Base.Orientation] = 6  # shown turned a quarter clockwise
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (48.0, 51.0, 24.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (2.0, 21.0, 3.0)
    return image_bytes(
        "JPEG",
        size=size,
        exif=exif,
        comment=b"SecretComment",
        xmp=b"<x:xmpmeta>SecretXmp</x:xmpmeta>",
    )


def test_jpeg_is_served_upright_without_exif_gps_or_comments(client):
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    response = post_file(client, "IMG_0001.jpg", original)
    assert response.status_code == 201
    body = response.json()
    # Turned upright: the 800x400 picture tagged "rotate" is 400 wide, 800 high.
    assert (body["type"], body["width"], body["height"]) == ("image/jpeg", 400, 800)

    data = served(client, body["id"])
    image = Image.open(io.BytesIO(data))
    assert image.size == (400, 800)
    assert dict(image.getexif()) == {}
    assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    for secret in (b"SecretCam", b"SecretComment", b"SecretXmp", b"Exif"):
        assert secret not in data
    assert body["size"] == len(data)


def test_image_gets_a_smaller_thumbnail_with_its_aspect(client):
    body = post_file(client, "wide.png", image_bytes("PNG", size=(1000, 500))).json()
    assert (body["width"], body["height"]) == (1000, 500)
    thumb = Image.open(io.BytesIO(served(client, body["id"], thumb=True)))
    assert thumb.format == "WEBP"
    assert thumb.size == (320, 160)


def test_image_metadata_in_png_is_dropped_too(client):
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    body = post_file(client, "shot.png", image_bytes("PNG", exif=exif)).json()
    data = served(client, body["id"])
    assert b"SecretCam" not in data
    assert dict(Image.open(io.BytesIO(data)).getexif()) == {}


def test_animated_gif_keeps_its_frames(client):
    frames = [Image.new("RGB", (40, 30), (i * 60, 255 - i * 60, 0)) for i in range(4)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    body = post_file(client, "wave.gif", out.getvalue()).json()
    assert (body["type"], body["width"], body["height"]) == ("image/gif", 40, 30)
    image = Image.open(io.BytesIO(served(client, body["id"])))
    assert image.n_frames == 4
    assert image.info["duration"] == 80


def test_decompression_bomb_is_refused(client, media):
    # 20000 x 20000 one-bit pixels: a few dozen kilobytes on the wire, 400 million
    # pixels once decoded (ten times the default limit).
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, "PNG")
    assert len(out.getvalue()) < 100_000
    response = post_file(client, "bomb.png", out.getvalue())
    assert response.status_code == 413
    assert response.json() == {
        "error": "too_big",
        "message": "the image has too many pixels (at most 40,000,000)",
    }
    assert stored_files(media) == []


def test_image_over_a_lowered_pixel_limit_is_refused(client, settings):
    settings.CHAT_MAX_IMAGE_PIXELS = 64 * 48 - 1
    assert post_file(client, "a.png", image_bytes("PNG", size=(64, 48))).status_code == 413
    settings.CHAT_MAX_IMAGE_PIXELS = 64 * 48
    assert post_file(client, "a.png", image_bytes("PNG", size=(64, 48))).status_code == 201


# --- Names and the rate limit ---------------------------------------------------------


def test_file_name_is_kept_for_display_without_control_characters(client):
    response = post_file(client, "r\u00e9sum\u00e9\u202e fdp.exe", b"plain words")
    assert response.json()["name"] == "r\u00e9sum\u00e9 fdp.exe"


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\notes.txt", "notes.txt"),
        ("tab\there\nnewline.txt", "tab here newline.txt"),
        ("..", "file"),
        ("\x00\x01", "file"),
        ("a" * 300 + ".txt", "a" * 251 + ".txt"),
    ],
)
def test_upload_name_clean(raw, clean):
    assert upload_name_clean(raw) == clean


def test_uploads_over_the_rate_limit_get_429(client, settings):
    settings.CHAT_UPLOAD_RATE_LIMIT = (2, 60)
    assert post_file(client, "1.txt", b"one").status_code == 201
    assert post_file(client, "2.txt", b"two").status_code == 201
    response = post_file(client, "3.txt", b"three")
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert int(response["Retry-After"]) == response.json()["retry_after"] >= 1
    assert Upload.objects.count() == 2


# --- Lifecycle: files leave storage with their row, once that commits ------------------


def test_deleting_an_upload_removes_its_file_and_thumbnail_once_committed(
    client, media, django_capture_on_commit_callbacks
):
    body = post_file(client, "sky.png", image_bytes("PNG", size=(600, 400))).json()
    upload = Upload.objects.get(key=body["id"])
    names = [upload.file.name, upload.thumb.name]
    assert stored_files(media) == sorted(names)
    with django_capture_on_commit_callbacks(execute=True):
        upload.delete()
        assert stored_files(media) == sorted(names)  # not before the commit
    assert stored_files(media) == []


def test_a_deletion_rolled_back_keeps_the_files(client, media, django_capture_on_commit_callbacks):
    post_file(client, "sky.png", image_bytes("PNG"))
    stored = stored_files(media)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        Upload.objects.get().delete()
        raise RuntimeError("the deletion fails later")
    assert callbacks == []
    assert stored_files(media) == stored
    assert Upload.objects.count() == 1


def test_deleting_a_message_deletes_its_files(
    client, alice, make_user, media, django_capture_on_commit_callbacks
):
    make_user("bob")
    key = post_file(client, "plan.txt", b"the plan").json()["id"]
    message = message_store(sender=alice, send=Send(body="see", client_id="c1", to="bob"))
    Upload.objects.filter(key=key).update(message_id=message.message.id)
    with django_capture_on_commit_callbacks(execute=True):
        message_delete(user_id=alice.pk, message_id=message.message.id)
    assert not Upload.objects.exists()
    assert stored_files(media) == []


def test_a_message_row_removed_takes_its_files_along(
    client, alice, make_user, media, django_capture_on_commit_callbacks
):
    # A user deleted from the admin takes their messages along (a database cascade).
    bob = make_user("bob")
    key = post_file(client, "sky.png", image_bytes("PNG")).json()["id"]
    message = message_store(sender=alice, send=Send(body="", client_id="c1", to="bob"))
    Upload.objects.filter(key=key).update(message_id=message.message.id)
    with django_capture_on_commit_callbacks(execute=True):
        bob.delete()
    assert not Upload.objects.exists()
    assert stored_files(media) == []
