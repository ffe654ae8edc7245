"""A request body over its limit is refused by a real server before it is read.

Django's ASGI handler would read the whole body to a temporary file before any
view runs; chatsite/body_limit.py answers 413 first, whether the body declares its
length or comes in chunks without end.
"""

import json
import socket
from urllib.parse import urlsplit

import pytest

from chatsite.body_limit import FRAMING_BYTES

pytestmark = pytest.mark.server

# The site's default upload limit (25 MiB), as the server processes run it.
UPLOAD_LIMIT = 25 * 1024 * 1024


def _connect(server) -> socket.socket:
    address = urlsplit(server.url)
    return socket.create_connection((address.hostname, address.port), timeout=30)


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """Reads one HTTP answer: its status and its JSON body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = dict(
        line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
    )
    length = int({k.lower(): v for k, v in headers.items()}["content-length"])
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def test_an_upload_declaring_more_than_the_limit_is_refused_before_its_body(site_server):
    with _connect(site_server) as sock:
        sock.sendall(
            b"POST /uploads/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 10000000000\r\n\r\n"
        )
        # Not one byte of the ten gigabytes is sent: the answer comes anyway.
        status, body = _answer(sock)
    assert status == 413
    assert body["error"] == "too_big"


def test_a_chunked_upload_is_cut_off_once_it_passes_the_limit(site_server):
    chunk = b"x" * (1024 * 1024)
    sent = 0
    with _connect(site_server) as sock:
        sock.sendall(
            b"POST /uploads/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        # Chunks without end: only the server's answer can stop this loop.
        try:
            while sent < 4 * UPLOAD_LIMIT:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, body = _answer(sock)
    assert status == 413
    assert body["error"] == "too_big"
    assert sent > UPLOAD_LIMIT + FRAMING_BYTES


def test_a_form_post_over_djangos_limit_is_refused_before_its_body(site_server):
    with _connect(site_server) as sock:
        sock.sendall(
            b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 50000000\r\n\r\n"
        )
        status, body = _answer(sock)
    assert (status, body["error"]) == (413, "too_big")
