"""Staff export of a room's history: one JSON file, streamed page by page from the database.

Linked from the room's admin page; the admin's own permission check guards it.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import admin
from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from chat.models import Message, Room
from chat.protocol import format_time

# Messages read per query: the file never sits in memory whole.
PAGE_SIZE = 500


def room_export_page(*, room_id: int, after: int, limit: int = PAGE_SIZE) -> list[dict[str, Any]]:
    """Reads up to `limit` messages of a room after id `after`, oldest first, as exported."""
    rows = (
        Message.objects.filter(room_id=room_id, pk__gt=after)
        .order_by("pk")
        .values_list(
            "pk",
            "seq",
            "sender__username",
            "body",
            "sent_at",
            "edited_at",
            "deleted",
            "attachments",
        )[:limit]
    )
    return [
        {
            "id": pk,
            "seq": seq,
            "from": sender,
            "body": body,
            "sent_at": format_time(sent_at),
            "edited_at": format_time(edited_at) if edited_at else None,
            "deleted": deleted,
            "attachments": [stored["name"] for stored in attachments],
        }
        for pk, seq, sender, body, sent_at, edited_at, deleted, attachments in rows
    ]


async def _chunks(room: Room) -> AsyncIterator[str]:
    """Yields the JSON document: a head, then each page of messages, then the tail."""
    head = {"room": room.name, "exported_at": format_time(timezone.now())}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "messages": ['
    after, first = 0, True
    read = sync_to_async(room_export_page)
    while page := await read(room_id=room.pk, after=after):
        for message in page:
            yield ("" if first else ",") + "\n" + json.dumps(message, ensure_ascii=False)
            first = False
        after = page[-1]["id"]
    yield "\n]}\n"


def room_export(request: HttpRequest, room_id: int) -> StreamingHttpResponse:
    """Streams a room's messages as a JSON file to download (staff only, through the admin)."""
    room = get_object_or_404(Room, pk=room_id)
    response = StreamingHttpResponse(_chunks(room), content_type="application/json")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="room-{room.pk}-{stamp}.json"'
    return response


class RoomExportAdmin:
    """Mixed into the Room admin: the export's URL, and a link to it on each room's page."""

    def get_urls(self):
        """Adds <room id>/export/ behind the admin's own staff check."""
        export = path(
            "<int:room_id>/export/",
            self.admin_site.admin_view(room_export),
            name="chat_room_export",
        )
        return [export, *super().get_urls()]

    def get_readonly_fields(self, request, obj=None):
        """Shows the export link on an existing room's page."""
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "export"] if obj is not None else fields

    @admin.display(description=_("history"))
    def export(self, room: Room) -> str:
        """A link that downloads the room's messages as JSON."""
        url = reverse("admin:chat_room_export", args=[room.pk])
        return format_html('<a href="{}" download>{}</a>', url, gettext("Export as JSON"))
