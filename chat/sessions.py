"""The database session engine, reading a session in one plain query.

Every websocket handshake loads its login session, and in a reconnect storm every
socket does so at once. Django's engine builds and compiles an ORM query for each
load, which cost the handshake more than the database took to answer it; this one
sends the same query as SQL. Sessions are stored, written and expired by Django's
own code, in the same table, so switching engines keeps everyone logged in.

Each row also gets the id of the user logged in on it (`chat.models.LoginSession`),
so that a handshake can read the session and that user's row in one statement.
"""

from collections.abc import Sequence

from django.contrib import auth
from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone

from chat.loop_db import Query


class SessionStore(db.SessionStore):
    """Django's database session store with a cheaper load, and the user's id on each row."""

    @classmethod
    def get_model_class(cls):
        """Django's session table, with its `user_id` column."""
        from chat.models import LoginSession  # late, as Django's engine: apps must be ready

        return LoginSession

    def create_model_instance(self, data):
        """The row to save: Django's, with the id of the user the data logs in (or None)."""
        row = super().create_model_instance(data)
        try:
            row.user_id = int(data[auth.SESSION_KEY])
        except (KeyError, TypeError, ValueError):  # no login, or a user model without int ids
            row.user_id = None
        return row

    def load_query(
        self, *, user_table: str = "", user_pk: str = "", user_columns: Sequence[str] = ()
    ) -> Query:
        """The statement that reads this session's data, if it has not expired.

        Given a user table, each row goes on with `user_columns` of the user whose id
        was saved with the session: all NULL when there is none or it is gone. The
        caller checks that it is the user the data names.
        """
        model = self.model
        connection = connections[router.db_for_read(model)]
        quote = connection.ops.quote_name
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        columns, join = "s.session_data", ""
        if user_table:
            columns += "".join(f", u.{quote(column)}" for column in user_columns)
            join = f" LEFT JOIN {quote(user_table)} u ON u.{quote(user_pk)} = s.user_id"
        return Query(
            f"SELECT {columns} FROM {quote(model._meta.db_table)} s{join} "
            "WHERE s.session_key = %s AND s.expire_date > %s",
            [self.session_key, now],
        )

    def loaded(self, rows: list) -> None:
        """Takes the rows of `load_query` as the session's data, as a load would."""
        found = self._row_found(rows)
        self._session_cache = self.decode(found.session_data) if found else {}

    def _row_found(self, rows: list):
        if not rows:
            # As Django's store: a missing or expired session gets a new key when saved.
            self._session_key = None
            return None
        return self.model(session_key=self.session_key, session_data=rows[0][0])

    def _get_session_from_db(self):
        with connections[router.db_for_read(self.model)].cursor() as cursor:
            cursor.execute(*self.load_query())
            return self._row_found(cursor.fetchall())
