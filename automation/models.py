"""Automation rules and their runs. All tenant data (user_id, row-level security).

A rule runs at most once per trigger event: the unique constraint on (rule, event_id) of `RuleRun` is the
claim, whichever delivery, retry or worker gets there first. Each action's result is a `RunAction` row,
unique per (run, position), written in the transaction that acts, so a run resumed after a killed worker
skips what was done.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from automation.choices import ActionStatus, DeliveryStatus, RuleStatus, RunStatus, TriggerKind
from core.models import TenantModel
from core.money import Precision

MONEY: Precision = {"max_digits": 24, "decimal_places": 8}


class Rule(TenantModel):
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=RuleStatus.choices, default=RuleStatus.ACTIVE)
    paused_reason = models.CharField(max_length=300, blank=True)
    trigger_kind = models.CharField(max_length=32, choices=TriggerKind.choices)
    trigger = models.JSONField(default=dict, blank=True, help_text="The trigger's settings (by kind).")
    conditions = models.JSONField(default=list, blank=True, help_text="All must hold for the actions to run.")
    actions = models.JSONField(default=list, blank=True, help_text="Run in order.")
    dry_run = models.BooleanField(default=False, help_text="Record what would happen; act on nothing.")
    max_runs_per_hour = models.PositiveIntegerField(default=10)
    daily_order_cap = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Most order value this rule may place per UTC day (quote currency)."
    )
    alert = models.ForeignKey(
        "alerts.Alert", on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        help_text="Price and percent-move triggers: the alert the evaluator watches for this rule.",
    )
    webhook_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    secret = models.CharField(
        max_length=64, help_text="Verifies incoming webhooks (token or HMAC) and signs outgoing webhook calls."
    )
    next_run_at = models.DateTimeField(null=True, blank=True, help_text="Schedules: the next due time (UTC).")
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "status"]),
            # The event receivers' lookups and the schedule sweep.
            models.Index(fields=["trigger_kind", "status"]),
            models.Index(fields=["next_run_at"], condition=Q(trigger_kind="schedule"), name="automation_rule_due"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(trigger_kind="webhook") | Q(webhook_token__isnull=False),
                name="automation_webhook_rule_has_token",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RuleRun(TenantModel):
    """One trigger event for one rule: what triggered it, what the conditions saw, and what was done."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="runs")
    event_id = models.CharField(max_length=200, help_text="The trigger event; a rule runs once per event.")
    event = models.JSONField(default=dict, blank=True, help_text="The trigger event's data.")
    status = models.CharField(max_length=24, choices=RunStatus.choices, default=RunStatus.PENDING)
    detail = models.CharField(max_length=500, blank=True)
    dry_run = models.BooleanField(default=False)
    conditions = models.JSONField(
        null=True, blank=True, help_text="Each condition with the value it saw and whether it held."
    )
    attempts = models.PositiveIntegerField(default=0)
    order_value = models.DecimalField(**MONEY, default=0, help_text="Value of the orders this run placed.")
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["rule", "-created_at"]), models.Index(fields=["user", "-created_at"]),
            # The drains' and the sweep's search for runs not carried out yet.
            models.Index(fields=["id"], condition=Q(status="pending"), name="automation_run_pending"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["rule", "event_id"], name="automation_run_once_per_event"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.event_id}"


class RunAction(TenantModel):
    """The result of one action of a run (its position in the rule's list)."""

    run = models.ForeignKey(RuleRun, on_delete=models.CASCADE, related_name="results")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=ActionStatus.choices)
    summary = models.CharField(max_length=500, help_text="What was (or would be) done.")
    detail = models.TextField(blank=True, help_text="The outcome, or why it failed.")
    order = models.ForeignKey("trading.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    order_value = models.DecimalField(**MONEY, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [
            models.UniqueConstraint(fields=["run", "position"], name="automation_action_once_per_run"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.position} {self.status}"


class WebhookDelivery(TenantModel):
    """An outgoing webhook call of a run's action, retried with backoff by Celery."""

    action = models.OneToOneField(RunAction, on_delete=models.CASCADE, related_name="delivery")
    url = models.URLField(max_length=500)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.url} {self.status}"
