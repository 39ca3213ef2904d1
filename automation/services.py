"""Writes of automation rules and their runs.

Rules: create, update, pause, resume, delete (price and percent-move triggers own an alert, kept in step
through alerts' services). Runs, exactly once per trigger event:

1. `rule_event_record` claims the event: one `RuleRun` per (rule, event_id) under a unique constraint, in
   the transaction of whoever saw the event (a receiver, the schedule sweep, the webhook endpoint). A
   duplicate delivery finds the row and records nothing. A paused or rate-limited rule records a skipped
   run. After commit a drain is woken (runs done whole, below) or the `automation.run_execute` task queued.
2. A run whose actions only write rows of this database (or a dry run) is carried out whole in one
   transaction, claim to close, by a drain (`runs_drain`, below): all or nothing, so a killed worker leaves
   it pending and it is done again from the start. The others go step by step:
   `run_execute` (the task, any number of times) claims the run (pending -> running, committed), checks
   the conditions once (their values are stored with the run), then each action in its own transaction
   together with its `RunAction` row, so a worker killed at any point leaves each action either done and
   recorded or not done at all (a database error in an action, such as a lock wait past lock_timeout,
   records nothing: the task is retried). A redelivered task resumes after the last recorded action. Orders carry a
   client order id derived from (run, action), so even a replay of an action cannot place a second order.
   Calls that leave the database (a Discord post) are recorded as `sending` first and never repeated after
   a crash; outgoing webhooks are their own retried task with a delivery row.
3. The run finishes: succeeded, failed (an action failed), or conditions not met. AUTOMATION_FAILURES_TO_PAUSE
   failures in a row pause the rule and tell its owner.
"""

from __future__ import annotations

import json
import secrets
import time as time_module
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import structlog
from croniter import CroniterBadCronError, croniter  # type: ignore[import-untyped]
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Sum
from django.db.models.functions import Mod
from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from alerts.choices import WINDOW_LABELS, AlertKind
from alerts.selectors import alert_get
from alerts.services import alert_create, alert_delete, alert_pause, alert_resume, alert_update
from automation.actions import (
    EXTERNAL_ACTIONS,
    Outcome,
    action_clean,
    order_act,
    order_plan,
    run_order_id,
    simple_act,
)
from automation.choices import (
    ALERT_BACKED_TRIGGERS,
    COUNTED_RUN_STATUSES,
    FINISHED_RUN_STATUSES,
    NOTIFICATION_KIND,
    NOTIFICATION_KIND_PAUSED,
    ActionKind,
    ActionStatus,
    DeliveryStatus,
    PriceDirection,
    RuleStatus,
    RunStatus,
    TriggerKind,
)
from automation.conditions import condition_clean, condition_evaluate
from automation.models import Rule, RuleRun, RunAction, WebhookDelivery
from automation.outgoing import WebhookFailed, WebhookRefused, signature_matches, webhook_send
from automation.templating import render, template_extract, template_validate
from billing.choices import Feature
from billing.services import entitlement_check
from core.audit import audit_record
from core.batch import TenantPipeline, instances_from_row, model_select
from core.channel_posts import ChannelPostFailed, channel_post
from core.errors import DomainError
from core.jobs import task_enqueue
from core.money import Precision, decimal_parse, plain
from core.notifications import notification_build, notify
from core.rls import system_context, tenant
from core.unit_of_work import UnitOfWork
from marketdata.selectors import instrument_get
from trading.bots.selectors import bot_get
from trading.choices import Regime

logger = structlog.get_logger(__name__)

MAX_CONDITIONS = 5
MAX_ACTIONS = 5
MAX_RUNS_PER_HOUR = 120
TEST_EVENT_PREFIX = "test:"
MONEY: Precision = {"max_digits": 24, "decimal_places": 8}
DIRECTION_KIND = {
    PriceDirection.ABOVE: AlertKind.PRICE_ABOVE,
    PriceDirection.BELOW: AlertKind.PRICE_BELOW,
    PriceDirection.CROSS: AlertKind.PRICE_CROSS,
}


