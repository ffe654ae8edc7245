"""The session engine: Django's database sessions, loaded with one plain query."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.utils import timezone

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


def test_an_unknown_key_loads_empty():
    store = SessionStore("x" * 32)
    assert store.load() == {}
    assert store.session_key is None
