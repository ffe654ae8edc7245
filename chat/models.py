"""Rooms, direct conversations and messages: fields, constraints and indexes only."""

from django.conf import settings
from django.contrib.sessions.base_session import AbstractBaseSession
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

ROOM_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class Room(models.Model):
    """A room every user belongs to; `last_seq` counts its messages."""

    name = models.CharField(
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                ROOM_NAME_PATTERN,
                _(
                    "Use 1 to 64 lowercase letters, digits, '-' or '_', "
                    "starting with a letter or digit."
                ),
            )
        ],
        verbose_name=_("name"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    # The seq of the newest message; the row is locked while a message is added.
    last_seq = models.PositiveBigIntegerField(default=0, editable=False, verbose_name=_("last seq"))
    # The id and rev of its newest message and newest change, kept with the room so that
    # a greeting reads them without walking the message table (chat/messaging/greeting.py).
    last_id = models.PositiveBigIntegerField(
        default=0, editable=False, verbose_name=_("newest message id")
    )
    last_rev = models.PositiveBigIntegerField(
        default=0, editable=False, verbose_name=_("newest revision")
    )
    # A room with members is private to them; a room without members is open to all.
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="private_rooms",
        verbose_name=_("members"),
    )

    class Meta:
        verbose_name = _("room")
        verbose_name_plural = _("rooms")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DirectConversation(models.Model):
    """The direct conversation of two users (or of one user with themself)."""

    # The pair is stored in id order, so each pair has exactly one row.
    user_low = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    user_high = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    last_seq = models.PositiveBigIntegerField(default=0, editable=False)
    # As a room's: the id and rev of its newest message and newest change.
    last_id = models.PositiveBigIntegerField(default=0, editable=False)
    last_rev = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user_low", "user_high"], name="direct_pair_unique"),
            models.CheckConstraint(
                condition=Q(user_low__lte=F("user_high")), name="direct_pair_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_low} ↔ {self.user_high}"


class Message(models.Model):
    """A stored message: in a room, or direct to one recipient."""

    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="messages_sent",
        verbose_name=_("sender"),
    )
    room = models.ForeignKey(
        Room,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("room"),
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="messages_received",
        verbose_name=_("recipient"),
    )
    direct = models.ForeignKey(
        DirectConversation,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="messages",
        editable=False,
        verbose_name=_("direct"),
    )
    body = models.TextField(max_length=4000, blank=True, verbose_name=_("body"))
    client_id = models.CharField(max_length=64, verbose_name=_("client id"))
    seq = models.PositiveBigIntegerField(verbose_name=_("seq"))
    sent_at = models.DateTimeField(db_index=True, verbose_name=_("sent at"))
    # Every creation or change of any message takes the next revision (see Counter),
    # under the lock that makes them commit in order: `sync since` follows it.
    rev = models.PositiveBigIntegerField(unique=True, editable=False, verbose_name=_("rev"))
    edited_at = models.DateTimeField(
        null=True, blank=True, editable=False, verbose_name=_("edited at")
    )
    # A deleted message keeps its id and seq; its text, reactions and mentions are gone.
    deleted = models.BooleanField(default=False, editable=False, verbose_name=_("deleted"))
    # [{"emoji": "👍", "users": ["alice", "bob"]}], in order of each emoji's first use.
    reactions = models.JSONField(
        default=list, blank=True, editable=False, verbose_name=_("reactions")
    )
    # The usernames the body mentions as @name, in order; `mentions` is the same as
    # rows, so a user's unread mentions can be counted.
    mentioned = models.JSONField(
        default=list, blank=True, editable=False, verbose_name=_("mentioned")
    )
    mentions = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="mentioned_in",
        editable=False,
        verbose_name=_("mentions"),
    )
    # The attached files as the wire shows them, in order: [{"id", "name", "size",
    # "type", "width", "height", "thumb"}]; the Upload rows behind them decide access.
    attachments = models.JSONField(
        default=list, blank=True, editable=False, verbose_name=_("attachments")
    )

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["id"]
        constraints = [
            # A retried send (same client_id) can never become a second message.
            models.UniqueConstraint(
                fields=["sender", "client_id"], name="message_client_id_unique"
            ),
            models.UniqueConstraint(
                fields=["room", "seq"], condition=Q(room__isnull=False), name="message_room_seq"
            ),
            models.UniqueConstraint(
                fields=["direct", "seq"],
                condition=Q(direct__isnull=False),
                name="message_direct_seq",
            ),
            models.CheckConstraint(
                condition=(
                    Q(room__isnull=False, recipient__isnull=True, direct__isnull=True)
                    | Q(room__isnull=True, recipient__isnull=False, direct__isnull=False)
                ),
                name="message_room_xor_recipient",
            ),
        ]
        indexes = [
            # sync: a user's direct messages by id, sent and received.
            models.Index(fields=["recipient", "id"], name="message_recipient_id"),
            models.Index(fields=["sender", "id"], name="message_sender_id"),
        ]

    def __str__(self) -> str:
        target = f"#{self.room}" if self.room_id else f"@{self.recipient}"
        return f"{self.sender} → {target} ({self.seq})"