class WebhookRejected(DomainError):
    """An incoming webhook delivery refused: `status` is the HTTP answer (400, 403, 404, 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def failures_to_pause() -> int:
    return int(getattr(settings, "AUTOMATION_FAILURES_TO_PAUSE", 3))


def webhook_window_seconds() -> int:
    return int(getattr(settings, "AUTOMATION_WEBHOOK_WINDOW_SECONDS", 300))


# --- Validation -----------------------------------------------------------------------------------------


def _cron_clean(expression: str) -> str:
    expression = " ".join((expression or "").split())
    if not expression:
        raise DomainError("Enter a cron expression, e.g. 0 9 * * 1-5 (09:00 on weekdays).", field="trigger_cron")
    if len(expression.split()) != 5:
        raise DomainError("A cron expression has five fields: minute hour day month weekday.", field="trigger_cron")
    try:
        croniter(expression)
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise DomainError(f"That cron expression is not valid ({exc}).", field="trigger_cron") from None
    return expression


def schedule_next(*, expression: str, time_zone: str, after: datetime) -> datetime:
    """The next time the cron expression matches after `after`, read in `time_zone`, as aware UTC."""
    local = after.astimezone(ZoneInfo(time_zone or "UTC"))
    following = croniter(expression, local).get_next(datetime)
    return following.astimezone(ZoneInfo("UTC"))


def _trigger_clean(*, user, kind: str, raw: dict) -> dict:
    if kind not in TriggerKind.values:
        raise DomainError("Choose what triggers the rule.", field="trigger_kind")
    if kind == TriggerKind.PRICE:
        direction = raw.get("direction")
        if direction not in PriceDirection.values:
            raise DomainError("Choose rises above, falls below or crosses.", field="trigger_direction")
        price = decimal_parse(raw.get("price"), field="trigger_price", label="a price", **MONEY)
        if price <= 0:
            raise DomainError("The price must be greater than zero.", field="trigger_price")
        return {"symbol": instrument_get(symbol=str(raw.get("symbol") or "")).symbol, "direction": direction,
                "price": plain(price), "cooldown_minutes": _cooldown(raw)}
    if kind == TriggerKind.PERCENT_MOVE:
        percent = decimal_parse(raw.get("percent"), field="trigger_percent", label="a percent", **MONEY)
        if percent == 0 or percent <= -100 or percent > 1000:
            raise DomainError("Enter a move other than 0, above -100 and at most 1000 (e.g. -5).", field="trigger_percent")
        try:
            window = int(raw.get("window_minutes") or 0)
        except (TypeError, ValueError):
            window = 0
        if window not in WINDOW_LABELS:
            raise DomainError("Choose a window for the move.", field="trigger_window_minutes")
        return {"symbol": instrument_get(symbol=raw.get("symbol") or "").symbol, "percent": plain(percent),
                "window_minutes": window, "cooldown_minutes": _cooldown(raw)}
    if kind == TriggerKind.REGIME_CHANGE:
        to = raw.get("regime") or ""
        if to and to not in Regime.values:
            raise DomainError("Choose a regime, or any change.", field="trigger_regime")
        return {"symbol": instrument_get(symbol=raw.get("symbol") or "").symbol, "regime": to}
    if kind == TriggerKind.ALERT_FIRED:
        alert_id = raw.get("alert_id")
        if alert_id in (None, ""):
            return {"alert_id": None}
        try:
            return {"alert_id": alert_get(user=user, alert_id=int(str(alert_id))).pk}
        except (DomainError, TypeError, ValueError):
            raise DomainError("Choose one of your alerts, or any alert.", field="trigger_alert") from None
    if kind == TriggerKind.ORDER_FILLED:
        symbol = raw.get("symbol") or ""
        return {"symbol": instrument_get(symbol=symbol).symbol if symbol else ""}
    if kind == TriggerKind.BOT_BLOCKED:
        bot_id = raw.get("bot_id")
        if bot_id in (None, ""):
            return {"bot_id": None}
        try:
            return {"bot_id": bot_get(user=user, pk=bot_id).pk}
        except Http404:
            raise DomainError("Choose one of your bots, or any bot.", field="trigger_bot") from None
    if kind == TriggerKind.SCHEDULE:
        return {"cron": _cron_clean(str(raw.get("cron") or ""))}
    template = raw.get("template")
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except ValueError as exc:
            raise DomainError(f"The template is not valid JSON ({exc}).", field="webhook_template") from None
    return {"template": template_validate(template)}


def _cooldown(raw: dict) -> int:
    try:
        value = raw.get("cooldown_minutes")
        minutes = int(str(value)) if value not in (None, "") else 15
    except (TypeError, ValueError):
        raise DomainError("Enter the minutes between triggers.", field="trigger_cooldown_minutes") from None
    if minutes < 0 or minutes > 30 * 24 * 60:
        raise DomainError("The cooldown is between 0 minutes and 30 days.", field="trigger_cooldown_minutes")
    return minutes


def _rule_clean(
    *, user, name: str, trigger_kind: str, trigger: dict, conditions: list, actions: list,
    max_runs_per_hour, daily_order_cap,
) -> dict:
    name = (name or "").strip()
    if not name:
        raise DomainError("Give the rule a name.", field="name")
    if len(name) > 100:
        raise DomainError("Keep the name under 100 characters.", field="name")
    if len(conditions) > MAX_CONDITIONS:
        raise DomainError(f"A rule has at most {MAX_CONDITIONS} conditions.", field="conditions")
    if not actions:
        raise DomainError("Add at least one action.", field="actions")
    if len(actions) > MAX_ACTIONS:
        raise DomainError(f"A rule has at most {MAX_ACTIONS} actions.", field="actions")
    try:
        runs = int(str(max_runs_per_hour))
    except (TypeError, ValueError):
        raise DomainError("Enter how many runs an hour are allowed.", field="max_runs_per_hour") from None
    if runs < 1 or runs > MAX_RUNS_PER_HOUR:
        raise DomainError(f"Allow between 1 and {MAX_RUNS_PER_HOUR} runs an hour.", field="max_runs_per_hour")
    cap = None
    if daily_order_cap not in (None, ""):
        cap = decimal_parse(daily_order_cap, field="daily_order_cap", label="an amount", **MONEY)
        if cap <= 0:
            raise DomainError("The daily order cap must be greater than zero (or empty).", field="daily_order_cap")
    cleaned_actions = [
        action_clean(user=user, raw=raw, prefix=f"actions-{i}") for i, raw in enumerate(actions)
    ]
    if cap is None and any(a["kind"] == ActionKind.PLACE_ORDER for a in cleaned_actions):
        raise DomainError("A rule that places orders needs a daily order cap.", field="daily_order_cap")
    return {
        "name": name,
        "trigger_kind": trigger_kind,
        "trigger": _trigger_clean(user=user, kind=trigger_kind, raw=trigger or {}),
        "conditions": [
            condition_clean(user=user, raw=raw, prefix=f"conditions-{i}") for i, raw in enumerate(conditions)
        ],
        "actions": cleaned_actions,
        "max_runs_per_hour": runs,
        "daily_order_cap": cap,
    }


# --- Rules ----------------------------------------------------------------------------------------------


def _entitlements(*, user, webhook: bool, new_rule: bool) -> None:
    if new_rule:
        entitlement_check(user=user, feature=Feature.AUTOMATION_RULES)
    if webhook:
        entitlement_check(user=user, feature=Feature.WEBHOOK_TRIGGERS)


def _alert_fields(rule: Rule) -> dict:
    trigger = rule.trigger
    common = {"symbol": trigger["symbol"], "repeat": True,
              "cooldown": timedelta(minutes=trigger.get("cooldown_minutes", 15)),
              "note": f"Trigger of automation rule: {rule.name}"[:200]}
    if rule.trigger_kind == TriggerKind.PRICE:
        return {**common, "kind": DIRECTION_KIND[PriceDirection(trigger["direction"])], "threshold": trigger["price"]}
    return {**common, "kind": AlertKind.PERCENT_MOVE, "threshold": trigger["percent"],
            "window_minutes": trigger["window_minutes"]}


def _alert_sync(*, user, rule: Rule) -> None:
    """Keep the rule's own alert (price and percent-move triggers) as the trigger says, through alerts' services."""
    alert = rule.alert
    if rule.trigger_kind not in ALERT_BACKED_TRIGGERS:
        if alert is not None:
            alert_delete(user=user, alert=alert)
            rule.alert = None
        return
    try:
        if alert is None:
            rule.alert = alert_create(user=user, **_alert_fields(rule))
        else:
            alert_update(user=user, alert=alert, **_alert_fields(rule))
            if rule.status == RuleStatus.PAUSED:
                alert_pause(user=user, alert=alert)
    except DomainError as exc:
        field = {"threshold": "trigger_price" if rule.trigger_kind == TriggerKind.PRICE else "trigger_percent",
                 "symbol": "trigger_symbol"}.get(exc.field or "", exc.field)
        raise DomainError(str(exc), field=field) from None


@transaction.atomic
def rule_create(
    *, user, name: str, trigger_kind: str, trigger: dict, conditions: list | None = None, actions: list,
    dry_run: bool = False, max_runs_per_hour: int = 10, daily_order_cap=None,
) -> Rule:
    with tenant(user.pk):
        fields = _rule_clean(
            user=user, name=name, trigger_kind=trigger_kind, trigger=trigger, conditions=conditions or [],
            actions=actions, max_runs_per_hour=max_runs_per_hour, daily_order_cap=daily_order_cap,
        )
        _entitlements(user=user, webhook=trigger_kind == TriggerKind.WEBHOOK, new_rule=True)
        rule = Rule(user=user, dry_run=bool(dry_run), secret=secrets.token_urlsafe(32), **fields)
        if trigger_kind == TriggerKind.WEBHOOK:
            rule.webhook_token = secrets.token_urlsafe(24)
        if trigger_kind == TriggerKind.SCHEDULE:
            rule.next_run_at = schedule_next(expression=fields["trigger"]["cron"], time_zone=user.time_zone,
                                             after=timezone.now())
        _alert_sync(user=user, rule=rule)
        rule.save()
        audit_record(action="automation.rule_created", user=user, actor=user, target=rule, after=rule_summary(rule))
    return rule


@transaction.atomic
def rule_update(
    *, user, rule: Rule, name: str, trigger_kind: str, trigger: dict, conditions: list | None = None,
    actions: list, dry_run: bool = False, max_runs_per_hour: int = 10, daily_order_cap=None,
) -> Rule:
    with tenant(user.pk):
        rule = _locked(user=user, rule=rule)
        before = rule_summary(rule)
        fields = _rule_clean(
            user=user, name=name, trigger_kind=trigger_kind, trigger=trigger, conditions=conditions or [],
            actions=actions, max_runs_per_hour=max_runs_per_hour, daily_order_cap=daily_order_cap,
        )
        becomes_webhook = trigger_kind == TriggerKind.WEBHOOK and rule.trigger_kind != TriggerKind.WEBHOOK
        _entitlements(user=user, webhook=becomes_webhook, new_rule=False)
        for key, value in fields.items():
            setattr(rule, key, value)
        rule.dry_run = bool(dry_run)
        if trigger_kind == TriggerKind.WEBHOOK and not rule.webhook_token:
            rule.webhook_token = secrets.token_urlsafe(24)
        elif trigger_kind != TriggerKind.WEBHOOK:
            rule.webhook_token = None
        rule.next_run_at = (
            schedule_next(expression=fields["trigger"]["cron"], time_zone=user.time_zone, after=timezone.now())
            if trigger_kind == TriggerKind.SCHEDULE else None
        )
        _alert_sync(user=user, rule=rule)
        rule.save()
        audit_record(action="automation.rule_updated", user=user, actor=user, target=rule, before=before,
                     after=rule_summary(rule))
    return rule


def rule_summary(rule: Rule) -> dict:
    return {"name": rule.name, "status": rule.status, "trigger_kind": rule.trigger_kind, "trigger": rule.trigger,
            "conditions": rule.conditions, "actions": rule.actions, "dry_run": rule.dry_run,
            "max_runs_per_hour": rule.max_runs_per_hour,
            "daily_order_cap": plain(rule.daily_order_cap) if rule.daily_order_cap is not None else None}


def _locked(*, user, rule: Rule) -> Rule:
    locked = Rule.objects.select_for_update(of=("self",)).select_related("alert").filter(pk=rule.pk, user=user).first()
    if locked is None:
        raise DomainError("No such rule.")
    return locked


@transaction.atomic
def rule_pause(*, user, rule: Rule, reason: str = "") -> Rule:
    with tenant(user.pk):
        rule = _locked(user=user, rule=rule)
        if rule.status == RuleStatus.PAUSED:
            return rule
        rule.status, rule.paused_reason = RuleStatus.PAUSED, reason[:300]
        rule.save(update_fields=["status", "paused_reason", "updated_at"])
        if rule.alert is not None:
            alert_pause(user=user, alert=rule.alert)
        audit_record(action="automation.rule_paused", user=user, actor=user, target=rule,
                     before={"status": RuleStatus.ACTIVE}, after={"status": RuleStatus.PAUSED, "reason": reason})
    return rule


@transaction.atomic
def rule_resume(*, user, rule: Rule) -> Rule:
    with tenant(user.pk):
        rule = _locked(user=user, rule=rule)
        if rule.status == RuleStatus.ACTIVE:
            return rule
        rule.status, rule.paused_reason, rule.consecutive_failures = RuleStatus.ACTIVE, "", 0
        if rule.trigger_kind == TriggerKind.SCHEDULE:
            rule.next_run_at = schedule_next(expression=rule.trigger["cron"], time_zone=user.time_zone,
                                             after=timezone.now())
        rule.save(update_fields=["status", "paused_reason", "consecutive_failures", "next_run_at", "updated_at"])
        if rule.alert is not None:
            alert_resume(user=user, alert=rule.alert)
        audit_record(action="automation.rule_resumed", user=user, actor=user, target=rule,
                     before={"status": RuleStatus.PAUSED}, after={"status": RuleStatus.ACTIVE})
    return rule


@transaction.atomic
def rule_delete(*, user, rule: Rule) -> None:
    with tenant(user.pk):
        rule = _locked(user=user, rule=rule)
        before = rule_summary(rule)
        if rule.alert is not None:
            alert_delete(user=user, alert=rule.alert)
        rule.delete()
        audit_record(action="automation.rule_deleted", user=user, actor=user, before=before)


# --- Trigger events -------------------------------------------------------------------------------------


def _runs_last_hour_query(rule_id: int, now: datetime):
    """Runs of the last hour that count against the limit: not skipped ones, not "test it" fires."""
    return (
        RuleRun.objects.filter(rule_id=rule_id, created_at__gte=now - timedelta(hours=1), status__in=COUNTED_RUN_STATUSES)
        .exclude(event_id__startswith=TEST_EVENT_PREFIX)
    )


def _runs_last_hour(rule: Rule, now: datetime) -> int:
    return _runs_last_hour_query(rule.pk, now).count()


def rule_event_record(
    *, rule_id: int, user_id: int, event_id: str, event: dict, dry_run: bool = False, execute: bool = True
) -> RuleRun | None:
    """Claim one trigger event for one rule; None when it was already received (a duplicate delivery).

    The run is queued for execution after commit (`execute=False`: the caller runs it itself)."""
    with tenant(user_id):
        rule = _rule_locked(rule_id=rule_id)
        if rule is None:
            return None
        return _run_record(rule=rule, event_id=event_id, event=event, dry_run=dry_run, execute=execute)


def _rule_locked(*, rule_id: int) -> Rule | None:
    """The rule's row, locked: the runs of one rule are recorded (and counted against its limit) one at a time."""
    return Rule.objects.select_for_update(of=("self",)).filter(pk=rule_id).first()


