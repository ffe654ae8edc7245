"""The account pages: profile (e-mail, language, links), password change that keeps the
page's sockets open, password reset that says when mail could not go, account
deletion and the data export. Thin: accounts.py does the work.
"""

import json
import logging
import math
from collections.abc import AsyncIterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from chat import accounts
from chat.forms import AccountDeleteForm, EmailForm, MailNotSent, ResetForm
from chat.ratelimit import reset_rate_check

logger = logging.getLogger(__name__)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """Shows the account (username, e-mail, language) and saves a changed e-mail."""
    form = EmailForm(request.POST or None, instance=request.user)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, gettext("Your e-mail address was saved."))
            return redirect("profile")
        return render(request, "registration/profile.html", {"form": form}, status=400)
    return render(request, "registration/profile.html", {"form": form})


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change; this browser stays logged in, its open pages too.

    Django gives the session a new key (update_session_auth_hash); the sockets
    opened with the old key are told the new one, on every process. Every other
    session of the account ends, and its sockets close with 4001.
    """

    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form):
        """Saves the new password and moves this session's sockets to the new session key."""
        old_key = self.request.session.session_key
        # One transaction: a session check sees the old password with the old key,
        # or the new password with the new key and a note of the move, never half.
        with transaction.atomic():
            response = super().form_valid(form)
            # Saved now, not when the response goes out: a socket watch that checks
            # the new key must find it logged in.
            self.request.session.save()
            new_key = self.request.session.session_key
            if old_key and new_key != old_key:
                accounts.session_key_changed(old_key=old_key, new_key=new_key)
        logger.info("password changed: user=%s", self.request.user.get_username())
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, limited per address, honest when no mail could go."""

    form_class = ResetForm

    def get_context_data(self, **kwargs):
        """Adds whether this server can send mail at all."""
        return {**super().get_context_data(**kwargs), "mail_enabled": settings.CHAT_EMAIL_ENABLED}

    def post(self, request, *args, **kwargs):
        """Refuses with 503 when no mail is configured; otherwise handles the form."""
        if not settings.CHAT_EMAIL_ENABLED:
            return self.render_to_response(self.get_context_data(), status=503)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        """Shows the form again with its errors (400)."""
        response = super().form_invalid(form)
        response.status_code = 400
        return response

    def form_valid(self, form):
        """Sends the reset link, unless the address asked too often or the mail failed."""
        email = form.cleaned_data["email"]
        retry_after = reset_rate_check(email=email)
        if retry_after is not None:
            logger.warning("password reset throttled for one address")
            minutes = math.ceil(retry_after / 60)
            form.add_error(
                None,
                _("Too many reset requests for this address. Try again in %(minutes)s min.")
                % {"minutes": minutes},
            )
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(math.ceil(retry_after))
            return response
        try:
            return super().form_valid(form)
        except MailNotSent as exc:
            logger.error("password reset mail not sent: %s", exc)
            form.add_error(
                None,
                _(
                    "The reset mail could not be sent: the mail server did not accept it. "
                    "Try again later or ask the site's administrator."
                ),
            )
            return self.render_to_response(self.get_context_data(form=form), status=503)


@login_required
def account_delete(request: HttpRequest) -> HttpResponse:
    """Deletes the account once confirmed with its password, then logs out."""
    form = AccountDeleteForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user_id = request.user.pk
        accounts.account_delete(user_id=user_id)
        logout(request)
        return render(request, "registration/account_deleted.html")
    status = 400 if request.method == "POST" else 200
    return render(request, "registration/account_delete.html", {"form": form}, status=status)


async def _export_chunks(user_id: int) -> AsyncIterator[str]:
    """Yields the export's JSON: the profile, then the messages sent, then DMs received."""
    profile = await sync_to_async(accounts.account_profile)(user_id=user_id)
    yield '{"profile": ' + json.dumps(profile, ensure_ascii=False)
    read = sync_to_async(accounts.account_export_page)
    for name, received in (("messages_sent", False), ("direct_messages_received", True)):
        yield f', "{name}": ['
        after, first = 0, True
        while page := await read(user_id=user_id, received=received, after=after):
            for message in page:
                yield ("" if first else ",") + "\n" + json.dumps(message, ensure_ascii=False)
                first = False
            after = page[-1]["id"]
        yield "\n]"
    yield "}\n"


@login_required
def account_export(request: HttpRequest) -> StreamingHttpResponse:
    """Streams the user's profile and messages as a JSON file to download."""
    response = StreamingHttpResponse(
        _export_chunks(request.user.pk), content_type="application/json"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    filename = f"chat-{request.user.pk}-{stamp}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
