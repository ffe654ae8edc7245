"""Account forms: sign-up refuses usernames that could pass for someone else's.

Homoglyph data comes from `confusable_homoglyphs` (Unicode's confusables.txt).
"""

import functools
import unicodedata

from confusable_homoglyphs import categories, confusables
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

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
    """Django's user-creation form (username, password1, password2), refusing lookalike names."""

    error_messages = {
        **UserCreationForm.error_messages,
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
