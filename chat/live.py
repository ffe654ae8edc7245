"""The staff "Live" admin page: who is online on which process, sockets per process,
messages per minute, and recent slow-socket closes and layer reconnects.

A plain server-rendered page that reloads itself; each process's figures come from
its report (chat/metrics.py), who is online from presence.
"""

import time
from datetime import UTC, datetime, timedelta

from asgiref.sync import async_to_sync
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from redis.exceptions import RedisError

from chat import metrics
from chat.models import Message
from chat.presence import get_presence

# How far back the page looks: minutes of messages, and "recent" closes and reconnects.
MINUTES = 10
RECENT_SECONDS = 15 * 60
REFRESH_SECONDS = 10


def message_counts_by_minute(*, minutes: int, now: datetime) -> list[tuple[datetime, int]]:
    """Counts the messages stored in each of the last `minutes` minutes, newest first."""
    newest = now.replace(second=0, microsecond=0)
    oldest = newest - timedelta(minutes=minutes - 1)
    counts = dict(
        Message.objects.filter(sent_at__gte=oldest)
        .order_by()
        .annotate(minute=TruncMinute("sent_at"))
        .values("minute")
        .annotate(n=Count("id"))
        .values_list("minute", "n")
    )
    counts = {minute.astimezone(UTC): n for minute, n in counts.items()}
    return [
        (minute, counts.get(minute, 0))
        for minute in (newest - timedelta(minutes=back) for back in range(minutes))
    ]


def _events(event: dict, now: float) -> dict:
    """A process's count of one event: since start, recently, and when last."""
    times = event["times"]
    return {
        "total": event["total"],
        "recent": sum(1 for at in times if now - at <= RECENT_SECONDS),
        "last": datetime.fromtimestamp(times[-1], UTC) if times else None,
    }


def _processes() -> tuple[list[dict], str | None]:
    """Every process's figures for the page, and a note when only this one's are known."""
    note = None
    try:
        reports = metrics.process_reports()
    except (RedisError, OSError) as exc:
        note = gettext("Redis did not answer (%(error)s): only this process is shown.") % {
            "error": exc.__class__.__name__
        }
        reports = [metrics.snapshot()]
    now = time.time()
    return [
        {
            "name": report["process"],
            "this": report["process"] == metrics.PROCESS,
            "sockets": report["sockets"],
            "users": report["users"],
            "reported": datetime.fromtimestamp(report["reported_at"], UTC),
            "slow": _events(report["slow_sockets_closed"], now),
            "reconnects": _events(report["layer_reconnects"], now),
        }
        for report in reports
    ], note


def live(request: HttpRequest, *, site) -> HttpResponse:
    """Renders the Live page of an admin site (staff only: see `register`)."""
    try:
        online, away = async_to_sync(get_presence().statuses)()
    except (RedisError, OSError) as exc:
        online, away = [], []
        presence_note = gettext("Presence is unavailable (%(error)s).") % {
            "error": exc.__class__.__name__
        }
    else:
        presence_note = None
    processes, process_note = _processes()
    where: dict[str, list[str]] = {}
    for process in processes:
        for user in process["users"]:
            where.setdefault(user, []).append(process["name"])
    per_minute = message_counts_by_minute(minutes=MINUTES, now=timezone.now())
    context = {
        **site.each_context(request),
        "title": gettext("Live"),
        "refresh_seconds": REFRESH_SECONDS,
        "people": [
            {"name": user, "away": user in away, "processes": where.get(user, [])}
            for user in online
        ],
        "presence_note": presence_note,
        "processes": processes,
        "process_note": process_note,
        "sockets_total": sum(process["sockets"] for process in processes),
        "per_minute": per_minute,
        "messages_total": sum(n for _, n in per_minute),
        "minutes": MINUTES,
        "recent_minutes": RECENT_SECONDS // 60,
    }
    return render(request, "admin/chat/live.html", context)


def register(site) -> None:
    """Adds the Live page to an admin site: its URL, and a link in the chat app's list."""
    get_urls, get_app_list = site.get_urls, site.get_app_list

    def view(request: HttpRequest) -> HttpResponse:
        return live(request, site=site)

    def urls():
        return [path("live/", site.admin_view(view), name="chat_live"), *get_urls()]

    def app_list(request, app_label=None):
        apps = get_app_list(request, app_label)
        for app in apps:
            if app["app_label"] == "chat":
                url = reverse("admin:chat_live", current_app=site.name)
                app["models"].append(
                    {
                        "name": gettext_lazy("Live"),
                        "object_name": "Live",
                        "admin_url": url,
                        "view_only": True,
                    }
                )
        return apps

    site.get_urls = urls
    site.get_app_list = app_list