def _run_record(*, rule: Rule, event_id: str, event: dict, dry_run: bool, execute: bool) -> RuleRun | None:
    """`rule_event_record` for a rule the caller has locked, inside its tenant block."""
    now = timezone.now()
    run = RuleRun(user_id=rule.user_id, rule=rule, event_id=event_id[:200], event=_jsonable(event),
                  dry_run=dry_run or rule.dry_run)
    try:
        with transaction.atomic():
            run.save(force_insert=True)
    except IntegrityError:
        return None
    skip = ""
    if rule.status != RuleStatus.ACTIVE and not dry_run:
        skip = "The rule is paused."
    elif not dry_run and _runs_last_hour(rule, now) > rule.max_runs_per_hour:
        skip = f"Rate limit: the rule already ran {rule.max_runs_per_hour} times in the last hour."
    if skip:
        run.status, run.detail, run.finished_at = RunStatus.SKIPPED, skip, now
        run.save(update_fields=["status", "detail", "finished_at"])
        return run
    if execute:
        queued = [(run.pk, rule.user_id, rule.actions, run.dry_run)]
        transaction.on_commit(lambda: runs_queue(queued))
    return run


# --- Draining pending runs ------------------------------------------------------------------------------
#
# A run that is carried out whole in one transaction (see _in_one_transaction) does not need a task of its
# own: it rings its slot's doorbell (a Redis key, set if absent), and only the ring that sets the key queues
# `automation.runs_drain` for the slot. The drain removes the key first, then carries out the slot's pending
# runs in id order until none is left, so a run committed before the removal is found by this drain, and one
# committed after it rings again. Under load one task carries out many runs (the per-task cost of Celery is
# paid once); a killed drain is delivered again (acks_late) and finds its runs still pending (all or nothing);
# a lost message is made up for by the doorbell's expiry and the minute's sweep (`runs_sweep`).


def drain_slots() -> int:
    return max(1, int(getattr(settings, "AUTOMATION_DRAIN_SLOTS", 4)))


DOORBELL_SECONDS = 30
DRAIN_BATCH = 100
DRAIN_MAX_SECONDS = 20.0


def _doorbell(slot: int) -> str:
    return f"automation:drain:{slot}"


def _whole(*, dry_run: bool, actions: list[dict]) -> bool:
    return dry_run or all(action["kind"] in IN_DATABASE_ACTIONS for action in actions)


def runs_queue(runs: Sequence[tuple[int, int, list[dict], bool]]) -> None:
    """After the commit that recorded runs (id, owner, the rule's actions, dry run): a whole run rings its
    slot's doorbell (once per slot for the lot), any other gets a task of its own."""
    slots = drain_slots()
    whole: dict[int, list[tuple[int, int]]] = {}
    for run_id, user_id, actions, dry_run in runs:
        if _whole(dry_run=dry_run, actions=actions):
            whole.setdefault(run_id % slots, []).append((run_id, user_id))
        else:
            task_enqueue("automation.run_execute", args=[run_id, user_id])
    for slot, slot_runs in whole.items():
        runs_wake(slot=slot, runs=slot_runs)


