"""The profile page: linked from the header, shows the account, saves the e-mail; sign-up
offers an optional e-mail.
"""

import pytest
from django.contrib.auth import get_user_model

from tests.conftest import PASSWORD, login_client


@pytest.mark.django_db
def test_the_header_links_to_the_profile_which_shows_the_account(make_user):
    client = login_client(make_user("alice", email="alice@example.com"))
    chat = client.get("/").content.decode()
    assert 'href="/accounts/profile/"' in chat
    page = client.get("/accounts/profile/").content.decode()
    assert "alice" in page
    assert 'value="alice@example.com"' in page
    for link in ("/accounts/password_change/", "/accounts/export/", "/accounts/delete/"):
        assert f'href="{link}"' in page
    assert 'action="/i18n/setlang/"' in page


@pytest.mark.django_db
def test_the_profile_saves_a_new_email_and_refuses_a_bad_one(make_user):
    alice = make_user("alice")
    client = login_client(alice)
    bad = client.post("/accounts/profile/", {"email": "not an address"})
    assert bad.status_code == 400
    saved = client.post("/accounts/profile/", {"email": "alice@example.com"}, follow=True)
    assert "was saved" in saved.content.decode()
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"


def test_the_profile_needs_a_login(client):
    assert client.get("/accounts/profile/")["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_sign_up_takes_an_optional_email(client):
    response = client.post(
        "/accounts/signup/",
        {
            "username": "bob",
            "email": "bob@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 302
    assert get_user_model().objects.get(username="bob").email == "bob@example.com"
