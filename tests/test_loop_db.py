"""Reads on the event loop's own PostgreSQL connections (chat/loop_db.py): the same
answers as on a database thread, no thread hop, kept connections that follow
CONN_MAX_AGE and come back after a failure, and Django's errors."""

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import AnonymousUser
from django.db import OperationalError, ProgrammingError, connection, connections
from django.test import Client

from chat import loop_db
from chat.auth import login_steps, session_user
from chat.loop_db import Query
from chat.messaging import reads
from chat.messaging.changes import message_react
from chat.messaging.greeting import greeting, greeting_steps
from tests.test_greeting import world  # noqa: F401 (a fixture)

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="PostgreSQL only (runs in the PostgreSQL pass); elsewhere reads go to threads",
    ),
    # The loop's connections are other sessions: they see committed rows only.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _steps(*queries: str):
    """Steps that run `queries` in turn; returns each one's rows."""
    answers = []
    for sql in queries:
        answers.append((yield Query(sql, [])))
    return answers


def _pid_steps():
    ((pid,),) = yield Query("SELECT pg_backend_pid()", [])
    return pid


def _where_steps():
    """Answers the thread the steps ran on, and the backend."""
    thread = threading.get_ident()
    ((pid,),) = yield Query("SELECT pg_backend_pid()", [])
    return thread, pid


@pytest.fixture
def max_age():
    """Sets CONN_MAX_AGE for a test (the suite runs with 0)."""
    settings_dict = connections["default"].settings_dict
    before = settings_dict["CONN_MAX_AGE"]

    def set_to(value):
        settings_dict["CONN_MAX_AGE"] = value

    yield set_to
    settings_dict["CONN_MAX_AGE"] = before


