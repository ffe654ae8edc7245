"""GET /metrics: this process's Prometheus metrics, for a scraper holding METRICS_TOKEN.

Answered by a middleware placed before every other one: Prometheus scrapes each
server process at its own address, which is no name in ALLOWED_HOSTS.
"""

import hmac
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from chat.metrics import exposition

PATH = "/metrics"


def metrics(request: HttpRequest) -> HttpResponse:
    """Answers the metrics in Prometheus' text format to a request bearing the token."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = settings.METRICS_TOKEN.encode()
    # compare_digest takes as long for a wrong token as for a right one.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        return HttpResponse(
            "A valid metrics token is needed.\n", status=403, content_type="text/plain"
        )
    body, content_type = exposition(request.headers.get("Accept", ""))
    return HttpResponse(body, content_type=content_type)


class MetricsMiddleware:
    """Serves /metrics before the host check, sessions and the HTTPS redirect run.

    The Host header matters for the URLs a page builds; /metrics builds none, and
    its token, not the host name, decides who reads it. Without METRICS_TOKEN the
    path is not served at all (404 as any unknown page).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Answers /metrics itself when a token is set; passes everything else on."""
        if request.path_info == PATH and settings.METRICS_TOKEN:
            return metrics(request)
        return self.get_response(request)
