"""The handshake's session and user (chat/auth.py), and how database calls keep their
connections (chat/db.py)."""

import asyncio

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import OperationalError, connection, connections
from django.db.utils import InterfaceError
from django.test import Client

from chat.auth import session_user
from chat.db import CHECK_EVERY_SECONDS, db_call

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
