"""Automation API shapes. What a trigger, condition or action may hold is checked by automation/services.py
(the same checks as the rule form); these check types and bounds."""

from __future__ import annotations

from rest_framework import serializers

from automation.choices import RuleStatus, RunStatus, TriggerKind
from automation.models import Rule, RuleRun, RunAction
from core.api import StrictCharField


class RuleInput(serializers.Serializer):
    name = StrictCharField(max_length=100)
    trigger_kind = serializers.ChoiceField(choices=TriggerKind.choices)
    trigger = serializers.DictField(
        help_text='By trigger kind: price {"symbol", "direction": above|below|cross, "price", "cooldown_minutes"}; '
        'percent_move {"symbol", "percent", "window_minutes"}; regime_change {"symbol", "regime"}; alert_fired '
        '{"alert_id"}; order_filled {"symbol"}; bot_blocked {"bot_id"}; schedule {"cron"}; webhook {"template"}.'
    )
    conditions = serializers.ListField(
        child=serializers.DictField(), required=False, default=list, max_length=5,
        help_text='Each {"kind": position_size|portfolio_value|time_window|regime, ...} (docs/automation.md).',
    )
    actions = serializers.ListField(
        child=serializers.DictField(), min_length=1, max_length=5,
        help_text='Each {"kind": notify|place_order|pause_bot|resume_bot|watchlist_add|discord_post|webhook_call, ...}.',
    )
    dry_run = serializers.BooleanField(required=False, default=False)
    max_runs_per_hour = serializers.IntegerField(min_value=1, max_value=120, required=False, default=10)
    daily_order_cap = serializers.DecimalField(
        max_digits=24, decimal_places=8, required=False, allow_null=True, default=None,
        help_text="Most order value the rule may place per UTC day; required when it places orders.",
    )


def rule_input_values(rule: Rule) -> dict:
    return {
        "name": rule.name, "trigger_kind": rule.trigger_kind, "trigger": rule.trigger, "conditions": rule.conditions,
        "actions": rule.actions, "dry_run": rule.dry_run, "max_runs_per_hour": rule.max_runs_per_hour,
        "daily_order_cap": rule.daily_order_cap,
    }


class RuleOutput(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=RuleStatus.choices)
    trigger_kind = serializers.ChoiceField(choices=TriggerKind.choices)
    trigger = serializers.DictField()
    conditions = serializers.ListField(child=serializers.DictField())
    actions = serializers.ListField(child=serializers.DictField())
    webhook_path = serializers.SerializerMethodField(help_text="Webhook rules: where to POST (keep it secret).")

    class Meta:
        model = Rule
        fields = ["id", "name", "status", "paused_reason", "trigger_kind", "trigger", "conditions", "actions",
                  "dry_run", "max_runs_per_hour", "daily_order_cap", "alert", "webhook_path", "secret", "next_run_at",
                  "consecutive_failures", "last_run_at", "created_at", "updated_at"]

    def get_webhook_path(self, rule: Rule) -> str | None:
        return f"/automation/hooks/{rule.webhook_token}/" if rule.webhook_token else None


class RunActionOutput(serializers.ModelSerializer):
    order = serializers.UUIDField(source="order_id", allow_null=True, read_only=True)

    class Meta:
        model = RunAction
        fields = ["position", "kind", "status", "summary", "detail", "order", "order_value", "created_at", "updated_at"]


class ConditionResultOutput(serializers.Serializer):
    kind = serializers.CharField()
    description = serializers.CharField()
    observed = serializers.CharField()
    passed = serializers.BooleanField()


class RunOutput(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=RunStatus.choices)
    event = serializers.DictField()
    conditions = ConditionResultOutput(many=True, allow_null=True)
    results = RunActionOutput(many=True, read_only=True)

    class Meta:
        model = RuleRun
        fields = ["id", "rule", "event_id", "event", "status", "detail", "dry_run", "conditions", "results",
                  "attempts", "order_value", "created_at", "claimed_at", "finished_at"]


class TestFireInput(serializers.Serializer):
    event = serializers.DictField(
        required=False, allow_null=True, default=None,
        help_text="The event to fire with (webhook rules: a body as the sender posts it). Empty: a sample.",
    )
