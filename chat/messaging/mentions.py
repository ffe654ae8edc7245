"""Mentions: the `@name`s of a body that name existing users."""

import re

from django.contrib.auth import get_user_model

# `@` then a username (Django allows letters, digits and @ . + - _), not preceded by
# a word character or another username character: `bob@example.com` mentions nobody.
# The name stops at a character no username holds: `@bob's` and `@bob:` mention bob.
_MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]+)")
# Code is quoted text, as in CommonMark: a block fenced by ``` at the start of a line
# (a fence left open runs to the end), or an inline span between two runs of the same
# number of backticks.
_CODE = re.compile(
    r"^ {0,3}```.*?(?:^ {0,3}```|\Z)|(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)",
    re.DOTALL | re.MULTILINE,
)


def mention_candidates(body: str) -> list[str]:
    """The names after `@` in a body, outside code, in order and once each."""
    names = []
    for match in _MENTION.finditer(_CODE.sub(" ", body)):
        # A sentence may end right after a name: "thanks @bob."
        name = match[1].rstrip(".")
        if name and name not in names:
            names.append(name)
    return names


def mentioned_users(bodies: list[str]) -> list[dict[str, int]]:
    """For each body, the users it mentions ({username: id}, in order of mention)."""
    candidates = [mention_candidates(body) for body in bodies]
    wanted = {name for names in candidates for name in names}
    if not wanted:
        return [{} for _ in bodies]
    users = dict(get_user_model().objects.filter(username__in=wanted).values_list("username", "id"))
    return [{name: users[name] for name in names if name in users} for names in candidates]