def runs_wake(*, slot: int, runs: Sequence[tuple[int, int]]) -> None:
    """After the commit that recorded whole runs (id, owner) of one slot: make sure a drain of it is queued."""
    try:
        rang = cache.add(_doorbell(slot), 1, timeout=DOORBELL_SECONDS)
    except Exception:  # noqa: BLE001 - the cache is down: each run gets a task of its own, as any other
        logger.warning("automation.doorbell_unavailable", slot=slot, runs=len(runs), exc_info=True)
        for run_id, user_id in runs:
            task_enqueue("automation.run_execute", args=[run_id, user_id])
        return
    if rang:
        task_enqueue("automation.runs_drain", args=[slot])


def runs_drain(*, slot: int, batch: int = DRAIN_BATCH, max_seconds: float = DRAIN_MAX_SECONDS) -> int:
    """Carry out the pending runs of a doorbell slot (the `automation.runs_drain` task); returns how many
    this call finished. Several drains of one slot at once skip each other's runs (SKIP LOCKED). A run that
    cannot be done whole (its rule was changed to place orders since) gets a task of its own."""
    slots = drain_slots()
    try:
        cache.delete(_doorbell(slot))
    except Exception:  # noqa: BLE001 - the cache is down: the key expires by itself; the runs are done all the same
        logger.warning("automation.doorbell_unavailable", slot=slot, exc_info=True)
    began, done, after = time_module.monotonic(), 0, 0
    while True:
        with system_context(reason="automation: the pending runs of a drain slot"):
            pending = list(
                RuleRun.objects.filter(status=RunStatus.PENDING, pk__gt=after)
                .alias(slot=Mod("id", slots)).filter(slot=slot)
                .order_by("pk").values_list("pk", "user_id")[:batch]
            )
        if not pending:
            return done
        finished, rest = _runs_together(pending)
        done += finished
        for run_id, user_id in rest:
            try:
                outcome = run_execute(run_id=run_id, user_id=user_id, drained=True)
            except Exception:  # noqa: BLE001 - one run's failure must not hold up the slot's others
                # Rolled back whole (still pending): its own task retries it (a lock wait, a lost connection)
                # or fails alone, and the sweep brings it back here no sooner than a minute.
                logger.exception("automation.drain_run_failed", run_id=run_id)
                outcome = _HANDED_OFF
            if outcome is _HANDED_OFF:
                task_enqueue("automation.run_execute", args=[run_id, user_id])
            elif outcome is not _PASSED:
                done += 1
        after = pending[-1][0]
        if time_module.monotonic() - began > max_seconds:
            # Long enough for one task: the rest goes to a fresh one (others' tasks get a turn).
            if cache.add(_doorbell(slot), 1, timeout=DOORBELL_SECONDS):
                task_enqueue("automation.runs_drain", args=[slot])
            return done


def _runs_together(pending: list[tuple[int, int]]) -> tuple[int, list[tuple[int, int]]]:
    """Carry out, in one transaction and a few round trips, the drained runs whose every action notifies
    and whose rule has no conditions (what an alert storm or a TradingView flood is made of); returns how
    many it finished and the runs left for `run_execute` one by one (the others, and all of them when the
    batch fails). The same rows as `_run_at_once` writes for each: the run claimed and closed as succeeded,
    a result row and a notification per action (its deliveries dispatched after the commit), the rule's
    last run time and failure count. Locks as `run_execute` takes them: each run (SKIP LOCKED: a run held
    by another worker is theirs), then the rules, waiting, in id order."""
    try:
        return _runs_together_write(pending)
    except (OperationalError, InterfaceError):
        raise  # the database is unreachable: the drain's task is retried
    except Exception:  # noqa: BLE001 - rolled back whole: every run of the chunk goes the single way
        logger.exception("automation.drain_batch_failed", runs=len(pending))
        return 0, pending


def _runs_together_write(pending: list[tuple[int, int]]) -> tuple[int, list[tuple[int, int]]]:
    now = timezone.now()
    rest: list[tuple[int, int]] = []
    with transaction.atomic():
        pipe = TenantPipeline()
        found = {
            run_id: (user_id, pipe.execute(
                f'SELECT {model_select(RuleRun, "r")}, u.email FROM automation_rulerun r '  # noqa: S608 - model columns
                "JOIN accounts_user u ON u.id = r.user_id WHERE r.id = %s FOR UPDATE OF r SKIP LOCKED",
                [run_id], user_id=user_id,
            ))
            for run_id, user_id in pending
        }
        choices = {
            user_id: pipe.execute(
                "SELECT channel, enabled FROM core_notificationpreference WHERE user_id = %s AND kind = %s",
                [user_id, NOTIFICATION_KIND], user_id=user_id,
            )
            for user_id in {user_id for _, user_id in pending}
        }
        pipe.sync()
        runs: list[tuple[RuleRun, str]] = []
        for run_id, (user_id, result) in found.items():
            rows = result.rows()
            if not rows:
                continue  # another worker holds it, or it is gone: not ours (as run_execute(drained=True))
            run, (email,) = instances_from_row(rows[0], RuleRun)
            if run.status != RunStatus.PENDING:
                continue
            if run.attempts or run.conditions is not None or run.dry_run:
                rest.append((run_id, user_id))
            else:
                runs.append((run, email))
        owners = dict(sorted({(run.rule_id, run.user_id) for run, _ in runs}))
        locked = {rule_id: pipe.select(Rule, "id = %s FOR UPDATE", [rule_id], user_id=user_id)
                  for rule_id, user_id in owners.items()}
        pipe.close()  # acting as nobody while deciding: a channel's `available` check sees no one's rows
        rules = {rule_id: pending_rule.instance() for rule_id, pending_rule in locked.items()}
        preferences = {user_id: dict(result.rows()) for user_id, result in choices.items()}
        uow, finished, closed_rules = UnitOfWork(pipe), 0, set()
        for run, email in runs:
            rule = rules[run.rule_id]
            if rule is None:
                continue  # deleted with its runs once this transaction ends
            run.rule, run.user = rule, get_user_model()(pk=run.user_id, email=email)
            if rule.conditions or any(action["kind"] != ActionKind.NOTIFY for action in rule.actions):
                rest.append((run.pk, run.user_id))
                continue
            try:
                notices = [
                    notification_build(
                        user=run.user, kind=NOTIFICATION_KIND, message=render(action["message"], _variables(run)),
                        link=_run_link(run), dedup_key=f"automation-run:{run.pk}:{position}",
                        choices=preferences.get(run.user_id, {}),
                    )
                    for position, action in enumerate(rule.actions)
                ]
            except Exception:  # noqa: BLE001 - what the single path records as this action's failure
                rest.append((run.pk, run.user_id))
                continue
            for position, (notification, deliveries) in enumerate(notices):
                uow.notify(notification, deliveries)
                uow.insert(RunAction(user_id=run.user_id, run=run, position=position, kind=ActionKind.NOTIFY,
                                     status=ActionStatus.SUCCEEDED, summary=f"Notified: {notification.message}"[:500]),
                           user_id=run.user_id)
            run.status, run.attempts, run.claimed_at, run.conditions = RunStatus.SUCCEEDED, 1, now, []
            run.detail, run.finished_at = "", now
            uow.update(run, ["status", "attempts", "claimed_at", "conditions", "detail", "finished_at"],
                       user_id=run.user_id)
            rule.last_run_at, rule.consecutive_failures = now, 0
            closed_rules.add(rule.pk)
            finished += 1
        for rule_id in sorted(closed_rules):
            uow.update(rules[rule_id], ["last_run_at", "consecutive_failures", "updated_at"], user_id=owners[rule_id])
        uow.flush()
    return finished, rest


