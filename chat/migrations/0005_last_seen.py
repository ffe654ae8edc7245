"""When each user was last online (presence: away and last seen)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("chat", "0004_search_index")]

    operations = [
        migrations.CreateModel(
            name="LastSeen",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("last_seen", models.DateTimeField()),
            ],
            options={"verbose_name_plural": "last seen"},
        ),
    ]
