"""Django admin for rooms and messages (users use Django's own admin)."""

from django.contrib import admin

from chat.models import Message, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    """Rooms: staff add and rename them; every user is a member of every room."""

    list_display = ["name", "created_at", "last_seq"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "last_seq"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Messages: searchable and filterable; sent through the chat, so never added here."""

    list_display = ["id", "sent_at", "sender", "room", "recipient", "seq", "short_body"]
    list_filter = ["room", ("sent_at", admin.DateFieldListFilter)]
    search_fields = ["body", "sender__username"]
    date_hierarchy = "sent_at"
    list_select_related = ["sender", "room", "recipient"]
    readonly_fields = ["sender", "room", "recipient", "client_id", "seq", "sent_at"]
    fields = ["sender", "room", "recipient", "seq", "sent_at", "client_id", "body"]
    show_full_result_count = False

    @admin.display(description="body")
    def short_body(self, message: Message) -> str:
        """Shows the start of the body; the admin escapes it as text."""
        return message.body if len(message.body) <= 80 else message.body[:79] + "…"

    def has_add_permission(self, request) -> bool:
        """Messages come from the chat only: each needs a seq and a live delivery."""
        return False