def runs_sweep() -> int:
    """Every minute (beat): ring the doorbell of every slot that has a pending whole run older than a minute
    (its drain's message was lost). Returns the slots rung."""
    before = timezone.now() - timedelta(minutes=1)
    slots = drain_slots()
    with system_context(reason="automation: slots with runs left pending"):
        stale = set(
            RuleRun.objects.filter(status=RunStatus.PENDING, created_at__lt=before)
            .annotate(slot=Mod("id", slots)).order_by().values_list("slot", flat=True).distinct()
        )
    for slot in stale:
        cache.delete(_doorbell(slot))
        if cache.add(_doorbell(slot), 1, timeout=DOORBELL_SECONDS):
            task_enqueue("automation.runs_drain", args=[slot])
    return len(stale)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def rules_for_event(*, user_id: int, kinds: list[str]) -> list[Rule]:
    with tenant(user_id):
        return list(Rule.objects.filter(user_id=user_id, status=RuleStatus.ACTIVE, trigger_kind__in=kinds))


def rule_owners(*, kind: str, user_ids: set[int]) -> set[int]:
    """Which of `user_ids` have an active rule triggered by `kind` (one cross-tenant query, ids only)."""
    if not user_ids:
        return set()
    with system_context(reason=f"automation: which of {len(user_ids)} traders have {kind} rules"):
        return set(
            Rule.objects.filter(trigger_kind=kind, status=RuleStatus.ACTIVE, user_id__in=user_ids)
            .order_by()  # the model's ordering would join the DISTINCT: a row per rule, sorted
            .values_list("user_id", flat=True).distinct()
        )


def market_rules(*, kind: str, symbol: str) -> list[tuple[int, int, dict]]:
    """(rule id, owner, trigger) of the active rules of every trader triggered by a market-wide event on `symbol`."""
    with system_context(reason=f"automation: {kind} on {symbol} concerns every trader's rules"):
        return list(
            Rule.objects.filter(trigger_kind=kind, status=RuleStatus.ACTIVE, trigger__symbol=symbol)
            .values_list("pk", "user_id", "trigger")
        )


def schedules_due(*, now: datetime | None = None) -> int:
    """Record a run of every schedule rule whose time has come, and move it to its next time. Beat runs this
    every minute; a rule due several times while the beat was down runs once, for its latest due time."""
    now = now or timezone.now()
    with system_context(reason="automation: schedule rules due now"):
        due = list(
            Rule.objects.filter(trigger_kind=TriggerKind.SCHEDULE, status=RuleStatus.ACTIVE, next_run_at__lte=now)
            .values_list("pk", "user_id")
        )
    recorded = 0
    for rule_id, user_id in due:
        with tenant(user_id):
            rule = (
                Rule.objects.select_for_update(of=("self",)).select_related("user").defer("user__password")
                .filter(pk=rule_id).first()
            )
            if rule is None or rule.next_run_at is None or rule.next_run_at > now:
                continue
            # The latest due time (runs missed while the beat was down are not caught up one by one).
            local_now = now.astimezone(ZoneInfo(rule.user.time_zone or "UTC"))
            latest = croniter(rule.trigger["cron"], local_now).get_prev(datetime).astimezone(ZoneInfo("UTC"))
            due_at = max(rule.next_run_at, latest)
            rule.next_run_at = schedule_next(expression=rule.trigger["cron"], time_zone=rule.user.time_zone, after=now)
            rule.save(update_fields=["next_run_at", "updated_at"])
            local = due_at.astimezone(ZoneInfo(rule.user.time_zone or "UTC"))
            event = {"scheduled_for": due_at.isoformat(), "local_time": local.strftime("%Y-%m-%d %H:%M %Z"),
                     "cron": rule.trigger["cron"]}
            if rule_event_record(rule_id=rule_id, user_id=user_id, event_id=f"schedule:{due_at.isoformat()}",
                                 event=event) is not None:
                recorded += 1
    return recorded


# --- Incoming webhooks ----------------------------------------------------------------------------------


def _timestamp(value) -> datetime:
    if isinstance(value, bool) or value in (None, ""):
        raise WebhookRejected(400, "The body needs a 'timestamp' (Unix seconds or ISO 8601, e.g. TradingView's {{timenow}}).")
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit()):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds
            seconds /= 1000
        return datetime.fromtimestamp(seconds, tz=ZoneInfo("UTC"))
    parsed = parse_datetime(str(value)) if isinstance(value, str) else None
    if parsed is None:
        raise WebhookRejected(400, "The 'timestamp' is neither Unix seconds nor an ISO 8601 date and time.")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, ZoneInfo("UTC"))
    return parsed


def webhook_receive(*, token: str, body: bytes, signature_header: str = "", now: datetime | None = None) -> RuleRun:
    """Check an incoming delivery and record it as a trigger event of its rule (run queued after commit).

    Raises WebhookRejected: 404 unknown URL, 400 malformed body, 403 bad secret or signature, 409 a
    replay (an event id already received, or a timestamp outside the window)."""
    (outcome,) = webhook_receive_many([(token, body, signature_header)], now=now)
    if isinstance(outcome, WebhookRejected):
        raise outcome
    return outcome


Delivery = tuple[str, bytes, str]  # (the URL's token, the body, the X-Nexus-Signature header or "")


def webhook_receive_many(deliveries: Sequence[Delivery], *, now: datetime | None = None) -> list[RuleRun | WebhookRejected]:
    """`webhook_receive` for many deliveries at once: each gets its run or its WebhookRejected, in order.

    The same checks and the same guarantees, one delivery at a time or a thousand: every rule named is
    looked up in one query, and the runs are recorded in one transaction whose statements (each as its
    owner, under row-level security) go to the database in two or three round trips, not a dozen per
    delivery. The rules are locked as `rule_event_record` locks one, in id order (as drains lock them), so
    runs of a rule are counted against its hourly limit one at a time across processes; two deliveries of
    one event (in this batch or another) record one run, and the other is answered 409."""
    now = now or timezone.now()
    tokens = sorted({token for token, _, _ in deliveries if token})
    found: dict[str, tuple[int, int, str]] = {}
    if tokens:
        with system_context(reason="automation: the rules incoming webhooks' URLs name"):
            found = {
                str(token): (rule_id, user_id, secret)
                for token, rule_id, user_id, secret in Rule.objects.filter(
                    webhook_token__in=tokens, trigger_kind=TriggerKind.WEBHOOK
                ).values_list("webhook_token", "pk", "user_id", "secret")
            }
    outcomes: list[RuleRun | WebhookRejected | None] = [None] * len(deliveries)
    checked: list[tuple[int, int, int, str, datetime, dict]] = []
    for index, (token, body, signature_header) in enumerate(deliveries):
        try:
            checked.append((index, *_webhook_checked(found.get(token), body, signature_header, now)))
        except WebhookRejected as exc:
            outcomes[index] = exc
    if checked:
        for index, outcome in _webhook_runs_record(checked, now=now):
            outcomes[index] = outcome
    return cast(list[RuleRun | WebhookRejected], outcomes)  # every delivery has its outcome by now


