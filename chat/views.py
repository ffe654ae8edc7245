"""HTTP views: the chat page, sign-up, the login lockout page and the health check.

Thin: no business logic.
"""

import logging
import math

from axes.helpers import get_client_ip_address, get_client_username, get_cool_off
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chat import health
from chat.forms import SignupForm
from chat.ratelimit import signup_rate_check

logger = logging.getLogger(__name__)


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """Serves the chat page; the socket brings everything else."""
    return render(request, "chat/index.html", {"max_upload_bytes": settings.CHAT_MAX_UPLOAD_BYTES})


def signup(request: HttpRequest) -> HttpResponse:
    """Creates an account, logs it in and opens the chat page; too many tries get 429."""
    if request.user.is_authenticated:
        return redirect("index")
    if request.method == "POST":
        address = get_client_ip_address(request) or "unknown"
        retry_after = signup_rate_check(address=address)
        if retry_after is not None:
            logger.warning("sign-up throttled: address=%s", address)
            return _too_many(
                request,
                "registration/signup.html",
                {"form": SignupForm(), "throttled": _wait_text(retry_after)},
                retry_after,
            )
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        logger.info("account created: user=%s", user.get_username())
        return redirect("index")
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)


def login_locked_out(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Answers a login refused by the lockout (django-axes' AXES_LOCKOUT_CALLABLE) with 429.

    axes passes the original response and the credentials in an order that differs
    between its sync and async paths; neither is needed here.
    """
    username = get_client_username(request)
    address = getattr(request, "axes_ip_address", None) or get_client_ip_address(request)
    logger.warning("login locked out: username=%r address=%s", username, address)
    cool_off = get_cool_off(request)
    if cool_off is None:  # locked until staff reset it (no cool-off configured)
        return _too_many(request, "registration/locked_out.html", {"wait": None}, None)
    retry_after = cool_off.total_seconds()
    return _too_many(
        request, "registration/locked_out.html", {"wait": _wait_text(retry_after)}, retry_after
    )


def _too_many(request: HttpRequest, template: str, context: dict, retry_after: float | None):
    response = render(request, template, context, status=429)
    if retry_after is not None:
        response["Retry-After"] = str(math.ceil(retry_after))
    return response


def _wait_text(seconds: float) -> str:
    """Says how long to wait, rounded up: "40 seconds", "1 minute", "15 minutes"."""
    if seconds < 60:
        whole = max(math.ceil(seconds), 1)
        return ngettext("%(count)d second", "%(count)d seconds", whole) % {"count": whole}
    minutes = math.ceil(seconds / 60)
    return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Reports whether the database and Redis answer; 503 names the failing part."""
    status, report = health.report()
    return JsonResponse(report, status=status)
