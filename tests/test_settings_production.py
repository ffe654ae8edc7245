"""Production settings: `check --deploy` is clean with only SECRET_KEY and ALLOWED_HOSTS
(HTTPS by default), CHAT_PLAIN_HTTP opts out; the abuse limits are read from the
environment; HTTPS behind a proxy, with the health probe still answered over plain HTTP.
"""

import json
import re
import secrets
import subprocess
import sys

import pytest
from django.test import Client

from tests.server import Browser, ServerProcess
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


# Only these two: HSTS for subdomains and preloading stay the operator's choice.
OPERATORS_CHOICE = {"security.W005", "security.W021"}


def warnings_of(result: subprocess.CompletedProcess) -> set[str]:
    """The check ids `check --deploy` reported."""
    return set(re.findall(r"\((\w+\.\w+)\)", result.stderr + result.stdout))


def test_check_deploy_is_clean_with_only_secret_key_and_allowed_hosts():
    result = check_deploy(
        {"SECRET_KEY": PRODUCTION["SECRET_KEY"], "ALLOWED_HOSTS": "chat.example.com"}
    )
    assert warnings_of(result) == OPERATORS_CHOICE, result.stderr


def test_check_deploy_names_every_https_setting_after_opting_out():
    bare = {k: v for k, v in PRODUCTION.items() if k not in HTTPS_VARIABLES}
    result = check_deploy({**bare, "CHAT_PLAIN_HTTP": "1"})
    assert result.returncode != 0
    # HSTS (and so neither of its two options), the redirect, the two cookies.
    assert warnings_of(result) == {
        "security.W004",
        "security.W008",
        "security.W012",
        "security.W016",
    }


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
    "https": [
        settings.SESSION_COOKIE_SECURE,
        settings.CSRF_COOKIE_SECURE,
        settings.SECURE_SSL_REDIRECT,
        settings.SECURE_HSTS_SECONDS,
    ],
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
        "proxy_header": ["HTTP_X_FORWARDED_PROTO", "https"],
        "https": [True, True, True, 365 * 24 * 60 * 60],
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
        "https": [True, True, True, 365 * 24 * 60 * 60],
    }


# --- HTTPS by default, and the way out ------------------------------------------

YEAR = 365 * 24 * 60 * 60


@pytest.mark.parametrize(
    ("env", "proxy_header", "https"),
    [
        ({}, ["HTTP_X_FORWARDED_PROTO", "https"], [True, True, True, YEAR]),
        ({"CHAT_PLAIN_HTTP": "1"}, None, [False, False, False, 0]),
        ({"DEBUG": "1"}, None, [False, False, False, 0]),
        (
            {"SECURE_HSTS_SECONDS": "600"},
            ["HTTP_X_FORWARDED_PROTO", "https"],
            [True, True, True, 600],
        ),
        # A variable of its own still overrides its part, either way.
        (
            {"SECURE_SSL_REDIRECT": "0", "SECURE_PROXY_SSL_HEADER": "0"},
            None,
            [True, True, False, YEAR],
        ),
        (
            {"CHAT_PLAIN_HTTP": "1", "SESSION_COOKIE_SECURE": "1"},
            None,
            [True, False, False, 0],
        ),
    ],
    ids=["default", "plain-http", "debug", "hsts-tuned", "old-overrides", "one-back-on"],
)
def test_https_is_on_unless_debug_or_plain_http(env, proxy_header, https):
    read = read_settings(env)
    assert (read["proxy_header"], read["https"]) == (proxy_header, https)


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
        ("CHAT_PLAIN_HTTP", "perhaps"),
        ("LOG_FORMAT", "xml"),
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


@pytest.mark.server
def test_a_server_left_at_the_defaults_redirects_plain_http_but_not_its_health_probe(
    site_database, suite_redis_url
):
    extra = {"REDIS_URL": suite_redis_url} if suite_redis_url else {}
    # base_env opts the suite's servers out; this one runs as deployed.
    server = ServerProcess(site_database, CHAT_PLAIN_HTTP="", **extra).start()
    try:
        browser = Browser(server.url)
        status, headers, _ = browser.get("/accounts/login/")
        assert status == 301
        assert headers["Location"] == f"https://127.0.0.1:{server.port}/accounts/login/"
        # What the container's healthcheck does: plain HTTP to the process itself.
        status, _, body = browser.get("/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
    finally:
        server.stop()
