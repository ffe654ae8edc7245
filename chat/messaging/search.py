"""Searching message bodies: the full-text index and the query, one backend per database.

PostgreSQL keeps `to_tsvector('simple', body)` in a stored generated column with a
GIN index: both follow the table by themselves. SQLite keeps an FTS5 table beside
the messages, kept in step by the services that store, edit and delete them
(`search_index_update`). Both use no language rules (no stemming, no stop words),
so every script is searched alike; case and, on SQLite, accents fold.
"""

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from chat.messaging import reads
from chat.models import Message
from chat.protocol import StoredMessage

# PostgreSQL: the text search configuration (no stemming, no stop words), and the
# generated column of each message's words and its GIN index (migration 0004).
SEARCH_CONFIG = "simple"
PG_COLUMN = "search_vector"
PG_INDEX = "message_body_search"
# PostgreSQL first reads this many of the newest candidate messages in id order and
# checks their words, without the index; only a search that finds too few there
# asks the index (see _pg_search).
PG_RECENT_WINDOW = 5000
# SQLite: the FTS5 table (migration 0004); its rowid is the message id, and its
# tokenizer, unicode61 with remove_diacritics 2, folds case in every script, and accents.
FTS_TABLE = "chat_message_search"
# SQLite reads matches newest first in chunks this large at first, doubling up to
# the largest, until enough of them are visible to the user.
FTS_FIRST_CHUNK = 100
FTS_LARGEST_CHUNK = 5000


def search_index_update(*, messages: Iterable[tuple[int, str]]) -> None:
    """Puts each (message id, body) in the search index, replacing what it held.

    An empty body (a deleted message) leaves the message out of the index.
    Runs inside the transaction that stores the change, so both commit together.
    """
    if connection.vendor != "sqlite":
        return  # PostgreSQL's generated column follows the table by itself
    messages = list(messages)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"DELETE FROM {FTS_TABLE} WHERE rowid = %s", [(pk,) for pk, _ in messages]
        )
        cursor.executemany(
            f"INSERT INTO {FTS_TABLE} (rowid, body) VALUES (%s, %s)",
            [(pk, body) for pk, body in messages if body],
        )


def _pg_matches(words: tuple[str, ...]) -> RawSQL:
    """PostgreSQL: whether a message's words hold every one of `words`, the last as a prefix."""
    # Words are letters and digits only (the wire format made sure), so quoting them
    # is enough to keep them lexemes; `:*` makes the last one a prefix. The query
    # text is a parameter all the same.
    terms = [f"'{word}'" for word in words]
    terms[-1] += ":*"
    table = connection.ops.quote_name(Message._meta.db_table)
    return RawSQL(
        f"{table}.{PG_COLUMN} @@ to_tsquery(%s::regconfig, %s)",
        [SEARCH_CONFIG, " & ".join(terms)],
        output_field=BooleanField(),
    )


def _fts_match(words: tuple[str, ...]) -> str:
    # The same for FTS5: quoted words are plain terms, side by side they must all
    # match, and `*` after the last makes it a prefix.
    return " ".join(f'"{word}"' for word in words) + "*"


def message_search(
    *,
    user_id: int,
    words: tuple[str, ...],
    room: str | None = None,
    with_: str | None = None,
    before: int | None = None,
    limit: int,
) -> tuple[list[StoredMessage], bool]:
    """Returns the visible messages holding every word, newest first, and whether more exist.

    The last word may be the start of a longer one. Only ids below `before`;
    within one room or direct conversation if one is named (ChatError for an
    unknown one). Deleted messages never match.
    """
    messages = reads.messages_visible_to(user_id=user_id)
    # Newest first. Within one conversation seq rises with id, and its (room, seq)
    # or (direct, seq) index gives that order directly.
    newest_first = "-id"
    if room is not None or with_ is not None:
        room_id, direct_id = reads.conversation_of(user_id=user_id, room=room, with_=with_)
        if room_id is None and direct_id is None:
            return [], False
        # The conversation is the user's to read (conversation_of made sure), so the
        # general visibility rule, which only blurs the planner's estimates, can go.
        messages = Message.objects.filter(room_id=room_id, direct_id=direct_id)
        newest_first = "-seq"
    messages = messages.filter(deleted=False)
    if before is not None:
        messages = messages.filter(id__lt=before)
    if connection.vendor != "postgresql":
        return _fts_search(messages, words, before=before, limit=limit)
    return _pg_search(messages, words, newest_first=newest_first, limit=limit)


def _pg_search(
    messages: QuerySet, words: tuple[str, ...], *, newest_first: str, limit: int
) -> tuple[list[StoredMessage], bool]:
    """PostgreSQL: the newest messages first, then the index for what lies further back.

    Left to itself, the planner reads "newest first, LIMIT n" along the id index and
    tests each row's words: quick for a common word, a scan of every message for one
    that is nowhere. Or it reads every match from the GIN index and sorts them:
    quick for a rare word, slow for a common one. So the search does each where it
    is quick: the newest PG_RECENT_WINDOW messages in order first (a common word is
    found there), then, only if that found too few, the index alone (the words are
    rare by then) for the older ones.
    """
    window = (
        messages.annotate(hit=_pg_matches(words))
        .order_by(newest_first)
        .values("id", "hit")[:PG_RECENT_WINDOW]
    )
    sql, params = window.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # The window in order along an index, never gathered and sorted: the
        # planner's guess of a conversation's size must not turn it into a read
        # of the whole conversation. (SET LOCAL ends with the transaction.)
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        # A subquery with a LIMIT is read as written: the window, then its size,
        # its oldest id and its newest matches, in one row.
        cursor.execute(
            "SELECT count(*), min(id), "
            "(array_agg(id ORDER BY id DESC) FILTER (WHERE hit))[1:%s] "
            f"FROM ({sql}) AS recent",
            [limit + 1, *params],
        )
        size, oldest, ids = cursor.fetchone()
    found = reads.stored_messages(messages.filter(id__in=ids).order_by("-id")) if ids else []
    if len(found) > limit or size < PG_RECENT_WINDOW:
        return found[:limit], len(found) > limit
    older = messages.filter(_pg_matches(words), id__lt=oldest)
    with transaction.atomic(), connection.cursor() as cursor:
        # Only the GIN index may find these rows: the words are rare by now.
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_seqscan = off")
        found += reads.stored_messages(older.order_by("-id")[: limit + 1 - len(found)])
    return found[:limit], len(found) > limit


def _fts_search(
    messages: QuerySet, words: tuple[str, ...], *, before: int | None, limit: int
) -> tuple[list[StoredMessage], bool]:
    """SQLite: walks the matches newest first, in chunks, keeping those in `messages`.

    FTS5 hands out matches in id order and stops at the LIMIT, so a frequent word
    costs one small chunk; only matches the user may not see cost more chunks.
    """
    found: list[StoredMessage] = []
    chunk = FTS_FIRST_CHUNK
    while True:
        below = "" if before is None else " AND rowid < %s"
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s{below} "
                "ORDER BY rowid DESC LIMIT %s",
                [_fts_match(words), *([] if before is None else [before]), chunk],
            )
            ids = [row[0] for row in cursor.fetchall()]
        if ids:
            wanted = limit + 1 - len(found)
            found += reads.stored_messages(messages.filter(id__in=ids).order_by("-id")[:wanted])
        if len(found) > limit or len(ids) < chunk:
            return found[:limit], len(found) > limit
        before, chunk = ids[-1], min(chunk * 2, FTS_LARGEST_CHUNK)
