"""HTTP routes of the chat app."""

from django.urls import path

from chat import views

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
]
