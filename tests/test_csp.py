"""The Content-Security-Policy header: every page allows scripts from this site only,
never inline, and cannot be framed.
"""

import pytest
from django.test import Client

from tests.conftest import login_client

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    """The enforced policy of a response, as directive -> sources."""
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


@pytest.fixture
def pages(make_user, settings):
    """One response of each kind of page: chat, accounts, admin."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    root = make_user("root", is_staff=True, is_superuser=True)
    staff = login_client(root)
    alice = login_client(make_user("alice"))
    anonymous = Client()
    return {
        "chat page": alice.get("/"),
        "login": anonymous.get("/accounts/login/"),
        "signup": anonymous.get("/accounts/signup/"),
        "admin login": anonymous.get("/admin/login/"),
        "admin index": staff.get("/admin/"),
        "admin message list": staff.get("/admin/chat/message/"),
        "admin user page": staff.get(f"/admin/auth/user/{root.pk}/change/"),
    }


def test_every_page_is_served_with_status_200(pages):
    assert {name: r.status_code for name, r in pages.items()} == dict.fromkeys(pages, 200)


def test_scripts_come_from_this_site_only_and_never_inline(pages):
    for name, response in pages.items():
        directives = policy(response)
        assert directives["script-src"] == ["'self'"], name
        assert directives["default-src"] == ["'self'"], name
        assert "'unsafe-inline'" not in response["Content-Security-Policy"], name
        assert "'unsafe-eval'" not in response["Content-Security-Policy"], name


def test_styles_images_sockets_and_forms_are_limited_to_this_site(pages):
    directives = policy(pages["chat page"])
    assert directives["style-src"] == ["'self'"]
    assert directives["img-src"] == ["'self'", "data:"]
    assert directives["connect-src"] == ["'self'", "ws:", "wss:"]
    assert directives["form-action"] == ["'self'"]
    assert directives["base-uri"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]


def test_no_page_may_be_framed(pages):
    for name, response in pages.items():
        assert policy(response)["frame-ancestors"] == ["'none'"], name
        assert response["X-Frame-Options"] == "DENY", name


def test_error_answers_carry_the_policy_too(settings):
    settings.CHAT_SIGNUP_RATE_LIMIT = (1, 60)
    client = Client()
    client.post("/accounts/signup/", {"username": "x"})
    throttled = client.post("/accounts/signup/", {"username": "x"})
    assert throttled.status_code == 429
    assert policy(throttled)["script-src"] == ["'self'"]
    assert policy(Client().get("/no-such-page/"))["script-src"] == ["'self'"]
