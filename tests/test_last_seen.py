"""Recording when users were last online: many at once, never moving a record back."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model

from chat.last_seen import last_seen_record, last_seen_record_many
from chat.models import LastSeen

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _stored() -> dict[str, datetime]:
    return {
        get_user_model().objects.get(pk=user_id).username: at
        for user_id, at in LastSeen.objects.values_list("user_id", "last_seen")
    }


def test_many_users_are_recorded_at_once_and_a_record_never_moves_back(make_user):
    for name in ("ann", "ben", "cat"):
        make_user(name)
    last_seen_record(username="ben", at=NOON + timedelta(hours=1))

    recorded = last_seen_record_many(
        seen=[
            ("ann", NOON),
            ("ben", NOON),  # older than ben's record: kept as it was
            ("cat", NOON),
            ("cat", NOON + timedelta(seconds=5)),  # the later of two for one user
        ]
    )

    assert recorded == {
        "ann": NOON,
        "ben": NOON + timedelta(hours=1),
        "cat": NOON + timedelta(seconds=5),
    }
    assert _stored() == recorded
    # A later time moves it forward.
    assert last_seen_record(username="ann", at=NOON + timedelta(minutes=1)) == NOON + timedelta(
        minutes=1
    )


def test_a_user_deleted_meanwhile_is_left_out(make_user):
    make_user("ann")
    recorded = last_seen_record_many(seen=[("ann", NOON), ("gone", NOON)])
    assert recorded == {"ann": NOON}
    assert last_seen_record(username="gone", at=NOON) == NOON  # the time to announce
    assert _stored() == {"ann": NOON}


def test_a_crowd_is_recorded_in_a_few_statements(make_user, django_assert_max_num_queries):
    names = [f"guest{n}" for n in range(450)]  # more than one statement's worth
    get_user_model().objects.bulk_create(get_user_model()(username=name) for name in names)
    seen = [(name, NOON + timedelta(seconds=n)) for n, name in enumerate(names)]
    with django_assert_max_num_queries(6):  # users, two upserts, the read, a savepoint
        recorded = last_seen_record_many(seen=seen)
    assert recorded == dict(seen)
    assert _stored() == dict(seen)
