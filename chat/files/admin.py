"""Django admin for uploads: a list of every file, and a message's files inline.

Staff look and delete, never edit. Deleting an attached file also removes its
entry from the message's `attachments`; its bytes leave storage on commit.
"""

from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from chat.files.uploads import upload_delete
from chat.models import Upload

_SHOWN = ["file_link", "name", "owner", "message", "content_type", "size", "width", "height"]


class _FileLink:
    """Adds `file_link`: a link that opens the file (staff who may view uploads open any)."""

    @admin.display(description=_("file"))
    def file_link(self, upload: Upload) -> str:
        """Links to the file's own URL."""
        return format_html(
            '<a href="{}">{}</a>', reverse("upload-file", args=[upload.key]), gettext("open")
        )


@admin.register(Upload)
class UploadAdmin(_FileLink, admin.ModelAdmin):
    """Uploads: searchable, filterable by type; deleting one removes its files."""

    list_display = ["name", "owner", "message", "content_type", "size", "created_at", "file_link"]
    list_filter = ["content_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["name", "key", "owner__username"]
    date_hierarchy = "created_at"
    list_select_related = ["owner", "message__sender", "message__room", "message__recipient"]
    fields = ["key", *_SHOWN, "created_at"]
    readonly_fields = [*fields]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        """Files come from the chat's upload only."""
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        """A stored file stays as it was stored."""
        return False

    def delete_model(self, request, obj: Upload) -> None:
        """Deletes the upload and its entry in its message's attachments."""
        upload_delete(upload_id=obj.pk, by_user_id=request.user.pk)

    def delete_queryset(self, request, queryset) -> None:
        """Deletes each selected upload as delete_model does."""
        for pk in queryset.values_list("pk", flat=True):
            upload_delete(upload_id=pk, by_user_id=request.user.pk)


class _AttachmentFormSet(BaseInlineFormSet):
    """Deletes through upload_delete, so the message's attachments stay in step."""

    # The staff member deleting, set per request by UploadInline.get_formset.
    by_user_id: int | None = None

    def delete_existing(self, obj: Upload, commit: bool = True) -> None:
        """Deletes one attachment ticked for deletion."""
        if commit:
            upload_delete(upload_id=obj.pk, by_user_id=self.by_user_id)


class UploadInline(_FileLink, admin.TabularInline):
    """A message's files, read-only; staff may delete them."""

    model = Upload
    formset = _AttachmentFormSet
    fields = [field for field in _SHOWN if field != "message"]
    readonly_fields = fields
    extra = 0
    verbose_name = _("attachment")
    verbose_name_plural = _("attachments")
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        """Files are attached by sending them in the chat."""
        return False

    def get_formset(self, request, obj=None, **kwargs):
        """The formset, knowing who deletes (the change reaches open pages in their name)."""
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"by_user_id": request.user.pk})
