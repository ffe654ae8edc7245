"""Django admin for rooms and messages, and a purge of users' messages.

Staff changes to messages go through the same services as the chat's own frames:
an edit takes a new revision and reaches open pages, a deletion leaves a
tombstone (id and seq stay, the text is gone), never a hole in `seq`.
"""

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from chat import live
from chat.accounts import account_delete
from chat.errors import ChatError
from chat.files.admin import UploadInline
from chat.messaging.changes import message_delete, message_edit
from chat.models import Message, ModerationAction, Mute, NotificationLevel, Room
from chat.moderation import MAX_MUTE_MINUTES, mute_lift, mute_set, record
from chat.protocol import is_blank, is_storable
from chat.room_export import RoomExportAdmin


class RoomForm(forms.ModelForm):
    """A room as staff edit it; a private room cannot lose its last member here."""

    class Meta:
        model = Room
        fields = ["name", "members"]

    def clean_members(self):
        """Refuses to empty a private room: without members it would open to everyone."""
        members = self.cleaned_data["members"]
        if self.instance.pk and not members and self.instance.members.exists():
            raise forms.ValidationError(
                _(
                    "A private room keeps at least one member: without members its history "
                    "would open to everyone. Delete the room instead."
                )
            )
        return members


@admin.register(Room)
class RoomAdmin(RoomExportAdmin, admin.ModelAdmin):
    """Rooms: staff add and rename them; a room with members is private to them."""

    form = RoomForm
    list_display = ["name", "private", "created_at", "last_seq"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "last_seq"]
    filter_horizontal = ["members"]

    def get_queryset(self, request):
        """Rooms, each marked whether it has members, in one query."""
        members = Room.members.through.objects.filter(room_id=OuterRef("pk"))
        return super().get_queryset(request).annotate(is_private=Exists(members))

    @admin.display(boolean=True, description=_("private"), ordering="is_private")
    def private(self, room: Room) -> bool:
        """Whether the room has members (only they see it), or is open to everyone."""
        return room.is_private

    def save_related(self, request, form, formsets, change) -> None:
        """Saves the members and records who changed them (a moderation action)."""
        room = form.instance
        before = set(room.members.values_list("username", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        after = set(room.members.values_list("username", flat=True))
        if before != after:
            detail = "; ".join(
                f"{what}: {', '.join(sorted(names))}"
                for what, names in (("added", after - before), ("removed", before - after))
                if names
            )
            record(
                kind=ModerationAction.Kind.MEMBERS,
                actor=request.user,
                room=room,
                detail=detail[:255],
            )


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

    @admin.display(description=_("body"))
    def short_body(self, message: Message) -> str:
        """Shows the start of the body; the admin escapes it as text."""
        return message.body if len(message.body) <= 80 else message.body[:79] + "…"

    def has_add_permission(self, request) -> bool:
        """Messages come from the chat only: each needs a seq and a live delivery."""
        return False

    def get_inlines(self, request, obj):
        """Lists a message's files (chat/files/admin.py), on messages that have some."""
        return [UploadInline] if obj is not None and obj.uploads.exists() else []

    def save_model(self, request, obj: Message, form, change: bool) -> None:
        """Edits the body through the chat's own edit (a new revision, published)."""
        if change and "body" in form.changed_data:
            body = obj.body.strip()
            if is_blank(body) or not is_storable(body):
                messages.error(request, _("The body was not changed: it would be empty."))
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


class MuteForm(forms.ModelForm):
    """A mute as staff give it: whom, where (no room: everywhere), for how many minutes."""

    minutes = forms.IntegerField(
        label=_("Minutes"), min_value=1, max_value=MAX_MUTE_MINUTES, initial=60
    )

    class Meta:
        model = Mute
        fields = ["user", "room"]


@admin.register(Mute)
class MuteAdmin(admin.ModelAdmin):
    """Mutes: added and lifted through the moderation services, so each is recorded."""

    form = MuteForm
    list_display = ["user", "room", "until", "by", "created_at"]
    list_filter = [("room", admin.EmptyFieldListFilter)]
    search_fields = ["user__username"]
    list_select_related = ["user", "room", "by"]
    autocomplete_fields = ["user"]

    def has_change_permission(self, request, obj=None) -> bool:
        """A mute is replaced by a new one (same user and room), not edited."""
        return False

    def save_model(self, request, obj: Mute, form, change: bool) -> None:
        """Mutes through the service (one mute per user and room, recorded)."""
        room = obj.room.name if obj.room_id else None
        mute_set(
            actor=request.user,
            username=obj.user.get_username(),
            minutes=form.cleaned_data["minutes"],
            room=room,
        )
        # The admin logs and links the object it saved: the stored mute.
        stored = Mute.objects.get(user=obj.user, room=obj.room)
        obj.pk, obj.until, obj.by, obj.created_at = (
            stored.pk,
            stored.until,
            stored.by,
            stored.created_at,
        )

    def delete_model(self, request, obj: Mute) -> None:
        """Lifts the mute, recorded."""
        room = obj.room.name if obj.room_id else None
        mute_lift(actor=request.user, username=obj.user.get_username(), room=room)

    def delete_queryset(self, request, queryset) -> None:
        """Lifts each selected mute, recorded."""
        for mute in queryset.select_related("user", "room"):
            self.delete_model(request, mute)


@admin.register(ModerationAction)
class ModerationActionAdmin(admin.ModelAdmin):
    """The moderation record: read-only, filtered by kind."""

    list_display = ["at", "kind", "actor_name", "target_name", "room", "message_id", "detail"]
    list_filter = ["kind", ("at", admin.DateFieldListFilter)]
    search_fields = ["actor_name", "target_name"]
    list_select_related = ["room"]
    date_hierarchy = "at"

    def has_add_permission(self, request) -> bool:
        """Written by the actions themselves, never by hand."""
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        """A record is not rewritten."""
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        """Nor erased."""
        return False


User = get_user_model()


@admin.action(description=_("Delete all messages of the selected users (tombstones)"))
def purge_messages(modeladmin, request, queryset) -> None:
    """Tombstones every message the selected users sent; the conversations keep their seqs."""
    ids = list(
        Message.objects.filter(sender__in=queryset, deleted=False).values_list("pk", flat=True)
    )
    for pk in ids:
        delete = partial(message_delete, user_id=request.user.pk, message_id=pk, as_staff=True)
        _after_commit(request, delete)
    text = ngettext(
        "%(count)d message will be deleted.", "%(count)d messages will be deleted.", len(ids)
    )
    modeladmin.message_user(request, text % {"count": len(ids)})


@admin.action(description=_("Mute the selected users everywhere for 1 hour"))
def mute_for_an_hour(modeladmin, request, queryset) -> None:
    """Mutes each selected user everywhere for an hour, as `mute` from the page does."""
    for username in queryset.values_list("username", flat=True):
        mute_set(actor=request.user, username=username, minutes=60)
    count = queryset.count()
    text = ngettext("%(count)d user muted for 1 hour.", "%(count)d users muted for 1 hour.", count)
    modeladmin.message_user(request, text % {"count": count})


class ChatUserAdmin(UserAdmin):
    """Django's user admin, with the purge of a user's messages and a one-hour mute.

    Deleting a user deletes the account as the user's own profile page does: the row
    stays as `deleted-<id>`, the messages become tombstones, so no `seq` is lost.
    """

    actions = [*UserAdmin.actions, purge_messages, mute_for_an_hour]

    def delete_model(self, request, obj) -> None:
        """Deletes the account (tombstones its messages) instead of the row."""
        _after_commit(request, partial(account_delete, user_id=obj.pk))

    def delete_queryset(self, request, queryset) -> None:
        """Deletes each selected account as `delete_model` does."""
        for pk in queryset.values_list("pk", flat=True):
            _after_commit(request, partial(account_delete, user_id=pk))


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, ChatUserAdmin)

# The staff Live page (chat/live.py): /admin/live/, linked from the chat app's list.
live.register(admin.site)
