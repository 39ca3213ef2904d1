"""Newsletter constants: issue states, audiences, delivery states, suppression reasons."""

from django.db import models


class IssueStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"


EDITABLE_STATUSES = frozenset({IssueStatus.DRAFT, IssueStatus.SCHEDULED})


class Audience(models.TextChoices):
    ALL = "all", "All members"
    PLANS = "plans", "Members on chosen plans"
    NONE = "none", "No email (Discord only)"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped (unsubscribed)"
    SUPPRESSED = "suppressed", "Suppressed (bounced or complained)"
    FAILED = "failed", "Failed"


class SuppressionReason(models.TextChoices):
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Marked as spam"
    REJECTED = "rejected", "Rejected by the provider"


class DiscordStatus(models.TextChoices):
    NONE = "", "Not posted"
    POSTED = "posted", "Posted"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"