def _logged_in(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def test_a_login_and_a_greeting_read_on_the_loop_are_those_read_in_a_thread(world):  # noqa: F811
    ann = world["ann"]
    key = _logged_in(ann)

    async def scenario():
        return await loop_db.read(login_steps, key), await loop_db.read(
            greeting_steps, user_id=ann.pk
        )

    (session, user), greeted = asyncio.run(scenario())
    assert user == ann and session.session_key == key
    assert user.get_session_auth_hash() == session_user(key)[1].get_session_auth_hash()
    assert greeted == greeting(user_id=ann.pk)
    assert greeted.direct and greeted.unread  # the rich world: not an empty greeting


def test_sync_and_changes_pages_read_on_the_loop_are_those_read_in_a_thread(world):  # noqa: F811
    ann = world["ann"]
    message_react(user_id=ann.pk, message_id=world["newest_seen"], emoji="🎉", on=True)

    async def scenario():
        return (
            await loop_db.read(reads.message_sync_page_steps, user_id=ann.pk, after=0, limit=5),
            await loop_db.read(reads.message_changes_page_steps, user_id=ann.pk, since=0),
        )

    by_id, by_rev = asyncio.run(scenario())
    assert by_id == reads.message_sync_page(user_id=ann.pk, after=0, limit=5)
    assert by_id[1] is True and len(by_id[0]) == 5  # a page, and more beyond it
    assert by_rev == reads.message_changes_page(user_id=ann.pk, since=0)
    assert any(message.reactions for message in by_rev[0])  # JSON, read alike
    assert any(message.mentions for message in by_rev[0])


def test_an_unknown_session_is_left_to_django(make_user):
    async def scenario():
        return await loop_db.read(login_steps, "no-such-session-key")

    _, user = asyncio.run(scenario())
    assert user is None  # the middleware then asks Django, which answers anonymous
    assert isinstance(session_user("no-such-session-key")[1], AnonymousUser)


def test_reads_run_on_the_loops_thread_and_reuse_a_kept_connection(max_age):
    max_age(60)

    async def scenario():
        return threading.get_ident(), [await loop_db.read(_where_steps) for _ in range(3)]

    loop_thread, answers = asyncio.run(scenario())
    assert [thread for thread, _ in answers] == [loop_thread] * 3
    assert len({pid for _, pid in answers}) == 1
    assert answers[0][1] != _backend_pid_here()


def test_with_conn_max_age_zero_each_read_has_a_connection_of_its_own(max_age):
    max_age(0)

    async def scenario():
        return [await loop_db.read(_pid_steps) for _ in range(3)]

    assert len(set(asyncio.run(scenario()))) == 3


def test_turned_off_reads_go_to_a_database_thread(settings):
    settings.CHAT_LOOP_DB_CONNECTIONS = 0

    async def scenario():
        return threading.get_ident(), await loop_db.read(_where_steps)

    loop_thread, (thread, _) = asyncio.run(scenario())
    assert thread != loop_thread


def test_no_more_connections_than_the_setting_however_many_read_at_once(settings, max_age):
    settings.CHAT_LOOP_DB_CONNECTIONS = 2
    max_age(60)

    def slow_pid_steps():
        ((pid, _),) = yield Query("SELECT pg_backend_pid(), pg_sleep(0.05)", [])
        return pid

    async def scenario():
        return await asyncio.gather(*[loop_db.read(slow_pid_steps) for _ in range(8)])

    pids = asyncio.run(scenario())
    assert len(pids) == 8 and len(set(pids)) <= 2


def test_a_kept_connection_killed_while_idle_is_replaced_without_an_error(max_age):
    max_age(60)

    async def scenario():
        first = await loop_db.read(_pid_steps)
        await sync_to_async(_terminate)(first)  # from another session, while it idles
        return first, await loop_db.read(_pid_steps)

    killed, replacement = asyncio.run(scenario())
    assert replacement != killed


def test_a_statement_cancelled_on_a_live_kept_connection_is_not_run_again(max_age):
    max_age(60)
    runs = []

    def cancelling_steps():
        runs.append(1)
        yield Query("SELECT pg_cancel_backend(pg_backend_pid()), pg_sleep(5)", [])

    async def scenario():
        await loop_db.read(_pid_steps)  # a connection is kept
        with pytest.raises(OperationalError):
            await loop_db.read(cancelling_steps)

    asyncio.run(scenario())
    assert runs == [1]  # only a dead connection's read is retried


def test_a_failing_statement_raises_djangos_error_and_the_next_read_works(max_age):
    max_age(60)

    async def scenario():
        with pytest.raises(ProgrammingError):
            await loop_db.read(_steps, "SELECT * FROM no_such_table")
        return await loop_db.read(_steps, "SELECT 1")

    assert asyncio.run(scenario()) == [[(1,)]]


def test_a_read_cancelled_mid_statement_gives_up_its_connection(max_age):
    max_age(60)

    async def scenario():
        sleeping_pid = asyncio.get_running_loop().create_future()

        def sleeper():
            ((pid,),) = yield Query("SELECT pg_backend_pid()", [])
            sleeping_pid.set_result(pid)
            yield Query("SELECT pg_sleep(60)", [])

        task = asyncio.create_task(loop_db.read(sleeper))
        pid = await sleeping_pid
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        after = await loop_db.read(_pid_steps)
        await sync_to_async(_terminate)(pid)  # its statement may still be sleeping
        return pid, after

    cancelled, after = asyncio.run(scenario())
    assert after != cancelled  # not handed back mid-statement


def test_the_loops_connections_keep_the_plans_of_the_statements_a_handshake_repeats(
    make_user, max_age
):
    max_age(60)
    alice = make_user("alice")
    key = _logged_in(alice)

    async def scenario():
        for _ in range(6):  # psycopg prepares a statement on its fifth use
            await loop_db.read(login_steps, key)
            await loop_db.read(greeting_steps, user_id=alice.pk)
        return await loop_db.read(_steps, "SELECT statement FROM pg_prepared_statements")

    (rows,) = asyncio.run(scenario())
    prepared = [statement for (statement,) in rows]
    assert any("session_data" in statement for statement in prepared), prepared
    assert any("last_seq" in statement for statement in prepared), prepared


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def _backend_pid_here() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_neither_djangos_connections_nor_the_loops_compile_statements(max_age):
    """JIT off (chatsite/settings.py): compiling a statement whose estimate grew with
    the tables cost a handshake 40 ms."""
    max_age(60)
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)
    assert asyncio.run(loop_db.read(_steps, "SHOW jit")) == [[("off",)]]