def _webhook_checked(found: tuple[int, int, str] | None, body: bytes, signature_header: str, now: datetime):
    """(rule id, owner, event id, sent at, payload) of a delivery whose URL, secret, body and timestamp hold."""
    if found is None:
        raise WebhookRejected(404, "No rule has this webhook URL.")
    rule_id, user_id, secret = found
    if signature_header and not signature_matches(secret, body, signature_header):
        raise WebhookRejected(403, "The X-Nexus-Signature header does not match the body (HMAC-SHA256 with the rule's secret).")
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRejected(400, f"The body is not valid JSON: {exc}.") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "The body must be a JSON object.")
    if not signature_header:
        given = payload.get("token")
        if not isinstance(given, str) or not secrets.compare_digest(given.encode(), secret.encode()):
            raise WebhookRejected(403, "The secret token is missing or wrong: send the rule's secret as 'token' or sign the body.")
    event_id = payload.get("id")
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or not str(event_id).strip() or len(str(event_id)) > 150:
        raise WebhookRejected(400, "The body needs an 'id': a unique text of up to 150 characters for this event.")
    sent_at = _timestamp(payload.get("timestamp"))
    window = webhook_window_seconds()
    if abs((now - sent_at).total_seconds()) > window:
        raise WebhookRejected(409, f"The timestamp is more than {window} seconds from now: refused as a replay.")
    return rule_id, user_id, str(event_id), sent_at, payload


def _webhook_runs_record(checked, *, now: datetime) -> list[tuple[int, RuleRun | WebhookRejected]]:
    """Record the checked deliveries' runs in one transaction (see webhook_receive_many)."""
    outcomes: list[tuple[int, RuleRun | WebhookRejected]] = []
    owners = dict(sorted({(rule_id, user_id) for _, rule_id, user_id, *_ in checked}))
    with transaction.atomic():
        pipe = TenantPipeline()
        locked = {rule_id: pipe.select(Rule, "id = %s FOR UPDATE", [rule_id], user_id=user_id)
                  for rule_id, user_id in owners.items()}
        counted = {}
        for rule_id, user_id in owners.items():
            sql, params = _runs_last_hour_query(rule_id, now).values_list("pk").query.sql_with_params()
            counted[rule_id] = pipe.execute(f"SELECT count(*) FROM ({sql}) AS counted", params, user_id=user_id)  # noqa: S608 - the ORM's own SQL
        pipe.sync()
        rules = {rule_id: locked[rule_id].instance() for rule_id in owners}
        claims = []
        for index, rule_id, user_id, event_id, sent_at, payload in checked:
            rule = rules[rule_id]
            if rule is None or rule.trigger_kind != TriggerKind.WEBHOOK:
                outcomes.append((index, WebhookRejected(404, "No rule has this webhook URL.")))
                continue
            try:
                variables = template_extract(rule.trigger["template"], payload)
            except DomainError as exc:
                outcomes.append((index, WebhookRejected(400, str(exc))))
                continue
            event = {**variables, "event_id": event_id, "timestamp": sent_at.isoformat()}
            run = RuleRun(user_id=user_id, rule=rule, event_id=f"webhook:{event_id}"[:200], event=_jsonable(event),
                          dry_run=rule.dry_run)
            claims.append((index, run, pipe.claim(run, user_id=user_id, unique_fields=("rule", "event_id"))))
        pipe.sync()
        taken = {rule_id: counted[rule_id].scalar() for rule_id in owners}
        recorded = []
        for index, run, claim in claims:
            run.pk = claim.scalar()
            if run.pk is None:
                outcomes.append((index, WebhookRejected(
                    409, f"The event '{run.event['event_id']}' was already received: a replay is not run again.")))
                continue
            rule, skip = rules[run.rule_id], ""
            if rule.status != RuleStatus.ACTIVE:
                skip = "The rule is paused."
            elif taken[rule.pk] + 1 > rule.max_runs_per_hour:
                skip = f"Rate limit: the rule already ran {rule.max_runs_per_hour} times in the last hour."
            else:
                taken[rule.pk] += 1
            if skip:
                run.status, run.detail, run.finished_at = RunStatus.SKIPPED, skip, now
                pipe.update(run, ["status", "detail", "finished_at"], user_id=run.user_id)
            else:
                recorded.append(run)
            outcomes.append((index, run))
        pipe.close()
        if recorded:
            transaction.on_commit(lambda: runs_queue([(run.pk, run.user_id, rules[run.rule_id].actions, run.dry_run)
                                                      for run in recorded]))
    return outcomes


# --- Running --------------------------------------------------------------------------------------------


def sample_event(*, rule: Rule) -> dict:
    """A plausible trigger event of the rule's kind, for "test it"."""
    trigger, kind = rule.trigger, rule.trigger_kind
    now = timezone.now().isoformat()
    if kind == TriggerKind.PRICE:
        return {"symbol": trigger["symbol"], "price": trigger["price"], "direction": trigger["direction"], "at": now}
    if kind == TriggerKind.PERCENT_MOVE:
        return {"symbol": trigger["symbol"], "move_percent": trigger["percent"], "window_minutes": trigger["window_minutes"], "at": now}
    if kind == TriggerKind.REGIME_CHANGE:
        return {"symbol": trigger["symbol"], "previous": "sideways", "regime": trigger.get("regime") or "bullish", "at": now}
    if kind == TriggerKind.ALERT_FIRED:
        return {"alert_id": trigger.get("alert_id") or 0, "symbol": "BTC/USDT", "message": "Sample alert fired.", "at": now}
    if kind == TriggerKind.ORDER_FILLED:
        return {"order_id": "sample", "symbol": trigger.get("symbol") or "BTC/USDT", "side": "buy", "quantity": "0.01",
                "price": "0", "at": now}
    if kind == TriggerKind.BOT_BLOCKED:
        return {"bot_id": trigger.get("bot_id") or 0, "regime": "bearish", "reason": "Sample block.", "at": now}
    if kind == TriggerKind.SCHEDULE:
        return {"scheduled_for": now, "cron": trigger["cron"]}
    from automation.templating import template_placeholders

    return {name: f"sample-{name}" for _, name in template_placeholders(trigger["template"])}


def rule_test_fire(*, user, rule: Rule, event: dict | None = None) -> RuleRun:
    """Fire the rule now with a sample event (or the given one) as a dry run: evaluated and recorded, no action
    taken. For a webhook rule `event` may be a body as the sender would post it (its template is applied)."""
    with tenant(user.pk):
        if rule.user_id != user.pk:
            raise DomainError("No such rule.")
        if event is None:
            event = sample_event(rule=rule)
        elif rule.trigger_kind == TriggerKind.WEBHOOK:
            event = template_extract(rule.trigger["template"], event)
        run = rule_event_record(rule_id=rule.pk, user_id=user.pk, event_id=f"{TEST_EVENT_PREFIX}{uuid.uuid4()}",
                                event=event, dry_run=True, execute=False)
        assert run is not None  # a fresh event id cannot be a duplicate
    executed = run_execute(run_id=run.pk, user_id=user.pk)
    assert executed is not None  # recorded above, in this user's tenant
    return executed


def _variables(run: RuleRun) -> dict:
    variables = {key: value for key, value in (run.event or {}).items() if not isinstance(value, dict | list)}
    variables.setdefault("rule", run.rule.name)
    return variables


_HANDED_OFF = RuleRun(status="handed off")  # run_execute(drained=True): not done whole here, nothing changed
_PASSED = RuleRun(status="passed")  # run_execute(drained=True): another worker holds or has finished the run


