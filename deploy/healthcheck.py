"""The web image's HEALTHCHECK: asks this container's server for /healthz.

It asks the health listener on CHAT_HEALTH_PORT when one is set (the image sets
it): that answer does not wait in line behind a crowd of reconnecting sockets, and
it fails a stuck event loop. Without it, it asks /healthz on PORT.

Exits 0 when it answers 200 with status "ok", 1 otherwise, printing why (docker
inspect shows it). Standard library only: the slim image has no curl.
"""

import json
import os
import sys
import urllib.error
import urllib.request


def probe_host() -> str:
    """Names a host the site accepts: the first of ALLOWED_HOSTS, made concrete."""
    first = os.environ.get("ALLOWED_HOSTS", "").split(",")[0].strip()
    # ".example.com" stands for the domain and its subdomains, "*" for any name;
    # unset, the site's defaults include localhost.
    first = first.lstrip(".")
    return "localhost" if first in ("", "*") else first


def probe_port() -> str:
    """The health listener's port when there is one (unset or 0: none), else the site's."""
    health = os.environ.get("CHAT_HEALTH_PORT", "").strip()
    return health if health not in ("", "0") else os.environ.get("PORT", "8000")


def main() -> int:
    """Probes http://127.0.0.1:<probe_port()>/healthz; returns the exit status."""
    url = f"http://127.0.0.1:{probe_port()}/healthz"
    request = urllib.request.Request(
        url,
        headers={
            # Django refuses a Host outside ALLOWED_HOSTS, and 127.0.0.1 may not be in it.
            "Host": probe_host(),
            # As if through the TLS proxy, so SECURE_SSL_REDIRECT does not answer the
            # probe with a redirect (the server reads these under --proxy-headers).
            "X-Forwarded-For": "127.0.0.1",
            "X-Forwarded-Proto": "https",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        print(f"{url} answered {error.code}: {error.read()[:300]!r}")
        return 1
    except (OSError, ValueError) as error:
        print(f"{url} failed: {error}")
        return 1
    if body.get("status") != "ok":
        print(f"{url} says {body}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
