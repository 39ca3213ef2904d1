"""Newsletter issues, their deliveries, members' preferences, suppressed addresses and the public archive.

- Issue, Delivery: the author's tenant data (a delivery row belongs to the issue's author, so the author's
  stats page counts them under row-level security). Exactly one delivery per (issue, recipient): the
  unique constraint is what makes a re-run send skip whoever already has a row in a final state.
- Preference: a member's own choice to receive newsletters (tenant data of the member).
- Suppression: addresses the email provider reported as bounced or complaining; system-only (written by
  the tracking webhook, read by the send worker, both in the system context).
- ArchivedIssue: the public copy of a sent issue; shared reference data written only by the send worker.
  It copies what the archive shows, so anonymous readers never touch the author's tenant rows.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from core.models import TenantModel
from newsletter.choices import Audience, DeliveryState, DiscordStatus, IssueStatus, SuppressionReason


class Issue(TenantModel):
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown with data blocks (docs/newsletter.md).")
    audience = models.CharField(max_length=16, choices=Audience.choices, default=Audience.ALL)
    audience_plans = ArrayField(models.CharField(max_length=16), default=list, blank=True)
    post_to_discord = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=IssueStatus.choices, default=IssueStatus.DRAFT)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    send_started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    problem = models.TextField(blank=True, help_text="Why a scheduled send did not start.")
    # Frozen when sending starts, so every recipient and the archive get the same figures.
    html_body = models.TextField(blank=True)
    email_html = models.TextField(blank=True, help_text="The inlined email, with the unsubscribe placeholder.")
    text_body = models.TextField(blank=True)
    inline_images = models.JSONField(default=dict, blank=True, help_text="Content-ID -> base64 PNG.")
    recipients_ready = models.BooleanField(default=False)
    recipient_count = models.PositiveIntegerField(default=0)
    discord_status = models.CharField(max_length=16, choices=DiscordStatus.choices, default="", blank=True)
    discord_detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["status", "scheduled_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="scheduled") | models.Q(scheduled_at__isnull=False),
                name="newsletter_scheduled_issue_has_time",
            )
        ]

    def __str__(self) -> str:
        return self.title


class Delivery(TenantModel):
    """One recipient of one issue. `user` is the issue's author; `recipient` the member written to."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="deliveries")
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    email = models.EmailField()
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    claim = models.BigIntegerField(null=True, blank=True, help_text="The worker's claim (an advisory lock key).")
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["issue", "state", "id"])]
        constraints = [
            models.UniqueConstraint(fields=["issue", "recipient"], name="newsletter_one_delivery_per_recipient")
        ]

    def __str__(self) -> str:
        return f"{self.issue_id} -> {self.email} ({self.state})"


class Preference(TenantModel):
    """A member's newsletter choice; no row means subscribed."""

    subscribed = models.BooleanField(default=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user"], name="newsletter_one_preference_per_user")]

    def __str__(self) -> str:
        return f"{self.user_id}: {'subscribed' if self.subscribed else 'unsubscribed'}"


class Suppression(models.Model):
    email = models.EmailField(unique=True, help_text="Lower-cased.")
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    detail = models.CharField(max_length=300, blank=True)
    event_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


class ArchivedIssue(models.Model):
    # The issue's id, not a foreign key: the public copy is reference data the runtime role only reads, so
    # no tenant write (deleting a draft, an account) may cascade into it.
    issue_id = models.BigIntegerField(unique=True)
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80)
    author_name = models.CharField(max_length=120)
    summary = models.CharField(max_length=300)
    html_body = models.TextField()
    text_body = models.TextField()
    sent_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return self.title
