"""Account forms."""

from django.contrib.auth.forms import UserCreationForm


class SignupForm(UserCreationForm):
    """Django's user-creation form: username, password1, password2."""
