"""Notification levels: how much of each conversation notifies each user (the default,
`mentions`, is never stored)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_last_seen"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="NotificationLevel",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "level",
                    models.CharField(
                        choices=[
                            ("all", "All messages"),
                            ("mentions", "Mentions and direct messages"),
                            ("none", "Nothing"),
                        ],
                        max_length=8,
                    ),
                ),
                (
                    "peer",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "room",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="chat.room",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="notification_levels",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("room__isnull", False)),
                        fields=("user", "room"),
                        name="notify_room",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("peer__isnull", False)),
                        fields=("user", "peer"),
                        name="notify_peer",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("peer__isnull", True), ("room__isnull", False)),
                            models.Q(("peer__isnull", False), ("room__isnull", True)),
                            _connector="OR",
                        ),
                        name="notify_room_xor_peer",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("level__in", ["all", "mentions", "none"])),
                        name="notify_level_known",
                    ),
                ],
            },
        ),
    ]
