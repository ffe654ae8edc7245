"""HTTP edge of files: upload, and serve a file or its thumbnail to those who may see it."""

from django.http import HttpResponse


def upload(request):
    """Stores one uploaded file (placeholder)."""
    return HttpResponse(status=501)


def download(request, key: str):
    """Serves a file (placeholder)."""
    return HttpResponse(status=501)


def thumbnail(request, key: str):
    """Serves an image's thumbnail (placeholder)."""
    return HttpResponse(status=501)