def run_execute(*, run_id: int, user_id: int, drained: bool = False) -> RuleRun | None:
    """Carry out a recorded run (the `automation.run_execute` task). Safe to run again at any point.

    `drained` (a drain): a run another worker holds or has finished is passed over (_PASSED), and one that
    cannot be done whole in this transaction is left as it is (_HANDED_OFF) for a task of its own."""
    now = timezone.now()
    with tenant(user_id):
        run = (
            RuleRun.objects.select_for_update(of=("self",), skip_locked=drained).select_related("rule", "user")
            .defer("user__password").filter(pk=run_id).first()
        )
        if run is None or run.status in FINISHED_RUN_STATUSES:
            return _PASSED if drained else run
        if _in_one_transaction(run):
            return _run_at_once(run=run, now=now)
        if drained:
            return _HANDED_OFF
        run.status, run.attempts, run.claimed_at = RunStatus.RUNNING, run.attempts + 1, now
        if run.conditions is None:
            run.conditions = _conditions(run=run, now=now)
        run.save(update_fields=["status", "attempts", "claimed_at", "conditions"])
    # The claim and the conditions' values are committed: what follows may be cut short and resumed.
    if not all(condition["passed"] for condition in run.conditions or []):
        return _run_finish(run_id=run_id, user_id=user_id, status=RunStatus.CONDITIONS_NOT_MET,
                           detail=NOT_MET)
    for position, action in enumerate(run.rule.actions):
        _action_run(run=run, position=position, action=action)
    return _run_finish(run_id=run_id, user_id=user_id)


NOT_MET = "Not every condition held; nothing was done."
# Actions whose every effect is a row of this database (queued work included: it is sent after commit).
IN_DATABASE_ACTIONS = frozenset(
    {ActionKind.NOTIFY, ActionKind.PAUSE_BOT, ActionKind.RESUME_BOT, ActionKind.WATCHLIST_ADD, ActionKind.WEBHOOK_CALL}
)


def _conditions(*, run: RuleRun, now: datetime) -> list[dict]:
    return [condition_evaluate(user=run.user, condition=condition, now=now) for condition in run.rule.conditions]


def _in_one_transaction(run: RuleRun) -> bool:
    """Whether the run is carried out whole in the transaction that claims it: a first attempt (nothing of it
    committed yet) whose actions only write rows of this database, or only describe what they would do (a
    dry run). All or nothing, so a worker killed at any point leaves it pending, to be done again from the
    start; the others (orders, calls that leave Nexus) commit the claim, then each action on its own."""
    if run.status != RunStatus.PENDING or run.attempts or run.conditions is not None:
        return False
    return _whole(dry_run=run.dry_run, actions=run.rule.actions)


def _run_at_once(*, run: RuleRun, now: datetime) -> RuleRun:
    """Claim, conditions, every action with its result row, and the close, in the caller's transaction (which
    holds the run's row lock). A database error rolls all of it back and is raised (the task is retried)."""
    run.status, run.attempts, run.claimed_at = RunStatus.RUNNING, 1, now
    run.conditions = _conditions(run=run, now=now)
    status, detail, results = None, "", []
    if all(condition["passed"] for condition in run.conditions):
        results = [_action_do(run=run, position=position, action=action)
                   for position, action in enumerate(run.rule.actions)]
    else:
        status, detail = RunStatus.CONDITIONS_NOT_MET, NOT_MET
    # Locks in one order everywhere: the run, then its rule (taken last, held for the close only).
    rule = Rule.objects.select_for_update(of=("self",)).select_related("alert").get(pk=run.rule_id)
    return _run_close(run=run, rule=rule, results=results, status=status, detail=detail, now=timezone.now(),
                      fields=["attempts", "claimed_at", "conditions"])


def _run_link(run: RuleRun) -> str:
    return reverse("automation:run_detail", args=[run.rule_id, run.pk])


def _action_run(*, run: RuleRun, position: int, action: dict) -> None:
    user, kind = run.user, action["kind"]
    with tenant(user.pk):
        # The run's row lock: a second worker on the same run (a redelivery while the first still runs) waits
        # here, then finds the action recorded and skips it.
        RuleRun.objects.select_for_update(of=("self",)).filter(pk=run.pk).first()
        recorded = RunAction.objects.filter(run=run, position=position).first()
        if recorded is not None:
            if recorded.status == ActionStatus.SENDING:
                # A worker died during the call: it may have gone out, so it is not made a second time.
                recorded.status = ActionStatus.INTERRUPTED
                recorded.detail = "Interrupted during the call; not repeated, to never post twice."
                recorded.save(update_fields=["status", "detail", "updated_at"])
            return
        if kind in EXTERNAL_ACTIONS and not run.dry_run:
            recorded = RunAction.objects.create(
                user=user, run=run, position=position, kind=kind, status=ActionStatus.SENDING,
                summary=f"Posting to Discord channel {action['channel_id']}",
            )
        else:
            _action_do(run=run, position=position, action=action)
            return
    # Outside any transaction: the post leaves Nexus; its result is written after.
    try:
        channel_post(service="discord", channel_id=action["channel_id"], text=render(action["message"], _variables(run)))
        status, detail = ActionStatus.SUCCEEDED, ""
    except (ChannelPostFailed, DomainError) as exc:
        status, detail = ActionStatus.FAILED, str(exc)
    with tenant(user.pk):
        RunAction.objects.filter(pk=recorded.pk).update(
            status=status, detail=detail, updated_at=timezone.now(),
            summary=f"Posted to Discord channel {action['channel_id']}" if status == ActionStatus.SUCCEEDED
            else recorded.summary,
        )


def _action_do(*, run: RuleRun, position: int, action: dict) -> RunAction:
    """Carry out one in-database action (or describe it, in a dry run) and record its result row, in one
    savepoint of the caller's transaction: a refused action is recorded failed, a database error is raised."""
    user, kind = run.user, action["kind"]
    try:
        with transaction.atomic():
            outcome = _act(run=run, position=position, action=action)
            row = RunAction.objects.create(
                user=user, run=run, position=position, kind=kind, status=outcome.status,
                summary=outcome.summary[:500], detail=outcome.detail, order=outcome.order,
                order_value=outcome.order_value,
            )
            if outcome.status == ActionStatus.QUEUED:
                delivery = WebhookDelivery.objects.create(user=user, action=row, url=action["url"],
                                                          body=outcome.detail)
                args = [delivery.pk, user.pk]
                transaction.on_commit(lambda: task_enqueue("automation.webhook_deliver", args=args))
            return row
    except DomainError as exc:
        return _action_failed(run=run, position=position, kind=kind, message=str(exc))
    except (OperationalError, InterfaceError):
        # The database, not the action, failed (a lock wait past lock_timeout, a deadlock, a lost
        # connection): nothing of the action was kept, so it is not recorded as failed. The task is
        # retried and the run resumes here; an order is placed again with the same client order id.
        raise
    except Exception:
        logger.exception("automation.action_failed", run_id=run.pk, position=position)
        return _action_failed(run=run, position=position, kind=kind,
                              message="An unexpected error stopped this action.")


def _action_failed(*, run: RuleRun, position: int, kind: str, message: str) -> RunAction:
    from automation.actions import action_describe

    with tenant(run.user_id):
        return RunAction.objects.create(
            user_id=run.user_id, run=run, position=position, kind=kind, status=ActionStatus.FAILED,
            summary=action_describe(run.rule.actions[position])[:500], detail=message,
        )


