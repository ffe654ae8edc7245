"""Fills the site's database directly: benchmark users with login sessions, and history.

Run with the target's DATABASE_URL and SECRET_KEY (the sessions are signed with it);
prints one JSON object on stdout.

    python -m bench.seed accounts '{"room": 110, "dm": 100}'
    python -m bench.seed history --room bench-history --count 1000000
    python -m bench.seed history --room bench-long --count 100 --body-chars 4000
    python -m bench.seed search --count 1000000 --user alice
"""

import argparse
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

import django

django.setup()

from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.contrib.sessions.backends.base import VALID_KEY_CHARS  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402

from chat.messaging.search import search_index_update  # noqa: E402
from chat.messaging.store import newest_refresh, take_revs  # noqa: E402
from chat.models import DirectConversation, LoginSession, Message, ReadPosition, Room  # noqa: E402
from chat.sessions import SessionStore  # noqa: E402

BACKEND = "django.contrib.auth.backends.ModelBackend"
SQLITE_CHUNK = 100_000
# What a seeded body says before any padding; `--body-chars` pads it with this.
BODY = "stored history message number "
PADDING = " long"


def accounts(spec: dict[str, int]) -> dict[str, list[tuple[str, str]]]:
    """Creates `count` users per group, each logged in once; returns (username, session key)."""
    User = get_user_model()
    tag = uuid.uuid4().hex[:6]
    names = {
        group: [f"{group}{tag}{number}" for number in range(count)] for group, count in spec.items()
    }
    unusable = make_password(None)
    # Ten thousand users (the reconnect storm) one INSERT at a time took longer than
    # the scenario itself: sessions and read positions go in bulk too.
    store = SessionStore()
    expiry = store.get_expiry_date()
    rooms = list(Room.objects.values_list("id", "last_seq"))
    with transaction.atomic():
        User.objects.bulk_create(
            [User(username=name, password=unusable) for group in names.values() for name in group]
        )
        users = {user.username: user for user in User.objects.filter(username__contains=tag)}
        result, sessions, positions = {}, [], []
        for group, members in names.items():
            result[group] = []
            for name in members:
                user = users[name]
                # What django.contrib.auth.login() stores in a session.
                data = {
                    SESSION_KEY: str(user.pk),
                    BACKEND_SESSION_KEY: BACKEND,
                    HASH_SESSION_KEY: user.get_session_auth_hash(),
                }
                key = get_random_string(32, VALID_KEY_CHARS)
                # As the site's session engine saves a login: with its user's id.
                sessions.append(
                    LoginSession(
                        session_key=key,
                        session_data=store.encode(data),
                        expire_date=expiry,
                        user_id=user.pk,
                    )
                )
                result[group].append((name, key))
                # bulk_create sends no post_save: start them where a new user starts
                # (chat.messaging.read_state.read_start, for many users at once).
                positions += [
                    ReadPosition(user_id=user.pk, room_id=room_id, seq=last_seq)
                    for room_id, last_seq in rooms
                ]
        LoginSession.objects.bulk_create(sessions, batch_size=2000)
        ReadPosition.objects.bulk_create(positions, batch_size=2000, ignore_conflicts=True)
    # Statistics for what was bulk loaded, as autovacuum would gather them in time:
    # without them PostgreSQL plans for the empty tables it last saw.
    with connection.cursor() as cursor:
        for model in (User, LoginSession, ReadPosition):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return result


