"""Messages that change: revisions, edits, tombstones, reactions, mentions, read positions.

Existing messages take their id as their revision; the counter starts after them.
Existing users have read everything there is: their positions start at the end.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def number_existing(apps, schema_editor):
    Message = apps.get_model("chat", "Message")
    Counter = apps.get_model("chat", "Counter")
    Message.objects.update(rev=models.F("id"))
    last = Message.objects.aggregate(last=models.Max("id"))["last"] or 0
    Counter.objects.create(name="rev", value=last)


def read_to_the_end(apps, schema_editor):
    User = apps.get_model(settings.AUTH_USER_MODEL)
    Room = apps.get_model("chat", "Room")
    DirectConversation = apps.get_model("chat", "DirectConversation")
    ReadPosition = apps.get_model("chat", "ReadPosition")
    rooms = list(Room.objects.values_list("id", "last_seq"))
    positions = [
        ReadPosition(user_id=user_id, room_id=room_id, seq=last_seq)
        for user_id in User.objects.values_list("id", flat=True)
        for room_id, last_seq in rooms
    ]
    for low, high, direct_id, last_seq in DirectConversation.objects.values_list(
        "user_low_id", "user_high_id", "id", "last_seq"
    ):
        for user_id in {low, high}:
            positions.append(ReadPosition(user_id=user_id, direct_id=direct_id, seq=last_seq))
    ReadPosition.objects.bulk_create(positions, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0002_general_room"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Counter",
            fields=[
                ("name", models.CharField(max_length=32, primary_key=True, serialize=False)),
                ("value", models.PositiveBigIntegerField(default=0)),
            ],
        ),
        migrations.AddField(
            model_name="message",
            name="deleted",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.AddField(
            model_name="message",
            name="edited_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="message",
            name="mentioned",
            field=models.JSONField(blank=True, default=list, editable=False),
        ),
        migrations.AddField(
            model_name="message",
            name="mentions",
            field=models.ManyToManyField(
                blank=True, editable=False, related_name="mentioned_in", to=settings.AUTH_USER_MODEL
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="reactions",
            field=models.JSONField(blank=True, default=list, editable=False),
        ),
        migrations.AddField(
            model_name="message",
            name="rev",
            field=models.PositiveBigIntegerField(editable=False, null=True),
        ),
        migrations.RunPython(number_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="message",
            name="rev",
            field=models.PositiveBigIntegerField(editable=False, unique=True),
        ),
        migrations.AlterField(
            model_name="message",
            name="body",
            field=models.TextField(blank=True, max_length=4000),
        ),
        migrations.CreateModel(
            name="ReadPosition",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.PositiveBigIntegerField(default=0)),
                (
                    "direct",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="chat.directconversation",
                    ),
                ),
                (
                    "room",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="chat.room",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="read_positions",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("room__isnull", False)),
                        fields=("user", "room"),
                        name="read_room",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("direct__isnull", False)),
                        fields=("user", "direct"),
                        name="read_direct",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("direct__isnull", True), ("room__isnull", False)),
                            models.Q(("direct__isnull", False), ("room__isnull", True)),
                            _connector="OR",
                        ),
                        name="read_room_xor_direct",
                    ),
                ],
            },
        ),
        migrations.RunPython(read_to_the_end, migrations.RunPython.noop),
    ]
