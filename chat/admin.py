"""Django admin for rooms and messages, and a purge of users' messages.

Staff changes to messages go through the same services as the chat's own frames:
an edit takes a new revision and reaches open pages, a deletion leaves a
tombstone (id and seq stay, the text is gone), never a hole in `seq`.
"""

from functools import partial

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction

from chat.errors import ChatError
from chat.messaging.changes import message_delete, message_edit
from chat.models import Message, NotificationLevel, Room
from chat.protocol import is_blank, is_storable


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    """Rooms: staff add and rename them; every user is a member of every room."""

    list_display = ["name", "created_at", "last_seq"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "last_seq"]


@admin.register(NotificationLevel)
class NotificationLevelAdmin(admin.ModelAdmin):
    """Notification levels: shown to staff, changed only by their owners from the chat page."""

    list_display = ["user", "room", "peer", "level"]
    list_filter = ["level"]
    search_fields = ["user__username", "room__name", "peer__username"]
    list_select_related = ["user", "room", "peer"]

    def has_add_permission(self, request) -> bool:
        """Levels are each person's own choice: staff look, they do not set."""
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        """Read-only, like adding."""
        return False


def _after_commit(request, change) -> None:
    """Runs a message change once the admin's own transaction has committed.

    The change takes the order lock, its own transaction and a new revision, and
    publishes; inside the admin's transaction its events could reach pages before
    (or without) the commit.
    """

    def run() -> None:
        try:
            change()
        except ChatError as error:
            messages.warning(request, error.detail)

    transaction.on_commit(run)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Messages: searchable and filterable; edits and deletions reach open pages live."""

    list_display = ["id", "sent_at", "sender", "room", "recipient", "seq", "short_body", "deleted"]
    list_filter = ["room", "deleted", ("sent_at", admin.DateFieldListFilter)]
    search_fields = ["body", "sender__username"]
    date_hierarchy = "sent_at"
    list_select_related = ["sender", "room", "recipient"]
    readonly_fields = [
        "sender",
        "room",
        "recipient",
        "client_id",
        "seq",
        "sent_at",
        "rev",
        "edited_at",
        "deleted",
        "reactions",
        "mentioned",
    ]
    fields = [
        "sender",
        "room",
        "recipient",
        "seq",
        "sent_at",
        "client_id",
        "body",
        "rev",
        "edited_at",
        "deleted",
        "reactions",
        "mentioned",
    ]
    show_full_result_count = False

    @admin.display(description="body")
    def short_body(self, message: Message) -> str:
        """Shows the start of the body; the admin escapes it as text."""
        return message.body if len(message.body) <= 80 else message.body[:79] + "…"

    def has_add_permission(self, request) -> bool:
        """Messages come from the chat only: each needs a seq and a live delivery."""
        return False

    def save_model(self, request, obj: Message, form, change: bool) -> None:
        """Edits the body through the chat's own edit (a new revision, published)."""
        if change and "body" in form.changed_data:
            body = obj.body.strip()
            if is_blank(body) or not is_storable(body):
                messages.error(request, "The body was not changed: it would be empty.")
                return
            edit = partial(
                message_edit, user_id=request.user.pk, message_id=obj.pk, body=body, as_staff=True
            )
            _after_commit(request, edit)

    def delete_model(self, request, obj: Message) -> None:
        """Deletes as the chat does: a tombstone that keeps the message's seq."""
        delete = partial(message_delete, user_id=request.user.pk, message_id=obj.pk, as_staff=True)
        _after_commit(request, delete)

    def delete_queryset(self, request, queryset) -> None:
        """Deletes each selected message as a tombstone."""
        for pk in queryset.filter(deleted=False).values_list("pk", flat=True):
            delete = partial(message_delete, user_id=request.user.pk, message_id=pk, as_staff=True)
            _after_commit(request, delete)


User = get_user_model()


@admin.action(description="Delete all messages of the selected users (tombstones)")
def purge_messages(modeladmin, request, queryset) -> None:
    """Tombstones every message the selected users sent; the conversations keep their seqs."""
    ids = list(
        Message.objects.filter(sender__in=queryset, deleted=False).values_list("pk", flat=True)
    )
    for pk in ids:
        delete = partial(message_delete, user_id=request.user.pk, message_id=pk, as_staff=True)
        _after_commit(request, delete)
    modeladmin.message_user(request, f"{len(ids)} messages will be deleted.")


class ChatUserAdmin(UserAdmin):
    """Django's user admin, with the purge of a user's messages."""

    actions = [*UserAdmin.actions, purge_messages]


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, ChatUserAdmin)