class Counter(models.Model):
    """A named counter taken under a row lock: `rev` hands out message revisions."""

    name = models.CharField(max_length=32, primary_key=True)
    value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"


class ReadPosition(models.Model):
    """How far a user has read one conversation (a room or a direct conversation)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="read_positions"
    )
    room = models.ForeignKey(Room, null=True, blank=True, on_delete=models.CASCADE)
    direct = models.ForeignKey(DirectConversation, null=True, blank=True, on_delete=models.CASCADE)
    # Never moves back: every message with a seq up to this one counts as read.
    seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "room"], condition=Q(room__isnull=False), name="read_room"
            ),
            models.UniqueConstraint(
                fields=["user", "direct"], condition=Q(direct__isnull=False), name="read_direct"
            ),
            models.CheckConstraint(
                condition=Q(room__isnull=False, direct__isnull=True)
                | Q(room__isnull=True, direct__isnull=False),
                name="read_room_xor_direct",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} read {self.room or self.direct} to {self.seq}"


class NotificationLevel(models.Model):
    """How much of one conversation (a room, or the direct one with `peer`) notifies a user.

    Only levels other than the default (`mentions`) are stored: no row means mentions.
    """

    class Level(models.TextChoices):
        ALL = "all", _("All messages")
        MENTIONS = "mentions", _("Mentions and direct messages")
        NONE = "none", _("Nothing")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_levels",
        verbose_name=_("user"),
    )
    room = models.ForeignKey(
        Room,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("room"),
    )
    # The other party of a direct conversation (myself for notes to self).
    peer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("peer"),
    )
    level = models.CharField(max_length=8, choices=Level.choices, verbose_name=_("level"))

    class Meta:
        verbose_name = _("notification level")
        verbose_name_plural = _("notification levels")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "room"], condition=Q(room__isnull=False), name="notify_room"
            ),
            models.UniqueConstraint(
                fields=["user", "peer"], condition=Q(peer__isnull=False), name="notify_peer"
            ),
            models.CheckConstraint(
                condition=Q(room__isnull=False, peer__isnull=True)
                | Q(room__isnull=True, peer__isnull=False),
                name="notify_room_xor_peer",
            ),
            models.CheckConstraint(
                condition=Q(level__in=["all", "mentions", "none"]), name="notify_level_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room or self.peer}: {self.level}"


class LastSeen(models.Model):
    """When a user was last online: written as they go offline, and now and then while online."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        verbose_name=_("user"),
    )
    last_seen = models.DateTimeField(verbose_name=_("last seen"))

    class Meta:
        verbose_name = _("last seen")
        verbose_name_plural = _("last seen")

    def __str__(self) -> str:
        return f"{self.user} last seen {self.last_seen:%Y-%m-%d %H:%M}"


