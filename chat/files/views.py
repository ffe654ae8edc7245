"""HTTP edge of files: upload, and serve a file or its thumbnail to those who may see it.

Refusals are JSON (`error`, a code, and `message`, a sentence); the rules live in
chat/files/uploads.py.
"""

import math
from pathlib import PurePosixPath
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.http import content_disposition_header
from django.utils.translation import gettext, ngettext
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST, require_safe

from chat.files.images import THUMB_TYPE
from chat.files.types import RASTER_TYPES
from chat.files.uploads import (
    UploadRefused,
    upload_get,
    upload_limit_text,
    upload_store,
    upload_visible,
)
from chat.messaging.attachments import upload_summary
from chat.models import Upload
from chat.ratelimit import upload_rate_check

# A request may exceed the file limit by this much: the multipart framing and the
# CSRF field. Anything longer is refused before a byte of it is read.
_FRAMING_BYTES = 64 * 1024
# Files never change under their key; access can end, so browsers keep them an hour.
_CACHE_SECONDS = 3600
# A file opened on its own runs nothing and loads nothing.
_FILE_CSP = "default-src 'none'; sandbox"
_STATUS = {"empty": 400, "bad_upload": 400, "too_big": 413, "bad_type": 415}


def _refuse(code: str, message: str) -> JsonResponse:
    """The JSON answer to a refused upload."""
    return JsonResponse({"error": code, "message": message}, status=_STATUS[code])


def _too_big() -> JsonResponse:
    return _refuse("too_big", upload_limit_text())


class SizeLimitHandler(FileUploadHandler):
    """Stops reading a multipart body as soon as its files pass `limit` bytes.

    It runs first, so the bytes past the limit are never read, kept in memory or
    written to a temporary file, whatever the request's Content-Length said.
    """

    def __init__(self, request, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        """Counts the chunk and passes it on, or stops the whole upload past the limit."""
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        """Leaves the file to the handlers after this one."""
        return None


def _declared_length(request) -> int:
    """The request's Content-Length, or 0 when it has none (a chunked body)."""
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


@csrf_exempt
@login_required
@require_POST
def upload(request):
    """Stores one file sent as multipart field `file`; answers 201 with its summary."""
    limit = settings.CHAT_MAX_UPLOAD_BYTES
    if _declared_length(request) > limit + _FRAMING_BYTES:
        return _too_big()
    wait = upload_rate_check(user_id=request.user.pk)
    if wait is not None:
        seconds = math.ceil(wait)
        response = JsonResponse(
            {
                "error": "rate_limited",
                "message": ngettext(
                    "too many uploads; try again in %(count)d second",
                    "too many uploads; try again in %(count)d seconds",
                    seconds,
                )
                % {"count": seconds},
                "retry_after": seconds,
            },
            status=429,
        )
        response["Retry-After"] = str(seconds)
        return response
    # The handlers must change before anything reads the body, the CSRF check
    # included: hence csrf_exempt here and csrf_protect on the inner view.
    limiter = SizeLimitHandler(request, limit)
    request.upload_handlers.insert(0, limiter)
    try:
        request.FILES  # noqa: B018 (parses the body through the handlers)
    except (MultiPartParserError, RequestDataTooBig, TooManyFilesSent):
        return _refuse("bad_upload", gettext("the request is not a readable multipart upload"))
    if limiter.exceeded:
        return _too_big()
    return _upload_checked(request)


@csrf_protect
def _upload_checked(request):
    """Stores the parsed upload once the CSRF check has passed."""
    files = request.FILES.getlist("file")
    if len(files) != 1:
        return _refuse("bad_upload", gettext("send exactly one file, in the field 'file'"))
    (file,) = files
    try:
        stored = upload_store(owner_id=request.user.pk, file=file, name=file.name, size=file.size)
    except UploadRefused as refused:
        return _refuse(refused.code, refused.message)
    return JsonResponse(upload_summary(stored), status=201)


@login_required
@require_safe
def download(request, key: str):
    """Serves a file to its owner before it is attached, then to whoever may see its message."""
    return _serve(_findable(request, key), thumb=False)


@login_required
@require_safe
def thumbnail(request, key: str):
    """Serves an image's thumbnail to whoever may fetch the image."""
    return _serve(_findable(request, key), thumb=True)


def _findable(request, key: str) -> Upload:
    """The upload the requester may fetch; 404 alike for "no such key" and "not yours"."""
    found = upload_visible(key=key, user_id=request.user.pk)
    if found is None and request.user.has_perm("chat.view_upload"):
        # Staff who may view uploads in the admin open them from there.
        found = upload_get(key=key)
    if found is None:
        raise Http404("no such file")
    return found


def _serve(upload: Upload, *, thumb: bool) -> HttpResponse:
    """The file's response: its bytes (or nginx's X-Accel-Redirect to them) and safe headers."""
    if thumb:
        if not upload.thumb:
            raise Http404("no thumbnail")
        field, mime = upload.thumb, THUMB_TYPE
        filename = f"{PurePosixPath(upload.name).stem}.webp"
    else:
        field, mime, filename = upload.file, upload.content_type, upload.name
    # Only raster images show in the browser; everything else is a download.
    as_attachment = mime not in RASTER_TYPES
    prefix = settings.CHAT_X_ACCEL_PREFIX
    if prefix:
        response = HttpResponse(content_type=mime)
        response["X-Accel-Redirect"] = f"{prefix.rstrip('/')}/{quote(field.name)}"
        response["Content-Disposition"] = content_disposition_header(as_attachment, filename)
    else:
        try:
            opened = field.storage.open(field.name, "rb")
        except FileNotFoundError:
            raise Http404("no such file") from None
        response = FileResponse(
            opened, content_type=mime, as_attachment=as_attachment, filename=filename
        )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = f"private, max-age={_CACHE_SECONDS}"
    response["Content-Security-Policy"] = _FILE_CSP
    return response
