"""The session engine: Django's database sessions, loaded with one plain query."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib import auth
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from chat.models import LoginSession
from chat.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_site_uses_it():
    assert settings.SESSION_ENGINE == "chat.sessions"


def test_a_session_saved_by_django_loads_the_same():
    django_store = DjangoStore()
    django_store["greeting"] = "привет"
    django_store["n"] = 3
    django_store.create()
    store = SessionStore(django_store.session_key)
    assert store.load() == {"greeting": "привет", "n": 3}
    assert store.session_key == django_store.session_key


def test_an_expired_session_loads_empty_and_gets_a_new_key_when_saved():
    store = SessionStore()
    store["user"] = "ann"
    store.create()
    key = store.session_key
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    expired = SessionStore(key)
    assert expired.load() == {}
    assert expired.session_key is None
    expired["user"] = "bob"
    expired.save()
    assert expired.session_key != key


def test_a_session_expiring_later_is_still_loaded():
    store = SessionStore()
    store["user"] = "ann"
    store.create()
    Session.objects.filter(session_key=store.session_key).update(
        expire_date=timezone.now() + timedelta(minutes=1)
    )
    assert SessionStore(store.session_key).load() == {"user": "ann"}


def test_a_login_is_saved_with_its_users_id_and_other_sessions_without(make_user):
    alice = make_user("alice")
    client = Client()
    client.force_login(alice)
    key = client.cookies["sessionid"].value
    assert LoginSession.objects.get(session_key=key).user_id == alice.pk

    anonymous = SessionStore()
    anonymous["cart"] = "empty"
    anonymous.create()
    by_django = DjangoStore()
    by_django[auth.SESSION_KEY] = str(alice.pk)
    by_django.create()
    for other in (anonymous, by_django):
        assert LoginSession.objects.get(session_key=other.session_key).user_id is None
    # The same table: Django's engine reads what the site's wrote, and the other way.
    assert DjangoStore(key).load()[auth.SESSION_KEY] == str(alice.pk)
    assert SessionStore(by_django.session_key).load() == {auth.SESSION_KEY: str(alice.pk)}


def test_an_unknown_key_loads_empty():
    store = SessionStore("x" * 32)
    assert store.load() == {}
    assert store.session_key is None


# --- The session check over every open socket -----------------------------------


def _logged_in(user) -> str:
    """Logs `user` in as a browser would; returns the session key."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.session.session_key


def test_the_session_check_reads_many_sessions_in_a_few_queries_and_ends_the_right_ones(
    make_user, django_assert_max_num_queries
):
    from chat import selectors

    users = [make_user(f"user{n}") for n in range(12)]
    sessions = {_logged_in(user): user.pk for user in users for _ in range(3)}
    ann, ben, cid, dee = users[:4]
    logged_out = _logged_in(ann)
    Session.objects.filter(session_key=logged_out).delete()
    expired = _logged_in(ben)
    Session.objects.filter(session_key=expired).update(expire_date=timezone.now())
    someone_elses = _logged_in(cid)
    deactivated = _logged_in(dee)
    dee.is_active = False
    dee.save()
    checked = {
        **sessions,
        logged_out: ann.pk,
        expired: ben.pk,
        someone_elses: ben.pk,  # a key of cid's login, presented as ben's
        deactivated: dee.pk,
    }
    dees = {key for key, user_id in sessions.items() if user_id == dee.pk}

    with django_assert_max_num_queries(2 + 6 * 8):  # two, then a few for each ended one
        ended = selectors.sessions_ended(sessions=checked)

    assert ended == dict.fromkeys({logged_out, expired, someone_elses, deactivated} | dees)


def test_the_session_check_reads_sessions_in_chunks(make_user, monkeypatch):
    from chat import selectors

    monkeypatch.setattr(selectors, "SESSIONS_PER_READ", 2)
    users = [make_user(f"reader{n}") for n in range(5)]
    sessions = {_logged_in(user): user.pk for user in users}
    gone = _logged_in(users[0])
    Session.objects.filter(session_key=gone).delete()
    assert selectors.sessions_ended(sessions={**sessions, gone: users[0].pk}) == {gone: None}