def _act(*, run: RuleRun, position: int, action: dict) -> Outcome:
    user, rule, kind = run.user, run.rule, action["kind"]
    variables = _variables(run)
    if kind == ActionKind.PLACE_ORDER:
        plan = order_plan(user=user, action=action, variables=variables)
        # The rule row is locked: concurrent runs of one rule check the daily cap one after another.
        Rule.objects.select_for_update(of=("self",)).filter(pk=rule.pk).first()
        day = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
        placed = RunAction.objects.filter(
            run__rule=rule, status=ActionStatus.SUCCEEDED, created_at__gte=day
        ).aggregate(total=Sum("order_value"))["total"] or Decimal(0)
        cap = rule.daily_order_cap
        if cap is not None and placed + plan.estimate > cap:
            raise DomainError(
                f"Daily order cap: {plain(placed)} placed today plus about {plain(plan.estimate.quantize(Decimal('0.01')))} "
                f"would exceed the cap of {plain(cap)}."
            )
        if run.dry_run:
            return Outcome(ActionStatus.WOULD, f"Would {plan.describe()[0].lower()}{plan.describe()[1:]}",
                           order_value=None)
        outcome = order_act(user=user, plan=plan, order_id=run_order_id(run_id=run.pk, position=position))
        RuleRun.objects.filter(pk=run.pk).update(order_value=plan.estimate)
        return outcome
    if kind == ActionKind.WEBHOOK_CALL:
        body = json.dumps({
            "rule": {"id": rule.pk, "name": rule.name}, "run": run.pk, "event_id": run.event_id,
            "event": run.event, "message": render(action.get("message") or "", variables),
        }, default=str, sort_keys=True)
        if run.dry_run:
            return Outcome(ActionStatus.WOULD, f"Would POST to {action['url']}", detail=body)
        return Outcome(ActionStatus.QUEUED, f"POST to {action['url']} queued", detail=body)
    if kind == ActionKind.DISCORD_POST:  # dry run only (a real post is made outside the transaction)
        return Outcome(ActionStatus.WOULD, f"Would post to Discord channel {action['channel_id']}: "
                       f"{render(action['message'], variables)}")
    return simple_act(user=user, action=action, variables=variables, dry_run=run.dry_run,
                      dedup_key=f"automation-run:{run.pk}:{position}", link=_run_link(run))



def _run_finish(*, run_id: int, user_id: int, status: str | None = None, detail: str = "") -> RuleRun:
    """Close the run and keep the rule's failure count: enough failures in a row pause it and tell its owner."""
    with tenant(user_id):
        # Locks in one order everywhere: the run, then its rule.
        run = (
            RuleRun.objects.select_for_update(of=("self",)).select_related("user", "rule").defer("user__password")
            .get(pk=run_id)
        )
        rule = Rule.objects.select_for_update(of=("self",)).select_related("alert").get(pk=run.rule_id)
        if run.status in FINISHED_RUN_STATUSES:
            return run
        return _run_close(run=run, rule=rule, results=list(run.results.all()), status=status, detail=detail,
                          now=timezone.now())


def _run_close(
    *, run: RuleRun, rule: Rule, results: list[RunAction], now: datetime, status: str | None = None,
    detail: str = "", fields: list[str] | None = None,
) -> RuleRun:
    """Write the run's outcome from its action results (and `fields` of the run changed by the caller); count
    it against the rule. The caller holds the run's and the rule's row locks, in its tenant block."""
    failed = [result for result in results if result.status == ActionStatus.FAILED]
    if status is None:
        if run.dry_run:
            status = RunStatus.DRY_RUN
            detail = "Dry run: recorded what would happen, nothing was done."
        elif failed:
            status = RunStatus.FAILED
            detail = f"{len(failed)} of {len(results)} actions failed: {failed[0].detail}"
        else:
            status = RunStatus.SUCCEEDED
    elif run.dry_run:
        detail = f"Dry run. {detail}"
    run.status, run.detail, run.finished_at = status, detail[:500], now
    run.save(update_fields=["status", "detail", "finished_at", *(fields or [])])
    if run.dry_run:
        return run
    rule.last_run_at = now
    _failures_count(rule=rule, run=run, failed=status == RunStatus.FAILED, detail=detail, fields=["last_run_at"])
    return run


def _failures_count(*, rule: Rule, run: RuleRun, failed: bool, detail: str, fields: list[str] | None = None) -> None:
    """Count a failed run against the rule (a success resets the count); enough in a row pause it and tell
    its owner. The caller holds the rule's row lock; `fields`: others of the rule it changed, saved too."""
    rule.consecutive_failures = rule.consecutive_failures + 1 if failed else 0
    rule.save(update_fields=["consecutive_failures", "updated_at", *(fields or [])])
    if not failed or rule.consecutive_failures < failures_to_pause() or rule.status != RuleStatus.ACTIVE:
        return
    reason = f"Paused after {rule.consecutive_failures} failed runs in a row. Last: {detail}"
    rule_pause(user=run.user, rule=rule, reason=reason)
    notify(
        user=run.user, kind=NOTIFICATION_KIND_PAUSED,
        message=f"Your automation rule \u201c{rule.name}\u201d was paused after {rule.consecutive_failures} "
        f"failed runs in a row. Check its runs, fix it and resume it.",
        link=reverse("automation:rule_detail", args=[rule.pk]),
        dedup_key=f"automation-paused:{rule.pk}:{run.pk}",
    )


# --- Outgoing webhook deliveries ------------------------------------------------------------------------


def webhook_delivery_attempt(*, delivery_id: int, user_id: int, final: bool) -> str:
    """One attempt at an outgoing webhook. Returns "sent", "refused", "retry" (WebhookFailed) or "done".

    `final`: the last attempt the task will make; a failure then marks the delivery and its action failed."""
    with tenant(user_id):
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",))
            .select_related("action__run__rule").filter(pk=delivery_id).first()
        )
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return "done"
        delivery.attempts += 1
        delivery.save(update_fields=["attempts", "updated_at"])
        secret = delivery.action.run.rule.secret
        url, body = delivery.url, delivery.body.encode()
    try:
        sent = webhook_send(url=url, body=body, secret=secret, timestamp=int(time_module.time()))
    except WebhookRefused as exc:
        _delivery_close(delivery_id=delivery_id, user_id=user_id, ok=False, error=str(exc))
        return "refused"
    except WebhookFailed as exc:
        if final:
            _delivery_close(delivery_id=delivery_id, user_id=user_id, ok=False, error=str(exc), status=exc.status)
        else:
            with tenant(user_id):
                WebhookDelivery.objects.filter(pk=delivery_id).update(
                    last_error=str(exc)[:500], response_status=exc.status, updated_at=timezone.now()
                )
        return "retry"
    _delivery_close(delivery_id=delivery_id, user_id=user_id, ok=True, status=sent.status)
    return "sent"


def _delivery_close(*, delivery_id: int, user_id: int, ok: bool, error: str = "", status: int | None = None) -> None:
    with tenant(user_id):
        delivery = WebhookDelivery.objects.select_for_update(of=("self",)).select_related("action").get(pk=delivery_id)
        delivery.status = DeliveryStatus.SENT if ok else DeliveryStatus.FAILED
        delivery.last_error, delivery.response_status = error[:500], status
        delivery.save(update_fields=["status", "last_error", "response_status", "updated_at"])
        action = delivery.action
        action.status = ActionStatus.SUCCEEDED if ok else ActionStatus.FAILED
        action.summary = (f"POSTed to {delivery.url} ({status})" if ok else f"POST to {delivery.url} failed")[:500]
        action.detail = "" if ok else f"{error} ({delivery.attempts} attempts)"
        action.save(update_fields=["status", "summary", "detail", "updated_at"])
        if ok:
            return
        # The run had finished with the call queued: it failed after all, and counts as a failure of the rule.
        run = (
            RuleRun.objects.select_for_update(of=("self",)).select_related("user").defer("user__password")
            .get(pk=action.run_id)
        )
        rule = Rule.objects.select_for_update(of=("self",)).get(pk=run.rule_id)
        if run.status == RunStatus.SUCCEEDED:
            run.status, run.detail = RunStatus.FAILED, f"The webhook call failed: {error}"[:500]
            run.save(update_fields=["status", "detail"])
            _failures_count(rule=rule, run=run, failed=True, detail=run.detail)
