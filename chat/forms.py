"""Account forms: sign-up refuses usernames that could pass for someone else's; the
profile's e-mail, the password reset that says when mail could not go, account deletion.

Homoglyph data comes from `confusable_homoglyphs` (Unicode's confusables.txt).
"""

import functools
import unicodedata

from confusable_homoglyphs import categories, confusables
from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.template import loader
from django.utils.translation import gettext_lazy as _

from chat.accounts import DELETED_USERNAME_PREFIX

# Scripts written together in one language are not a "mix" (Unicode TR39's
# "highly restrictive" level): Japanese, Chinese with Bopomofo, Korean, each with Latin.
SCRIPTS_WRITTEN_TOGETHER = [
    {"LATIN", "HAN", "HIRAGANA", "KATAKANA"},
    {"LATIN", "HAN", "BOPOMOFO"},
    {"LATIN", "HAN", "HANGUL"},
]
# Digits and punctuation (`_ . @ + -`) belong to every script.
NEUTRAL_SCRIPTS = {"COMMON", "INHERITED"}


def username_scripts(username: str) -> set[str]:
    """Returns the scripts whose letters the username uses, punctuation and digits aside."""
    return categories.unique_aliases(username) - NEUTRAL_SCRIPTS


def username_mixes_scripts(username: str) -> bool:
    """Tells whether the username mixes letters of scripts not written together."""
    scripts = username_scripts(username)
    if len(scripts) <= 1:
        return False
    return not any(scripts <= together for together in SCRIPTS_WRITTEN_TOGETHER)


@functools.cache
def _prototypes() -> dict[str, str]:
    """Maps each character that imitates another to the one it imitates (its prototype).

    The library records each line of Unicode's confusables.txt ("source → prototype")
    in both directions. A source has that single entry, a prototype one entry per
    source, so a one-entry pair is told apart by its partner's count; when both have
    one entry, either may stand for the two.
    """
    # Right-to-left glyphs come wrapped in LEFT-TO-RIGHT MARKs.
    lookalikes = {
        char.strip("\u200e"): [entry["c"].strip("\u200e") for entry in entries]
        for char, entries in confusables.confusables_data.items()
    }
    prototypes = {}
    for char, others in lookalikes.items():
        if len(char) != 1 or len(others) != 1:
            continue  # a prototype: a sequence ("rn"), or imitated by several
        [other] = others
        if len(other) > 1 or len(lookalikes.get(other, ())) > 1:
            prototypes[char] = other
        else:
            prototypes[char] = min(char, other)
    return prototypes


def username_skeletons(username: str) -> tuple[str, str, str]:
    """Returns how the username looks as typed, in lower case and in capitals.

    Each view is Unicode TR39's "skeleton": every character replaced by its
    prototype, so two usernames that look alike share at least one view.
    """
    prototypes = _prototypes()

    def skeleton(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", text)
        mapped = "".join(prototypes.get(char, char) for char in decomposed)
        return unicodedata.normalize("NFD", mapped)

    return skeleton(username), skeleton(username.casefold()), skeleton(username.upper())


def username_lookalike_taken(username: str) -> bool:
    """Tells whether an existing user's username looks like this one."""
    wanted = username_skeletons(username)
    # The database cannot compute skeletons, so every username is compared here:
    # a few milliseconds per thousand users, once per sign-up.
    usernames = get_user_model().objects.values_list("username", flat=True)
    for taken in usernames.iterator():
        if any(a == b for a, b in zip(wanted, username_skeletons(taken), strict=True)):
            return True
    return False


class SignupForm(UserCreationForm):
    """Django's user-creation form (username, optional e-mail, passwords), refusing lookalikes."""

    email = forms.EmailField(
        label=_("E-mail (optional)"),
        required=False,
        help_text=_("Only used to send you a link if you forget your password."),
    )

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")

    error_messages = {
        **UserCreationForm.error_messages,
        "reserved": _("This username is reserved. Choose a different name."),
        "mixed_scripts": _(
            "Use the letters of one script: this username mixes %(scripts)s, "
            "which lets it pass for a different name."
        ),
        "lookalike": _(
            "This username looks like an existing one, so people could mistake "
            "the two. Choose a different name."
        ),
    }

    def clean_username(self) -> str | None:
        """Refuses a username that mixes scripts or looks like an existing user's."""
        # Django's own check refuses a name taken in any case and returns None then.
        username = super().clean_username()
        if not username:
            return username
        if username.casefold().startswith(DELETED_USERNAME_PREFIX):
            # The placeholder names of deleted accounts ("deleted-17").
            raise ValidationError(self.error_messages["reserved"], code="reserved")
        if username_mixes_scripts(username):
            *others, last = sorted(script.title() for script in username_scripts(username))
            scripts = _("%(others)s and %(last)s") % {"others": ", ".join(others), "last": last}
            raise ValidationError(
                self.error_messages["mixed_scripts"],
                code="mixed_scripts",
                params={"scripts": scripts},
            )
        if username_lookalike_taken(username):
            raise ValidationError(self.error_messages["lookalike"], code="lookalike")
        return username


class EmailForm(forms.ModelForm):
    """The profile's e-mail address, where password reset links go (empty: none)."""

    class Meta:
        model = get_user_model()
        fields = ("email",)
        labels = {"email": _("E-mail")}
        help_texts = {"email": _("Password reset links are sent here. Leave empty for none.")}


class MailNotSent(Exception):
    """The mail server refused or could not be reached: the reset link did not go out."""


class ResetForm(PasswordResetForm):
    """Django's password reset form, except that a mail that could not be sent is an error.

    Django logs the failure and reports success anyway; here the page says so.
    """

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ) -> None:
        """Sends the reset link; raises MailNotSent when the mail server fails."""
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        message = EmailMultiAlternatives(subject, body, from_email, [to_email])
        try:
            message.send()
        except OSError as exc:  # smtplib's errors and a refused connection are OSErrors
            raise MailNotSent(str(exc)) from exc


class AccountDeleteForm(forms.Form):
    """Confirms deleting the account with its current password."""

    password = forms.CharField(
        label=_("Your password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, user, *args, **kwargs) -> None:
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        """Refuses a password that is not the account's."""
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise ValidationError(_("This is not your password."), code="password_incorrect")
        return password