def history(room_name: str, count: int, senders: int = 10, body_chars: int = 0) -> dict:
    """Stores `count` messages in a new room, as the site would have: seq 1..count, no gaps.

    With `body_chars`, every body is padded to that many characters.
    """
    User = get_user_model()
    tag = uuid.uuid4().hex[:6]
    unusable = make_password(None)
    User.objects.bulk_create(
        [User(username=f"hist{tag}{n}", password=unusable) for n in range(senders)]
    )
    sender_ids = list(
        User.objects.filter(username__startswith=f"hist{tag}")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    room = Room.objects.create(name=room_name)
    start = datetime.now(UTC) - timedelta(milliseconds=count)
    began = time.monotonic()
    if connection.vendor == "postgresql":
        _history_postgresql(room.pk, sender_ids, count, start, body_chars)
    else:
        _history_sqlite(room.pk, sender_ids, count, start, body_chars)
    # The room's counter must match, or the next live message would reuse a seq.
    Room.objects.filter(pk=room.pk).update(last_seq=count)
    ids = Message.objects.filter(room_id=room.pk).order_by("id").values_list("id", flat=True)
    return {
        "room": room_name,
        "count": count,
        "body_chars": body_chars,
        "first_id": ids.first(),
        "last_id": ids.last(),
        "seconds": round(time.monotonic() - began, 1),
    }


def _columns() -> dict[str, str]:
    fields = ("sender", "room", "recipient", "direct", "body", "client_id", "seq", "sent_at")
    fields += ("rev", "deleted", "reactions", "mentioned", "attachments")
    return {name: Message._meta.get_field(name).column for name in fields}


def _history_postgresql(
    room_id: int, sender_ids: list[int], count: int, start: datetime, body_chars: int
) -> None:
    """One INSERT … SELECT over generate_series: a million rows in seconds."""
    c = _columns()
    body = "%(body)s::text || g"
    if body_chars:
        body = f"rpad({body}, %(chars)s, %(padding)s::text)"
    with transaction.atomic(), connection.cursor() as cursor:
        # Each message takes its revision from the site's counter, as a live one would.
        first_rev = take_revs(count)
        cursor.execute(
            f"""
            INSERT INTO {Message._meta.db_table}
                ({c["sender"]}, {c["room"]}, {c["recipient"]}, {c["direct"]},
                 {c["body"]}, {c["client_id"]}, {c["seq"]}, {c["sent_at"]},
                 {c["rev"]}, {c["deleted"]}, {c["reactions"]}, {c["mentioned"]},
                 {c["attachments"]})
            SELECT (%(senders)s::bigint[])[1 + g %% %(k)s], %(room)s, NULL, NULL,
                   {body}, 'hist-' || g, g,
                   %(start)s::timestamptz + g * interval '1 millisecond',
                   %(first_rev)s + g - 1, false, '[]'::jsonb, '[]'::jsonb, '[]'::jsonb
            FROM generate_series(1, %(count)s) AS g
            ORDER BY g
            """,
            {
                "senders": sender_ids,
                "k": len(sender_ids),
                "room": room_id,
                "count": count,
                "start": start,
                "body": BODY,
                "chars": body_chars,
                "padding": PADDING,
                "first_rev": first_rev,
            },
        )
    # Rows written here, not by the site's writers: each conversation's newest after them.
    newest_refresh()
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Message._meta.db_table}")


def _history_sqlite(
    room_id: int, sender_ids: list[int], count: int, start: datetime, body_chars: int
) -> None:
    """executemany in big transactions."""
    c = _columns()
    statement = (
        f"INSERT INTO {Message._meta.db_table} ({c['sender']}, {c['room']}, {c['recipient']}, "
        f"{c['direct']}, {c['body']}, {c['client_id']}, {c['seq']}, {c['sent_at']}, "
        f"{c['rev']}, {c['deleted']}, {c['reactions']}, {c['mentioned']}, "
        f"{c['attachments']}) "
        "VALUES (%s, %s, NULL, NULL, %s, %s, %s, %s, %s, 0, '[]', '[]', '[]')"
    )
    k = len(sender_ids)
    for low in range(1, count + 1, SQLITE_CHUNK):
        high = min(low + SQLITE_CHUNK, count + 1)
        with transaction.atomic(), connection.cursor() as cursor:
            # Each message takes its revision from the site's counter, as a live one would.
            first_rev = take_revs(high - low)
            rows = [
                (
                    sender_ids[g % k],
                    room_id,
                    _padded(f"{BODY}{g}", body_chars),
                    f"hist-{g}",
                    g,
                    # Django stores SQLite times as naive UTC text.
                    str((start + timedelta(milliseconds=g)).replace(tzinfo=None)),
                    first_rev + g - low,
                )
                for g in range(low, high)
            ]
            cursor.executemany(statement, rows)
    newest_refresh()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# Words of the searchable messages, English and Russian, the most frequent first:
# a message draws its words with a skew towards the start of the list, so some
# words are in a third of the messages and others in a few hundred.
_SEARCH_TEXT = (
    "the to and a of is in it you that we for on this deploy be with have are not "
    "friday today tomorrow meeting release build test server database review please "
    "check update fix bug issue ticket branch merge production staging customer "
    "report invoice payment budget design draft slides lunch coffee office remote "
    "holiday weekend monday tuesday wednesday thursday morning evening deadline "
    "question answer problem solution error warning timeout latency backup restore "
    "migration schema index query cache redis postgres python django channels socket "
    "frontend backend mobile android iphone browser chrome firefox docs wiki roadmap "
    "quarter planning retro standup sprint estimate priority urgent blocker hotfix "
    "rollback incident outage pager alert metrics dashboard graph traffic spike "
    "привет как дела спасибо пожалуйста сегодня завтра вчера встреча релиз сборка "
    "тест сервер база данных ошибка проблема решение вопрос ответ отчёт счёт оплата "
    "бюджет дизайн черновик обед кофе офис удалённо отпуск выходные понедельник "
    "вторник среда четверг пятница утро вечер срок задача проект команда клиент "
    "продакшн откат инцидент авария метрики график нагрузка кэш индекс запрос "
    "миграция схема резервная копия восстановление документация план квартал "
    "спринт оценка приоритет срочно блокер исправление проверка обновление ветка "
    "слияние ревью коллега руководитель звонок созвон письмо почта договор"
)
SEARCH_WORDS = tuple(_SEARCH_TEXT.split())
# Conversations of the searchable messages: rooms, and direct conversations, some
# of them the searching user's and some between two other users.
SEARCH_ROOMS = 7
SEARCH_DIRECTS = 3


