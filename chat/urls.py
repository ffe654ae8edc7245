"""HTTP routes of the chat app."""

from django.urls import path

from chat import views
from chat.files import views as files

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("uploads/", files.upload, name="upload"),
    path("uploads/<str:key>/", files.download, name="upload-file"),
    path("uploads/<str:key>/thumb/", files.thumbnail, name="upload-thumb"),
]
