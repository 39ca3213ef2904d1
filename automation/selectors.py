"""Reads of automation rules and runs (the owner's; RLS is the backstop)."""

from __future__ import annotations

from django.db.models import QuerySet

from automation.models import Rule, RuleRun, RunAction
from core.errors import DomainError


def rule_list(*, user, status: str | None = None) -> QuerySet[Rule]:
    rules = Rule.objects.filter(user_id=user.pk).select_related("alert")
    if status:
        rules = rules.filter(status=status)
    return rules


def rule_get(*, user, rule_id) -> Rule:
    try:
        rule = rule_list(user=user).filter(pk=int(rule_id)).first()
    except (TypeError, ValueError):
        rule = None
    if rule is None:
        raise DomainError("No such rule.")
    return rule


def rule_count(*, user, trigger_kind: str | None = None) -> int:
    rules = Rule.objects.filter(user_id=user.pk)
    if trigger_kind:
        rules = rules.filter(trigger_kind=trigger_kind)
    return rules.count()


def run_list(*, user, rule: Rule | None = None) -> QuerySet[RuleRun]:
    runs = RuleRun.objects.filter(user_id=user.pk).select_related("rule")
    if rule is not None:
        runs = runs.filter(rule=rule)
    return runs


def run_get(*, user, rule: Rule, run_id) -> RuleRun:
    try:
        run = run_list(user=user, rule=rule).filter(pk=int(run_id)).first()
    except (TypeError, ValueError):
        run = None
    if run is None:
        raise DomainError("No such run.")
    return run


def run_results(*, run: RuleRun) -> QuerySet[RunAction]:
    return RunAction.objects.filter(run=run).select_related("order", "delivery").order_by("position")
