"""The handshake's session and user (chat/auth.py), and how database calls keep their
connections (chat/db.py)."""

import asyncio

import pytest
from django.contrib import auth
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AnonymousUser
from django.db import OperationalError, connection, connections
from django.db.utils import InterfaceError
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat.auth import login_steps, session_user
from chat.db import CHECK_EVERY_SECONDS, db_call
from chat.loop_db import run_steps
from chat.messaging.greeting import greeting
from chat.models import LoginSession
from chat.sessions import SessionStore

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL behaviour (runs in the PostgreSQL pass)"
)


def _logged_in(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.mark.django_db
def test_a_logged_in_session_gives_its_user(make_user):
    alice = make_user("alice")
    session, user = session_user(_logged_in(alice))
    assert user == alice
    assert session.session_key is not None


@pytest.mark.django_db
@pytest.mark.parametrize("key", [None, "", "no-such-session-key"])
def test_no_or_an_unknown_session_gives_an_anonymous_user(key):
    _, user = session_user(key)
    assert isinstance(user, AnonymousUser)


@pytest.mark.django_db
def test_a_session_from_before_a_password_change_gives_an_anonymous_user(make_user):
    alice = make_user("alice")
    key = _logged_in(alice)
    alice.set_password("a-new-password-for-alice")
    alice.save()
    assert isinstance(session_user(key)[1], AnonymousUser)


@pytest.mark.django_db
def test_a_deactivated_users_session_gives_an_anonymous_user(make_user):
    alice = make_user("alice")
    key = _logged_in(alice)
    alice.is_active = False
    alice.save()
    assert isinstance(session_user(key)[1], AnonymousUser)


def _session_of(key: str):
    return SessionStore(key)


def _good_login(session) -> object:
    """The user `login_steps` finds in the saved session, or None (Django decides)."""
    session.save()
    return run_steps(login_steps(session.session_key))[1]


@pytest.mark.django_db
def test_a_good_login_is_read_in_one_plain_statement_as_django_reads_its_user(make_user):
    alice = make_user("alice")
    alice.is_staff = True
    alice.last_login = timezone.now()
    alice.save()
    key = _logged_in(alice)
    with CaptureQueriesContext(connection) as queries:
        _, user = session_user(key)
    # The session and, by the id saved with it, the user; no ORM get() and its LIMIT 21.
    assert len(queries) == 1
    assert "LIMIT" not in queries[0]["sql"].upper()
    expected = ModelBackend().get_user(alice.pk)
    for field in user._meta.concrete_fields:
        mine, django = getattr(user, field.attname), getattr(expected, field.attname)
        assert (mine, type(mine)) == (django, type(django)), field.name
    assert user._state.db == expected._state.db and not user._state.adding


@pytest.mark.django_db
@pytest.mark.parametrize("stored", ["none", "another user's", "a deleted user's"])
def test_a_session_row_without_its_users_id_reads_the_user_its_data_names(make_user, stored):
    alice, bob = make_user("alice"), make_user("bob")
    key = _logged_in(alice)
    # A row saved by Django's own engine has no id; a row can hold a stale one.
    user_id = {"none": None, "another user's": bob.pk, "a deleted user's": bob.pk}[stored]
    LoginSession.objects.filter(session_key=key).update(user_id=user_id)
    if stored == "a deleted user's":
        bob.delete()
    with CaptureQueriesContext(connection) as queries:
        _, user = session_user(key)
    assert user == alice
    assert len(queries) == 2  # the session, then the user by the id in its data


@pytest.mark.django_db
def test_the_quick_read_leaves_to_django_every_login_that_is_not_a_good_password_login(
    make_user,
):
    alice = make_user("alice")
    good = _session_of(_logged_in(alice))
    assert _good_login(good) == alice

    other_backend = _session_of(_logged_in(alice))
    other_backend[auth.BACKEND_SESSION_KEY] = "axes.backends.AxesStandaloneBackend"
    assert _good_login(other_backend) is None

    no_hash = _session_of(_logged_in(alice))
    del no_hash[auth.HASH_SESSION_KEY]
    assert _good_login(no_hash) is None

    gone = _session_of(_logged_in(alice))
    gone[auth.SESSION_KEY] = str(alice.pk + 1000)
    assert _good_login(gone) is None

    not_a_session = SessionStore("no-such-session-key")
    assert run_steps(login_steps(not_a_session.session_key))[1] is None

    alice.is_active = False
    alice.save()
    assert _good_login(good) is None


@pytest.mark.django_db
def test_a_login_made_under_a_rotated_secret_still_holds_as_in_django(make_user, settings):
    alice = make_user("alice")
    key = _logged_in(alice)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-for-the-site-0123456789abcdef"
    assert _good_login(_session_of(key)) is None  # the old hash: Django decides
    session, user = session_user(key)
    assert user == alice
    assert session.get(auth.HASH_SESSION_KEY) == alice.get_session_auth_hash()


@postgres_only
@pytest.mark.django_db
def test_postgresql_keeps_the_plans_of_the_statements_a_handshake_repeats(make_user):
    alice = make_user("alice")
    key = _logged_in(alice)
    for _ in range(6):  # psycopg prepares a statement on its fifth use
        session_user(key)
        greeting(user_id=alice.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("session_data" in statement for statement in prepared), prepared
    assert any("last_seq" in statement for statement in prepared), prepared


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def _close() -> None:
    connection.close()  # looked up in the calling thread: its own connection


@pytest.fixture
def kept_alive():
    """Kept-alive connections (CONN_MAX_AGE 60, as in production) for one test.

    The suite closes connections after every call (CONN_MAX_AGE 0); the setting is
    read when a connection opens, so the database thread's connection is closed
    before and after.
    """
    settings_dict = connections["default"].settings_dict
    before = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = 60
    asyncio.run(db_call(_close)())
    yield
    settings_dict["CONN_MAX_AGE"] = before
    asyncio.run(db_call(_close)())


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_kept_alive_connection_is_reused_between_calls(kept_alive):
    async def scenario():
        return [await db_call(_backend_pid)() for _ in range(3)]

    first, second, third = asyncio.run(scenario())
    assert first == second == third


async def _kill_the_database_threads_connection() -> int:
    """Terminates the connection of the thread that runs db_call; returns its pid."""
    pid = await db_call(_backend_pid)()
    await db_call(_terminate, concurrent=True)(pid)
    return pid


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_connection_killed_between_checks_fails_one_call_and_is_replaced(kept_alive):
    async def scenario():
        pid = await _kill_the_database_threads_connection()
        # Checked less than CHECK_EVERY_SECONDS ago: this call meets the dead connection.
        with pytest.raises((OperationalError, InterfaceError)):
            await db_call(_backend_pid)()
        # The error marked it: the next call runs on a new connection.
        return pid, await db_call(_backend_pid)()

    killed, replacement = asyncio.run(scenario())
    assert replacement != killed


@postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_connection_killed_while_idle_is_replaced_without_an_error(kept_alive):
    async def scenario():
        pid = await _kill_the_database_threads_connection()
        # Past the interval, the health check finds the dead connection first.
        await asyncio.sleep(CHECK_EVERY_SECONDS + 0.2)
        return pid, await db_call(_backend_pid)()

    killed, replacement = asyncio.run(scenario())
    assert replacement != killed
