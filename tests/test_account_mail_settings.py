"""EMAIL_URL: mail for password resets goes where it says; the console under DEBUG when
unset; off (and said so) without DEBUG; a bad URL stops start-up naming the variable.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REPORT = """
import json
import django
django.setup()
from django.conf import settings as s
print(json.dumps([s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS,
                  s.CHAT_EMAIL_ENABLED, s.DEFAULT_FROM_EMAIL]))
"""


def _start(**env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "EMAIL_URL", "DEBUG", "DEFAULT_FROM_EMAIL"}
    }
    clean.update({"DJANGO_SETTINGS_MODULE": "chatsite.settings", "SECRET_KEY": "x", **env})
    return subprocess.run(
        [sys.executable, "-c", REPORT], cwd=REPO, env=clean, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"DEBUG": "0", "EMAIL_URL": "smtp+tls://chat:pw@mail.example.com:587"},
            ["django.core.mail.backends.smtp.EmailBackend", "mail.example.com", 587, True, True],
        ),
        (
            {"DEBUG": "1"},
            ["django.core.mail.backends.console.EmailBackend", "localhost", 25, False, True],
        ),
        (
            {"DEBUG": "0"},
            ["django.core.mail.backends.dummy.EmailBackend", "localhost", 25, False, False],
        ),
    ],
    ids=["smtp", "debug-console", "off"],
)
def test_email_url_chooses_where_mail_goes(env, expected):
    started = _start(DEFAULT_FROM_EMAIL="chat@example.com", **env)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout) == [*expected, "chat@example.com"]


def test_a_bad_email_url_stops_start_up_naming_it():
    started = _start(DEBUG="0", EMAIL_URL="pigeon://coop")
    assert started.returncode != 0
    assert "EMAIL_URL" in started.stderr
