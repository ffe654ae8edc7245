"""Websocket handshakes: only a trusted origin, exact in scheme, host and port, gets through.

Channels' AllowedHostsOriginValidator compares host names only, so a page on another
port or scheme of the same host could open a socket with the visitor's cookie.
"""

import logging
from urllib.parse import urlsplit

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.http.request import split_domain_port, validate_host

logger = logging.getLogger(__name__)

# Django's HttpRequest.get_host() allows these when DEBUG is on and ALLOWED_HOSTS empty.
_DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


async def refuse_handshake(scope, receive, send) -> None:
    """Refuses a websocket handshake: the server answers it with HTTP 403."""
    # Channels' WebsocketDenier does the same as a consumer, which first makes itself
    # a channel on the channel layer: work a refusal does not need.
    await receive()  # websocket.connect
    await send({"type": "websocket.close"})


class TrustedOriginValidator(OriginValidator):
    """Passes on a handshake whose `Origin` is a trusted origin; refuses every other.

    Trusted: the site's own origin (the socket's scheme and the handshake's `Host`,
    when that host is one of ALLOWED_HOSTS) and each entry of CSRF_TRUSTED_ORIGINS,
    the same origins Django trusts for a form post. Scheme, host and port must all
    match; a missing, repeated or malformed `Origin` is refused.
    """

    def __init__(self, application):
        # Settings are read at each handshake, as Django's CSRF check reads them.
        super().__init__(application, allowed_origins=())

    async def __call__(self, scope, receive, send):
        """Runs the application for a trusted origin; refuses the handshake otherwise."""
        origin = _single_header(scope, b"origin")
        if origin is not None and self.is_trusted(origin, scope):
            return await self.application(scope, receive, send)
        logger.info("socket refused: origin %.100r is not trusted", origin)
        return await refuse_handshake(scope, receive, send)

    def is_trusted(self, origin: str, scope) -> bool:
        """Tells whether `origin` is the site's own origin or one of CSRF_TRUSTED_ORIGINS."""
        try:
            parsed = urlsplit(origin)
            key = self._key(parsed)
            if origin != f"{parsed.scheme}://{parsed.netloc}" or parsed.username is not None:
                return False  # an Origin is scheme://host[:port] and nothing more
            own = _own_origin(scope)
            if own is not None and key == self._key(urlsplit(own)):
                return True
            return any(self.match_allowed_origin(parsed, p) for p in _trusted_patterns())
        except ValueError:
            # urlsplit and .port refuse a broken IPv6 host or a port that is no number.
            return False

    def _key(self, parsed) -> tuple:
        """The (scheme, host, port) of an origin, with the scheme's default port filled in."""
        return parsed.scheme, parsed.hostname, self.get_origin_port(parsed)


def _single_header(scope, name: bytes) -> str | None:
    """The value of a header sent exactly once, else None."""
    values = [value for header, value in scope.get("headers", ()) if header == name]
    return values[0].decode("latin-1") if len(values) == 1 else None


def _own_origin(scope) -> str | None:
    """The site's own origin as this handshake names it, or None for a host not allowed."""
    host = _single_header(scope, b"host")
    if host is None:
        return None
    domain, _port = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or (_DEBUG_HOSTS if settings.DEBUG else [])
    if not domain or not validate_host(domain, allowed):
        return None
    # The server sets the scheme: wss for TLS, or from X-Forwarded-Proto with
    # --proxy-headers (uvicorn; daphne leaves it out, which means ws).
    secure = scope.get("scheme", "ws") in ("wss", "https")
    if settings.SECURE_PROXY_SSL_HEADER:
        # As Django's request.is_secure(): the front server's header, when it sent one.
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        name = header.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        forwarded = _single_header(scope, name)
        if forwarded is not None:
            secure = forwarded.split(",", 1)[0].strip() == secure_value
    return f"{'https' if secure else 'http'}://{host}"


def _trusted_patterns() -> list[str]:
    """CSRF_TRUSTED_ORIGINS in the pattern form of Channels' OriginValidator."""
    patterns = []
    for origin in settings.CSRF_TRUSTED_ORIGINS:
        scheme, separator, netloc = origin.partition("://")
        if not scheme or not separator or "*" in netloc.removeprefix("*."):
            continue  # not an origin Django's CSRF check would trust either
        if netloc.startswith("."):
            continue  # Django takes this literally, Channels as a wildcard: trust neither
        # "Any subdomain" is *.example.com in Django and .example.com in Channels.
        patterns.append(f"{scheme}://{netloc.removeprefix('*')}")
    return patterns
