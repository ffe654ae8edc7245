"""The id of the logged-in user on each row of Django's session table (chat.LoginSession)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0009_verbose_names"),
        ("sessions", "0001_initial"),
    ]

    operations = [
        # The table is django.contrib.sessions': the column is added by hand, and the
        # model below only describes it (unmanaged). Existing rows have none until
        # they are saved again; they are read as before.
        migrations.RunSQL(
            "ALTER TABLE django_session ADD COLUMN user_id integer NULL",
            reverse_sql="ALTER TABLE django_session DROP COLUMN user_id",
        ),
        migrations.CreateModel(
            name="LoginSession",
            fields=[
                (
                    "session_key",
                    models.CharField(
                        max_length=40, primary_key=True, serialize=False, verbose_name="session key"
                    ),
                ),
                ("session_data", models.TextField(verbose_name="session data")),
                ("expire_date", models.DateTimeField(db_index=True, verbose_name="expire date")),
                ("user_id", models.IntegerField(blank=True, null=True, verbose_name="user id")),
            ],
            options={
                "verbose_name": "session",
                "verbose_name_plural": "sessions",
                "db_table": "django_session",
                "abstract": False,
                "managed": False,
            },
        ),
    ]