def search_history(count: int, username: str, seed: int = 7) -> dict:
    """Stores `count` messages of varied English and Russian words for the search benchmark.

    They are spread over SEARCH_ROOMS new rooms and SEARCH_DIRECTS direct
    conversations: one of `username` with another user, the others between two
    other users (so the search must leave them out). Seqs have no gaps; the
    statistics are fresh afterwards.
    """
    User = get_user_model()
    tag = uuid.uuid4().hex[:6]
    unusable = make_password(None)
    User.objects.bulk_create(
        [User(username=f"srch{tag}{n}", password=unusable) for n in range(SEARCH_DIRECTS + 1)]
    )
    others = list(
        User.objects.filter(username__startswith=f"srch{tag}")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    me = User.objects.get(username=username).pk
    rooms = [Room.objects.create(name=f"bench-search-{tag}-{n}").pk for n in range(SEARCH_ROOMS)]
    pairs = [(me, others[0])] + [(others[n], others[n + 1]) for n in range(SEARCH_DIRECTS - 1)]
    directs = [
        DirectConversation.objects.create(user_low_id=min(pair), user_high_id=max(pair)).pk
        for pair in pairs
    ]
    # Message g belongs to conversation g % K and is its (g // K + 1)-th message.
    conversations = [(room, None, None) for room in rooms] + [
        (None, direct, pair) for direct, pair in zip(directs, pairs, strict=True)
    ]
    start = datetime.now(UTC) - timedelta(milliseconds=count)
    began = time.monotonic()
    if connection.vendor == "postgresql":
        _search_postgresql(conversations, others, count, start, seed)
    else:
        _search_sqlite(conversations, others, count, start, seed)
    kinds = len(conversations)
    for index, (room, direct, _) in enumerate(conversations):
        last_seq = max(0, (count - index + kinds - 1) // kinds)
        model, pk = (Room, room) if room is not None else (DirectConversation, direct)
        model.objects.filter(pk=pk).update(last_seq=last_seq)
    # Everyone but the searcher has read the new rooms: a room with no read position
    # counts as unread from its start, and the greeting of every other scenario's
    # users would count these million messages at each handshake.
    readers = User.objects.exclude(pk=me).values_list("pk", flat=True).iterator()
    last = dict(Room.objects.filter(pk__in=rooms).values_list("pk", "last_seq"))
    ReadPosition.objects.bulk_create(
        [
            ReadPosition(user_id=reader, room_id=room, seq=last[room])
            for reader in readers
            for room in rooms
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )
    newest_refresh()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return {
        "count": count,
        "rooms": [Room.objects.get(pk=pk).name for pk in rooms],
        "with": User.objects.get(pk=others[0]).username,
        "words": SEARCH_WORDS,
        "seconds": round(time.monotonic() - began, 1),
    }


def _search_postgresql(conversations, others, count: int, start: datetime, seed: int) -> None:
    """One INSERT … SELECT over generate_series; each body is 3 to 14 drawn words."""
    c = _columns()
    kinds = len(conversations)
    rooms = [room or 0 for room, _, _ in conversations]
    directs = [direct or 0 for _, direct, _ in conversations]
    # A direct message goes from one party of its pair to the other, by turns.
    lows = [pair[0] if pair else 0 for _, _, pair in conversations]
    highs = [pair[1] if pair else 0 for _, _, pair in conversations]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed / 1000])
        first_rev = take_revs(count)
        cursor.execute(
            f"""
            WITH m AS (
                SELECT g, 1 + g %% %(k)s AS k FROM generate_series(0, %(count)s - 1) AS g
            )
            INSERT INTO {Message._meta.db_table}
                ({c["sender"]}, {c["room"]}, {c["recipient"]}, {c["direct"]},
                 {c["body"]}, {c["client_id"]}, {c["seq"]}, {c["sent_at"]},
                 {c["rev"]}, {c["deleted"]}, {c["reactions"]}, {c["mentioned"]},
                 {c["attachments"]})
            SELECT
                CASE WHEN (%(directs)s::bigint[])[k] = 0
                     THEN (%(others)s::bigint[])[1 + g %% %(n_others)s]
                     WHEN (g / %(k)s) %% 2 = 0 THEN (%(lows)s::bigint[])[k]
                     ELSE (%(highs)s::bigint[])[k] END,
                NULLIF((%(rooms)s::bigint[])[k], 0),
                CASE WHEN (%(directs)s::bigint[])[k] = 0 THEN NULL
                     WHEN (g / %(k)s) %% 2 = 0 THEN (%(highs)s::bigint[])[k]
                     ELSE (%(lows)s::bigint[])[k] END,
                NULLIF((%(directs)s::bigint[])[k], 0),
                (SELECT string_agg(
                            (%(words)s::text[])[1 + floor(%(n_words)s * power(random(), 3))::int],
                            ' ')
                   FROM generate_series(1, 3 + (g * 7) %% 12) AS w WHERE g >= 0),
                'srch-' || g, g / %(k)s + 1,
                %(start)s::timestamptz + g * interval '1 millisecond',
                %(first_rev)s + g, false, '[]'::jsonb, '[]'::jsonb, '[]'::jsonb
            FROM m ORDER BY g
            """,
            {
                "k": kinds,
                "count": count,
                "rooms": rooms,
                "directs": directs,
                "lows": lows,
                "highs": highs,
                "others": others,
                "n_others": len(others),
                "words": list(SEARCH_WORDS),
                "n_words": len(SEARCH_WORDS),
                "start": start,
                "first_rev": first_rev,
            },
        )


def _search_sqlite(conversations, others, count: int, start: datetime, seed: int) -> None:
    """executemany in big transactions, then the same rows into the search index."""
    c = _columns()
    kinds = len(conversations)
    draw = random.Random(seed)
    statement = (
        f"INSERT INTO {Message._meta.db_table} ({c['sender']}, {c['room']}, {c['recipient']}, "
        f"{c['direct']}, {c['body']}, {c['client_id']}, {c['seq']}, {c['sent_at']}, "
        f"{c['rev']}, {c['deleted']}, {c['reactions']}, {c['mentioned']}, "
        f"{c['attachments']}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '[]', '[]', '[]')"
    )

    def row(g: int, rev: int) -> tuple:
        room, direct, pair = conversations[g % kinds]
        if pair is None:
            sender, recipient = others[g % len(others)], None
        else:
            sender, recipient = pair if (g // kinds) % 2 == 0 else pair[::-1]
        words = [
            SEARCH_WORDS[int(len(SEARCH_WORDS) * draw.random() ** 3)]
            for _ in range(3 + (g * 7) % 12)
        ]
        sent_at = str((start + timedelta(milliseconds=g)).replace(tzinfo=None))
        body = " ".join(words)
        return (sender, room, recipient, direct, body, f"srch-{g}", g // kinds + 1, sent_at, rev)

    for low in range(0, count, SQLITE_CHUNK):
        high = min(low + SQLITE_CHUNK, count)
        with transaction.atomic(), connection.cursor() as cursor:
            first_rev = take_revs(high - low)
            rows = [row(g, first_rev + g - low) for g in range(low, high)]
            cursor.executemany(statement, rows)
            # Rows written here bypass the storing service: index them as it would.
            chunk = Message.objects.filter(rev__gte=first_rev, rev__lt=first_rev + len(rows))
            search_index_update(messages=chunk.values_list("id", "body").iterator())


def _padded(body: str, chars: int) -> str:
    """The body padded to `chars` characters, as PostgreSQL's rpad() does it."""
    if not chars:
        return body
    return (body + PADDING * chars)[:chars]


def main(argv: list[str]) -> None:
    """Parses the command line and prints the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    accounts_cmd = commands.add_parser("accounts")
    accounts_cmd.add_argument("spec", help='JSON: {"group": count, ...}')
    history_cmd = commands.add_parser("history")
    history_cmd.add_argument("--room", default="bench-history")
    history_cmd.add_argument("--count", type=int, default=1_000_000)
    history_cmd.add_argument("--body-chars", type=int, default=0, help="pad bodies to this")
    search_cmd = commands.add_parser("search")
    search_cmd.add_argument("--count", type=int, default=1_000_000)
    search_cmd.add_argument("--user", required=True, help="the searching user")
    options = parser.parse_args(argv)
    if options.command == "accounts":
        result = accounts(json.loads(options.spec))
    elif options.command == "search":
        result = search_history(options.count, options.user)
    else:
        result = history(options.room, options.count, body_chars=options.body_chars)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
