"""Password guessing: repeated failed logins lock out the username and the address
(django-axes), answered 429 with a message, and end after the cool-off.
"""

import logging
import time
from datetime import timedelta

import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = 3
ATTACKER = "203.0.113.7"
ELSEWHERE = "198.51.100.20"
LOCKED = "Too many failed log-ins"


@pytest.fixture(autouse=True)
def _small_limit_and_fast_hashing(settings):
    """Locks after LIMIT failures; hashes cheaply (these tests are about counting)."""
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(make_user):
    return make_user("alice")


def log_in(username: str, password: str, *, address: str = ATTACKER, path="/accounts/login/"):
    """Posts the login form from `address` with a fresh browser; returns the response."""
    client = Client(REMOTE_ADDR=address)
    response = client.post(path, {"username": username, "password": password})
    response.client = client
    return response


def fail(username: str, times: int, *, address: str = ATTACKER) -> list[int]:
    """Tries a wrong password `times` times; returns the status codes."""
    return [log_in(username, f"wrong-{n}", address=address).status_code for n in range(times)]


def test_failures_up_to_the_limit_lock_the_username_with_429_and_a_message(alice):
    assert fail("alice", LIMIT - 1) == [200] * (LIMIT - 1)
    locked = log_in("alice", "wrong-again")
    assert locked.status_code == 429
    assert LOCKED in locked.content.decode()
    assert "Try again in 15 minutes" in locked.content.decode()
    assert locked["Retry-After"] == "900"


def test_the_right_password_is_refused_while_locked(alice):
    fail("alice", LIMIT)
    response = log_in("alice", PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    # Not logged in: the chat page still sends this browser to the login page.
    assert response.client.get("/").status_code == 302


def test_a_locked_username_stays_locked_from_another_address(alice):
    fail("alice", LIMIT, address=ATTACKER)
    assert log_in("alice", PASSWORD, address=ELSEWHERE).status_code == 429


def test_other_usernames_from_other_addresses_are_unaffected(alice, make_user):
    make_user("bob")
    fail("alice", LIMIT, address=ATTACKER)
    response = log_in("bob", PASSWORD, address=ELSEWHERE)
    assert response.status_code == 302
    assert response.client.get("/").status_code == 200


def test_failures_spread_over_usernames_lock_the_address(alice, make_user):
    make_user("bob")
    for name in ["alice", "bob", "carol"][:LIMIT]:
        fail(name, 1, address=ATTACKER)
    # From that address even a new username with the right password is refused ...
    assert log_in("bob", PASSWORD, address=ATTACKER).status_code == 429
    # ... while the same person elsewhere gets in.
    assert log_in("bob", PASSWORD, address=ELSEWHERE).status_code == 302


def test_a_success_before_the_limit_logs_in(alice):
    fail("alice", LIMIT - 1)
    assert log_in("alice", PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off(alice, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    fail("alice", LIMIT)
    assert log_in("alice", PASSWORD).status_code == 429
    time.sleep(1.2)
    response = log_in("alice", PASSWORD)
    assert response.status_code == 302
    assert response.client.get("/").status_code == 200


def test_tries_during_the_lockout_do_not_extend_it(alice, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1.5)
    fail("alice", LIMIT)
    time.sleep(0.8)
    fail("alice", 2)  # still locked: these neither count nor restart the cool-off
    time.sleep(0.9)
    assert log_in("alice", PASSWORD).status_code == 302


def test_the_admin_login_is_locked_out_too(make_user):
    make_user("root", is_staff=True, is_superuser=True)
    codes = [
        log_in("root", f"wrong-{n}", path="/admin/login/?next=/admin/").status_code
        for n in range(LIMIT)
    ]
    assert codes == [200] * (LIMIT - 1) + [429]
    assert log_in("root", PASSWORD, path="/admin/login/?next=/admin/").status_code == 429


def test_a_lockout_is_logged_with_username_and_address_but_no_password(alice, caplog):
    caplog.set_level(logging.INFO)
    fail("alice", LIMIT)
    log_in("alice", PASSWORD)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("chat")]
    assert any(
        "login locked out" in line and "'alice'" in line and ATTACKER in line for line in lines
    )
    assert PASSWORD not in caplog.text
    assert "wrong-0" not in caplog.text
