"""Fills the site's database directly: benchmark users with login sessions, and history.

Run with the target's DATABASE_URL and SECRET_KEY (the sessions are signed with it);
prints one JSON object on stdout.

    python -m bench.seed accounts '{"room": 110, "dm": 100}'
    python -m bench.seed history --room bench-history --count 1000000
    python -m bench.seed history --room bench-long --count 100 --body-chars 4000
"""

import argparse
import json
import os
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
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from chat.messaging.read_state import read_start  # noqa: E402
from chat.messaging.store import take_revs  # noqa: E402
from chat.models import Message, Room  # noqa: E402

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
    with transaction.atomic():
        User.objects.bulk_create(
            [User(username=name, password=unusable) for group in names.values() for name in group]
        )
        users = {user.username: user for user in User.objects.filter(username__contains=tag)}
        result = {}
        for group, members in names.items():
            result[group] = []
            for name in members:
                user = users[name]
                # What django.contrib.auth.login() stores in a session.
                store = SessionStore()
                store[SESSION_KEY] = str(user.pk)
                store[BACKEND_SESSION_KEY] = BACKEND
                store[HASH_SESSION_KEY] = user.get_session_auth_hash()
                store.create()
                result[group].append((name, store.session_key))
                # bulk_create sends no post_save: start them where a new user starts.
                read_start(user_id=user.pk)
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
    fields += ("rev", "deleted", "reactions", "mentioned")
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
                 {c["rev"]}, {c["deleted"]}, {c["reactions"]}, {c["mentioned"]})
            SELECT (%(senders)s::bigint[])[1 + g %% %(k)s], %(room)s, NULL, NULL,
                   {body}, 'hist-' || g, g,
                   %(start)s::timestamptz + g * interval '1 millisecond',
                   %(first_rev)s + g - 1, false, '[]'::jsonb, '[]'::jsonb
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
        f"{c['rev']}, {c['deleted']}, {c['reactions']}, {c['mentioned']}) "
        "VALUES (%s, %s, NULL, NULL, %s, %s, %s, %s, %s, 0, '[]', '[]')"
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
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


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
    options = parser.parse_args(argv)
    if options.command == "accounts":
        result = accounts(json.loads(options.spec))
    else:
        result = history(options.room, options.count, body_chars=options.body_chars)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
