"""A listener of its own for health probes: `GET /healthz` on CHAT_HEALTH_PORT, answered
from a thread of its own, so that a probe does not wait in line behind the crowd of
sockets that a reconnect storm brings to the site's port.

It reports what the site's /healthz reports (database, Redis) and the event loop's
state, which /healthz on the site's port shows only by being answered at all.
"""

import json
import logging
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

from django.conf import settings
from django.db import close_old_connections

from chat import health

logger = logging.getLogger("chat.health")
PATH = "/healthz"


class _Handler(BaseHTTPRequestHandler):
    """Answers GET and HEAD of /healthz, 404 elsewhere, 405 for other methods."""

    server_version = "chat-health"
    # A client that connects and sends nothing holds the listener this long at most.
    timeout = 5

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _refuse_method(self) -> None:
        self._send(405, {"status": "error", "detail": "use GET"}, {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _refuse_method

    def _answer(self, *, with_body: bool) -> None:
        if urllib.parse.urlsplit(self.path).path != PATH:
            self._send(404, {"status": "error", "detail": f"only {PATH} is here"}, {}, with_body)
            return
        # As Django does around a request: a connection past its age or broken by a
        # database restart is replaced, not reused.
        close_old_connections()
        try:
            status, report = health.report(event_loop=True)
        finally:
            close_old_connections()
        self._send(status, report, {}, with_body)

    def _send(self, status: int, body: dict, headers: dict, with_body: bool = True) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if with_body:
            self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:
        # Probes come every few seconds: worth a line only when looking closely.
        logger.debug("health listener: " + format, *args)


class _Listener(HTTPServer):
    # Another process's probe socket in TIME_WAIT must not keep a restart from binding.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily) -> None:
        self.address_family = family  # IPv6 when HOST is an IPv6 address
        super().__init__(address, _Handler)


def start(host: str, port: int) -> HTTPServer:
    """Listens on host:port and answers probes in a daemon thread; returns the server
    (its `server_address` names the port when `port` is 0). Stops start-up with a
    message naming CHAT_HEALTH_PORT when it cannot listen."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listener = _Listener((host, port), family)
    except OSError as error:
        raise SystemExit(f"CHAT_HEALTH_PORT {port}: cannot listen on {host}: {error}") from None
    thread = threading.Thread(target=listener.serve_forever, name="health", daemon=True)
    thread.start()
    logger.info("health listener on %s:%s%s", host, listener.server_address[1], PATH)
    return listener


def start_from_settings(host: str) -> HTTPServer | None:
    """Starts the listener on CHAT_HEALTH_PORT, if set, beside the site on `host`."""
    if not settings.CHAT_HEALTH_PORT:
        return None
    return start(host, settings.CHAT_HEALTH_PORT)