class Upload(models.Model):
    """A stored file: uploaded by `owner`, then attached to at most one message.

    An upload never attached is an orphan, removed after a day (`sweep_uploads`).
    Deleting the row deletes its files from storage once the deletion commits.
    """

    # The opaque id clients see in URLs and `attachments`; never the primary key.
    key = models.CharField(max_length=32, unique=True, editable=False, verbose_name=_("key"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="uploads",
        verbose_name=_("owner"),
    )
    message = models.ForeignKey(
        Message,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="uploads",
        verbose_name=_("message"),
    )
    # The file's name as its owner gave it (shown and offered on download).
    name = models.CharField(max_length=255, verbose_name=_("name"))
    size = models.PositiveBigIntegerField(verbose_name=_("size"))
    # The type read from the file's bytes, never the browser's claim.
    content_type = models.CharField(max_length=100, verbose_name=_("content type"))
    file = models.FileField(max_length=255, verbose_name=_("file"))
    thumb = models.FileField(max_length=255, blank=True, verbose_name=_("thumb"))
    width = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("width"))
    height = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("height"))
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("created at")
    )

    class Meta:
        verbose_name = _("upload")
        verbose_name_plural = _("uploads")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class Mute(models.Model):
    """A user kept from writing until `until`: in one room, or everywhere (no room)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="mutes",
        verbose_name=_("user"),
    )
    room = models.ForeignKey(
        Room,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("room"),
    )
    until = models.DateTimeField(verbose_name=_("until"))
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("mute")
        verbose_name_plural = _("mutes")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "room"], condition=Q(room__isnull=False), name="mute_room"
            ),
            models.UniqueConstraint(
                fields=["user"], condition=Q(room__isnull=True), name="mute_everywhere"
            ),
        ]

    def __str__(self) -> str:
        where = f"#{self.room}" if self.room_id else "everywhere"
        return f"{self.user} muted {where} until {self.until:%Y-%m-%d %H:%M}"


class ModerationAction(models.Model):
    """A record of one staff action: who did what to whom, and when."""

    class Kind(models.TextChoices):
        DELETE = "delete", _("Deleted a message")
        MUTE = "mute", _("Muted a user")
        UNMUTE = "unmute", _("Lifted a mute")
        DEACTIVATE = "deactivate", _("Deactivated a user")
        MEMBERS = "members", _("Changed a room's members")

    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("kind"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    # Kept as text too, so the record survives the deletion of the accounts it names.
    actor_name = models.CharField(max_length=150, verbose_name=_("actor name"))
    target_name = models.CharField(max_length=150, blank=True, verbose_name=_("target name"))
    room = models.ForeignKey(
        Room,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("room"),
    )
    message_id = models.BigIntegerField(null=True, blank=True, verbose_name=_("message id"))
    detail = models.CharField(max_length=255, blank=True, verbose_name=_("detail"))
    at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("at"))

    class Meta:
        verbose_name = _("moderation action")
        verbose_name_plural = _("moderation actions")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.kind} {self.target_name}"


class LoginSession(AbstractBaseSession):
    """A row of Django's session table, with the id of the user logged in on it.

    The table stays django.contrib.sessions' own (switching session engines keeps
    everyone logged in); migration 0010 adds the column. The site's engine
    (chat/sessions.py) fills it on every save, so that a handshake reads a session and
    its user in one statement (chat/auth.py); a row saved by Django's own engine has
    none, and is read in two as before.
    """

    # A plain column, not a foreign key: the table is Django's, and the column is
    # only a hint. A session whose user is gone finds no row to join, and the login
    # is read, and refused, from its data as before.
    user_id = models.IntegerField(null=True, blank=True, verbose_name=_("user id"))

    class Meta(AbstractBaseSession.Meta):
        db_table = "django_session"
        managed = False  # django.contrib.sessions creates the table

    @classmethod
    def get_session_store_class(cls):
        """The session engine that reads and writes these rows."""
        from chat.sessions import SessionStore

        return SessionStore
