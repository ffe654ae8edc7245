"""Top-level URLs: the chat page, accounts, admin and the health check."""

from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from chat import account_views, views

urlpatterns = [
    path("", include("chat.urls")),
    path("accounts/signup/", views.signup, name="signup"),
    # The account pages; the first two replace Django's views of the same names.
    path(
        "accounts/password_change/",
        account_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_reset/",
        account_views.PasswordResetView.as_view(),
        name="password_reset",
    ),
    path("accounts/profile/", account_views.profile, name="profile"),
    path("accounts/delete/", account_views.account_delete, name="account_delete"),
    path("accounts/export/", account_views.account_export, name="account_export"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    # The language switcher posts to /i18n/setlang/ (Django's set_language view).
    path("i18n/", include("django.conf.urls.i18n")),
    # The page's texts in the request's language (gettext, ngettext for the scripts).
    path("jsi18n/", JavaScriptCatalog.as_view(domain="djangojs"), name="javascript-catalog"),
]
