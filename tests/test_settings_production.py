"""Production settings: `check --deploy` passes given the HTTPS variables and fails
without them; the abuse limits are read from the environment; HTTPS behind a proxy.
"""

import json
import secrets
import subprocess
import sys

import pytest
from django.test import Client

from tests.test_settings import REPO, clean_environment, refusal

PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "chat.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
    "SECURE_PROXY_SSL_HEADER": "1",
    "SECURE_SSL_REDIRECT": "1",
    "SESSION_COOKIE_SECURE": "1",
    "CSRF_COOKIE_SECURE": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}
HTTPS_VARIABLES = {name for name in PRODUCTION if name.startswith(("SECURE_", "SESSION_", "CSRF_"))}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Runs `manage.py check --deploy --fail-level WARNING` with only `env` of our variables."""
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=clean_environment(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- manage.py check --deploy ---------------------------------------------------


def test_check_deploy_passes_with_production_settings():
    result = check_deploy(PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_fails_without_the_https_settings():
    bare = {k: v for k, v in PRODUCTION.items() if k not in HTTPS_VARIABLES}
    result = check_deploy(bare)
    assert result.returncode != 0
    for warning in ("W004", "W008", "W012", "W016"):  # HSTS, redirect, two cookies
        assert f"security.{warning}" in result.stderr


def test_check_deploy_fails_with_a_short_secret_key():
    result = check_deploy({**PRODUCTION, "SECRET_KEY": "too-short"})
    assert result.returncode != 0
    assert "security.W009" in result.stderr


def test_check_deploy_fails_with_debug_on():
    result = check_deploy({**PRODUCTION, "DEBUG": "1"})
    assert result.returncode != 0
    assert "security.W018" in result.stderr


# --- The abuse limits come from the environment --------------------------------

REPORT = """
import json
import django
django.setup()
from django.conf import settings
print(json.dumps({
    "failure_limit": settings.AXES_FAILURE_LIMIT,
    "lockout_seconds": settings.AXES_COOLOFF_TIME.total_seconds(),
    "signup_rate": settings.CHAT_SIGNUP_RATE_LIMIT,
    "proxy_header": settings.SECURE_PROXY_SSL_HEADER,
}))
"""


def read_settings(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", REPORT],
        cwd=REPO,
        env=clean_environment(**{"SECRET_KEY": "k" * 50, **env}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_abuse_limits_have_safe_defaults():
    assert read_settings({}) == {
        "failure_limit": 5,
        "lockout_seconds": 900.0,
        "signup_rate": [20, 3600],
        "proxy_header": None,
    }


def test_abuse_limits_are_read_from_the_environment():
    assert read_settings(
        {
            "CHAT_LOGIN_FAILURE_LIMIT": "10",
            "CHAT_LOGIN_LOCKOUT_SECONDS": "60",
            "CHAT_SIGNUP_RATE_LIMIT": "off",
            "SECURE_PROXY_SSL_HEADER": "1",
        }
    ) == {
        "failure_limit": 10,
        "lockout_seconds": 60.0,
        "signup_rate": None,
        "proxy_header": ["HTTP_X_FORWARDED_PROTO", "https"],
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHAT_LOGIN_FAILURE_LIMIT", "0"),
        ("CHAT_LOGIN_FAILURE_LIMIT", "many"),
        ("CHAT_LOGIN_LOCKOUT_SECONDS", "15m"),
        ("CHAT_SIGNUP_RATE_LIMIT", "lots"),
        ("CHAT_SIGNUP_RATE_LIMIT", "0/60s"),
        ("SECURE_HSTS_SECONDS", "a year"),
        ("SESSION_COOKIE_SECURE", "sometimes"),
        ("CHAT_LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_security_setting_stops_start_up_naming_the_variable(name, value):
    error = refusal({"SECRET_KEY": "k" * 50, name: value})
    assert error.startswith("django.core.exceptions.ImproperlyConfigured"), error
    assert name in error


# --- HTTPS behind a TLS-terminating proxy ----------------------------------------


@pytest.fixture
def behind_proxy(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.ALLOWED_HOSTS = ["chat.example.com"]


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https(behind_proxy):
    response = Client(HTTP_HOST="chat.example.com").get("/accounts/login/")
    assert response.status_code == 301
    assert response["Location"] == "https://chat.example.com/accounts/login/"


@pytest.mark.django_db
def test_https_through_the_proxy_is_served_with_hsts_and_secure_cookies(behind_proxy, make_user):
    make_user("alice")
    client = Client(HTTP_HOST="chat.example.com", HTTP_X_FORWARDED_PROTO="https")
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert page["Strict-Transport-Security"].startswith("max-age=31536000")
    assert page.cookies["csrftoken"]["secure"]
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "a-long-enough-passphrase-42"},
        secure=True,
    )
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"]
    assert response.cookies["sessionid"]["httponly"]


@pytest.mark.django_db
def test_health_probe_over_plain_http_is_not_redirected(behind_proxy, settings):
    settings.REDIS_URL = None
    response = Client(HTTP_HOST="chat.example.com").get("/healthz")
    assert response.status_code == 200
