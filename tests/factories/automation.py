from __future__ import annotations

import factory

from automation.choices import ActionStatus, RunStatus, TriggerKind
from automation.models import Rule, RuleRun, RunAction, WebhookDelivery
from tests.factories.base import TenantFactory, owner


class RuleFactory(TenantFactory):
    """A schedule rule that notifies, stored as is: use automation.services.rule_create where the rule's alert,
    webhook token or next run time must follow."""

    class Meta:
        model = Rule

    name = factory.Sequence(lambda n: f"Rule {n}")
    trigger_kind = TriggerKind.SCHEDULE
    trigger = factory.LazyFunction(lambda: {"cron": "0 9 * * *"})
    actions = factory.LazyFunction(lambda: [{"kind": "notify", "message": "Good morning"}])
    secret = factory.Sequence(lambda n: f"secret-{n}")


class RuleRunFactory(TenantFactory):
    class Meta:
        model = RuleRun

    rule = factory.SubFactory(RuleFactory, user=owner())
    event_id = factory.Sequence(lambda n: f"event:{n}")
    status = RunStatus.SUCCEEDED
    conditions = factory.LazyFunction(list)


class RunActionFactory(TenantFactory):
    class Meta:
        model = RunAction

    run = factory.SubFactory(RuleRunFactory, user=owner())
    position = 0
    kind = "notify"
    status = ActionStatus.SUCCEEDED
    summary = "Notified: Good morning"


class WebhookDeliveryFactory(TenantFactory):
    class Meta:
        model = WebhookDelivery

    action = factory.SubFactory(RunActionFactory, user=owner(), kind="webhook_call", status=ActionStatus.QUEUED)
    url = "https://example.com/hook"
    body = "{}"
