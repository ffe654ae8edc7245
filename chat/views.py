"""HTTP views: the chat page, sign-up and the health check. Thin: no business logic."""

import logging

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chat.forms import SignupForm
from chat.health import redis_status

logger = logging.getLogger(__name__)


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """Serves the chat page; the socket brings everything else."""
    return render(request, "chat/index.html")


def signup(request: HttpRequest) -> HttpResponse:
    """Creates an account, logs it in and opens the chat page."""
    if request.user.is_authenticated:
        return redirect("index")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        logger.info("account created: user=%s", user.get_username())
        return redirect("index")
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/signup.html", {"form": form}, status=status)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Reports whether the database and Redis answer; 503 names the failing part."""
    report = {"status": "ok", "database": "ok", "redis": redis_status(settings.REDIS_URL)}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        report["database"] = f"error: {exc.__class__.__name__}"
    if report["database"] != "ok" or report["redis"] not in ("ok", "off"):
        report["status"] = "error"
        return JsonResponse(report, status=503)
    return JsonResponse(report)
