"""The database session engine, reading a session in one plain query.

Every websocket handshake loads its login session, and in a reconnect storm every
socket does so at once. Django's engine builds and compiles an ORM query for each
load, which cost the handshake more than the database took to answer it; this one
sends the same query as SQL. Sessions are stored, written and expired by Django's
own code, in the same table, so switching engines keeps everyone logged in.
"""

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone

from chat.loop_db import Query


class SessionStore(db.SessionStore):
    """Django's database session store with a cheaper load."""

    def load_query(self) -> Query:
        """The statement that reads this session's data, if it has not expired."""
        model = self.model
        connection = connections[router.db_for_read(model)]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        return Query(
            f"SELECT session_data FROM {connection.ops.quote_name(model._meta.db_table)} "
            "WHERE session_key = %s AND expire_date > %s",
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
