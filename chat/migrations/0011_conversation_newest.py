"""The id and rev of each conversation's newest message and newest change, kept with
the conversation (chat.Room, chat.DirectConversation), so that a greeting reads them
without walking the message table."""

from django.db import migrations, models


def fill(apps, schema_editor) -> None:
    """Sets both columns of every existing conversation from its messages."""
    message = apps.get_model("chat", "Message")._meta.db_table
    quote = schema_editor.connection.ops.quote_name
    for model, column in (("Room", "room_id"), ("DirectConversation", "direct_id")):
        table = quote(apps.get_model("chat", model)._meta.db_table)
        newest = f"FROM {quote(message)} m WHERE m.{column} = {table}.id"
        schema_editor.execute(
            f"UPDATE {table} SET last_id = COALESCE((SELECT MAX(m.id) {newest}), 0), "
            f"last_rev = COALESCE((SELECT MAX(m.rev) {newest}), 0)"
        )


class Migration(migrations.Migration):
    dependencies = [("chat", "0010_login_session_user")]

    operations = [
        migrations.AddField(
            model_name="room",
            name="last_id",
            field=models.PositiveBigIntegerField(
                default=0, editable=False, verbose_name="newest message id"
            ),
        ),
        migrations.AddField(
            model_name="room",
            name="last_rev",
            field=models.PositiveBigIntegerField(
                default=0, editable=False, verbose_name="newest revision"
            ),
        ),
        migrations.AddField(
            model_name="directconversation",
            name="last_id",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="directconversation",
            name="last_rev",
            field=models.PositiveBigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
