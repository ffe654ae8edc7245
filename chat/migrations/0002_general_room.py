"""Creates the room every site starts with: general."""

from django.db import migrations


def create_general(apps, schema_editor):
    apps.get_model("chat", "Room").objects.get_or_create(name="general")


def remove_general(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    Room.objects.filter(name="general", last_seq=0).delete()


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]

    operations = [migrations.RunPython(create_general, remove_general)]
