"""Sign-up throttling: each client address may post the sign-up form a limited number
of times (CHAT_SIGNUP_RATE_LIMIT); beyond that it gets 429 with a message.
"""

import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

User = get_user_model()
BOT = "203.0.113.9"
NEIGHBOUR = "198.51.100.30"
THROTTLED = "Too many sign-ups from your network"


@pytest.fixture(autouse=True)
def _two_per_hour(settings):
    settings.CHAT_SIGNUP_RATE_LIMIT = (2, 3600)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sign_up(username: str, *, address: str = BOT, password: str = PASSWORD):
    """Posts the sign-up form from `address` with a fresh browser."""
    return Client(REMOTE_ADDR=address).post(
        "/accounts/signup/",
        {"username": username, "password1": password, "password2": password},
    )


def test_signups_over_the_limit_from_one_address_get_429_and_create_nothing():
    assert [sign_up(name).status_code for name in ("bot1", "bot2")] == [302, 302]
    refused = sign_up("bot3")
    assert refused.status_code == 429
    assert THROTTLED in refused.content.decode()
    assert 3500 < int(refused["Retry-After"]) <= 3600
    assert "Try again in 60 minutes" in refused.content.decode()
    assert not User.objects.filter(username="bot3").exists()


def test_throttled_page_still_offers_the_form():
    sign_up("bot1"), sign_up("bot2")
    refused = sign_up("bot3")
    assert 'name="username"' in refused.content.decode()


def test_refused_forms_count_too():
    # Every post counts: probing for taken names or weak passwords is throttled as well.
    assert sign_up("bot1", password="short").status_code == 400
    assert sign_up("bot1", password="short").status_code == 400
    assert sign_up("bot1").status_code == 429


def test_the_throttle_is_per_address():
    sign_up("bot1"), sign_up("bot2")
    assert sign_up("bot3").status_code == 429
    assert sign_up("neighbour", address=NEIGHBOUR).status_code == 302


def test_looking_at_the_form_is_not_counted():
    for _ in range(5):
        assert Client(REMOTE_ADDR=BOT).get("/accounts/signup/").status_code == 200
    assert sign_up("bot1").status_code == 302


def test_off_lets_every_signup_through(settings):
    settings.CHAT_SIGNUP_RATE_LIMIT = None
    assert [sign_up(f"bot{n}").status_code for n in range(5)] == [302] * 5


def test_a_throttled_signup_is_logged_with_its_address(caplog):
    caplog.set_level(logging.INFO)
    sign_up("bot1"), sign_up("bot2"), sign_up("bot3")
    assert any(
        r.name == "chat.views" and "sign-up throttled" in r.getMessage() and BOT in r.getMessage()
        for r in caplog.records
    )
    assert PASSWORD not in caplog.text
