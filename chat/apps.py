"""App configuration: connects the signal handlers once Django is ready."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Registers the chat app and its signal handlers."""

    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connects the logout, account-end and room-change handlers."""
        from chat import signals  # noqa: F401
