from django.conf import settings
from django.db import models


class TenantModel(models.Model):
    """Base for every table holding one user's data: `user_id` is what the RLS policy compares."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


class AuditLog(models.Model):
    """Who did what to whose money, keys, plan or access, with the state before and after."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The tenant whose data changed; empty for platform-wide actions.",
        db_index=False,  # (user, -created_at) below leads with it: one index fewer to write per row
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Text, not a bounded column: labels such as "api for <email>" embed an email of up to 254 characters.
    actor_label = models.TextField(help_text="Who acted, kept after the actor is deleted.")
    action = models.CharField(max_length=100, db_index=True)
    target_type = models.CharField(max_length=100, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target_type}:{self.target_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notification(TenantModel):
    """Something Nexus told a user; the notification centre lists these. See core/notifications.py."""

    kind = models.CharField(max_length=64, help_text="Dotted kind, e.g. alert.price or order.filled.")
    message = models.TextField()
    link = models.CharField(max_length=500, blank=True)
    dedup_key = models.CharField(  # noqa: DJ001 - NULL is "no key", which the partial unique index skips
        max_length=200, null=True, blank=True, help_text="The same key for the same user is notified once."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    # No index of its own: (user, -created_at), (user, read_at) and the unique (user, dedup_key) lead with it.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"]), models.Index(fields=["user", "read_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "dedup_key"],
                condition=models.Q(dedup_key__isnull=False),
                name="core_notification_once_per_dedup_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"


class NotificationDelivery(TenantModel):
    """One notification on one channel. At most one row per (notification, channel), sent at most once."""

    # No index of its own: the unique (notification, channel) leads with it.
    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    channel = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "notification deliveries"
        indexes = [models.Index(fields=["status", "updated_at"])]
        constraints = [
            models.UniqueConstraint(fields=["notification", "channel"], name="core_delivery_once_per_channel")
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.status} (notification {self.notification_id})"


class NotificationPreference(TenantModel):
    """A user's choice for one kind on one channel; without a row the channel's default applies."""

    kind = models.CharField(max_length=64)
    channel = models.CharField(max_length=32)
    enabled = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "channel"], name="core_preference_once_per_kind_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.channel}: {'on' if self.enabled else 'off'}"


class IdempotencyRecord(TenantModel):
    """An unsafe API request sent with an `Idempotency-Key` header, and the answer it got: a retry with the
    same key returns that answer instead of acting again (core.idempotency). Kept 24 hours."""

    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=2048)
    request_hash = models.CharField(max_length=64, help_text="SHA-256 of the method, path, query and body.")
    # Null while the first request runs (its transaction holds the row; a concurrent retry waits for it).
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=255, blank=True, default="")
    response_body = models.BinaryField(default=b"")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="core_idempotency_user_key")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
