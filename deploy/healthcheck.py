"""The web image's HEALTHCHECK: asks this container's server for /healthz.

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


def main() -> int:
    """Probes http://127.0.0.1:$PORT/healthz; returns the exit status."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz",
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
        print(f"/healthz answered {error.code}: {error.read()[:300]!r}")
        return 1
    except (OSError, ValueError) as error:
        print(f"/healthz failed: {error}")
        return 1
    if body.get("status") != "ok":
        print(f"/healthz says {body}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
