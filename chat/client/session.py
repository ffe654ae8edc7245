"""Logging in over HTTP as a browser does (CSRF token, session cookie), and the
websocket address, Origin and Cookie header that session opens the socket with.
"""

import http.cookiejar
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request

LOGIN_PATH = "/accounts/login/"
SOCKET_PATH = "/ws/chat/"
TIMEOUT_SECONDS = 15

_TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class LoginRefused(Exception):
    """The server refused the username and password (or locked the login out)."""


class Unreachable(Exception):
    """The server could not be reached, or answered in a way that may pass (5xx)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A login answers with a redirect; the client reads it instead of following it.
    def redirect_request(self, *args, **kwargs):
        return None


class Session:
    """One logged-in session of `user` on the server at `server` (http:// or https://)."""

    def __init__(self, *, server: str, user: str, password: str) -> None:
        parts = urllib.parse.urlsplit(server.strip())
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"--server must be an http:// or https:// address, not {server!r}")
        path = parts.path.rstrip("/")
        self.base = f"{parts.scheme}://{parts.netloc}{path}"
        self.origin = f"{parts.scheme}://{parts.netloc}"
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        # Presence bursts as batches of changes, as the page asks (static/chat/presence.js):
        # not the whole online list to every socket for every burst.
        self.socket_url = f"{ws_scheme}://{parts.netloc}{path}{SOCKET_PATH}?presence=batch"
        self.user = user
        self._password = password
        self.jar = http.cookiejar.CookieJar()
        # Certificates are verified as urllib does by default (the system's CAs).
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )

    def login(self) -> None:
        """Logs in with the login form; raises LoginRefused or Unreachable."""
        login_url = self.base + LOGIN_PATH
        status, _, page = self._open(urllib.request.Request(login_url))
        if status in {301, 302, 307, 308}:
            raise LoginRefused(f"the server redirects {login_url}: check the --server address")
        if status != 200:
            raise Unreachable(f"the login page answered {status}")
        found = _TOKEN.search(page)
        token = found[1] if found else self.cookie("csrftoken")
        fields = {"username": self.user, "password": self._password, "next": "/"}
        if token:
            fields["csrfmiddlewaretoken"] = token
        request = urllib.request.Request(
            login_url,
            data=urllib.parse.urlencode(fields).encode(),
            # Django's CSRF check on HTTPS wants a Referer of the same origin.
            headers={"Referer": login_url, "Origin": self.origin},
        )
        status, headers, _ = self._open(request)
        if status in {302, 303}:
            return  # Django's login view redirects only on success
        if status == 200:
            raise LoginRefused(f"wrong username or password for {self.user!r}")
        if status == 429:
            wait = headers.get("Retry-After")
            later = f" (try again in {wait} s)" if wait else ""
            raise LoginRefused(f"too many failed logins for {self.user!r}{later}")
        if status == 403:
            raise LoginRefused("the login was refused (403): check the --server address")
        raise Unreachable(f"the login answered {status}")

    def cookie(self, name: str) -> str | None:
        """Returns the value of one of the session's cookies."""
        return next((cookie.value for cookie in self.jar if cookie.name == name), None)

    def cookie_header(self) -> str:
        """Returns the Cookie header a browser would send to the websocket address."""
        # The jar applies domain, path and Secure rules for the http(s) twin of the address.
        request = urllib.request.Request(self.base + SOCKET_PATH)
        self.jar.add_cookie_header(request)
        return request.get_header("Cookie") or ""

    def _open(self, request: urllib.request.Request) -> tuple[int, dict, str]:
        try:
            with self._opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                return response.status, response.headers, response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            if error.code >= 500:
                raise Unreachable(f"the server answered {error.code}") from error
            return error.code, error.headers, error.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, ssl.SSLCertVerificationError):
                # Not a passing outage: retrying would only hide a wrong or forged certificate.
                raise LoginRefused(
                    f"the certificate of {self.origin} was refused: {reason}"
                ) from error
            raise Unreachable(f"cannot reach {self.origin}: {reason}") from error
