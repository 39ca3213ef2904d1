"""What automation listens to: alerts' firings (price and percent-move triggers are alerts the rules own, found
on each tick by the alerts evaluator), trading's events (order filled, bot blocked, regime change). Neither
alerts nor trading know automation: their signals are sent after their transactions commit.

Each receiver records one run per (rule, event) through `rule_event_record` (a duplicate delivery of the
signal records nothing) and leaves the acting to the worker (a drain, or the `automation.run_execute` task).
"""

from __future__ import annotations

import structlog

from alerts.events import alert_fired
from automation.choices import ALERT_BACKED_TRIGGERS, TriggerKind
from automation.services import market_rules, rule_event_record, rule_owners, rules_for_event
from core.money import plain
from trading.events import executions_blocked, orders_filled, regime_changed

logger = structlog.get_logger(__name__)


def _value(value) -> str:
    return plain(value) if value is not None else ""


def on_alert_fired(sender, *, firing, **kwargs) -> None:
    kinds = [*ALERT_BACKED_TRIGGERS, TriggerKind.ALERT_FIRED]
    for rule in rules_for_event(user_id=firing["user_id"], kinds=kinds):
        wanted = rule.alert_id if rule.trigger_kind in ALERT_BACKED_TRIGGERS else rule.trigger.get("alert_id")
        if rule.trigger_kind in ALERT_BACKED_TRIGGERS or wanted is not None:
            if wanted != firing["alert_id"]:
                continue
        elif firing["alert_id"] in _rule_alerts(firing["user_id"]):
            continue  # "any alert" means the trader's alerts, not the ones rules own
        event = {"alert_id": firing["alert_id"], "symbol": firing["symbol"], "price": _value(firing["value"]),
                 "previous": _value(firing["previous_value"]), "message": firing["message"]}
        rule_event_record(rule_id=rule.pk, user_id=rule.user_id, event_id=f"alert-firing:{firing['firing_id']}",
                          event=event)


def _rule_alerts(user_id: int) -> set[int]:
    return {rule.alert_id for rule in rules_for_event(user_id=user_id, kinds=list(ALERT_BACKED_TRIGGERS))}


def on_orders_filled(sender, *, fills, **kwargs) -> None:
    owners = rule_owners(kind=TriggerKind.ORDER_FILLED, user_ids={fill["user_id"] for fill in fills})
    for fill in fills:
        if fill["user_id"] not in owners:
            continue
        for rule in rules_for_event(user_id=fill["user_id"], kinds=[TriggerKind.ORDER_FILLED]):
            if rule.trigger.get("symbol") and rule.trigger["symbol"] != fill["symbol"]:
                continue
            event = {"order_id": str(fill["order_id"]), "symbol": fill["symbol"], "side": fill["side"],
                     "quantity": _value(fill["quantity"]), "price": _value(fill["price"])}
            rule_event_record(rule_id=rule.pk, user_id=rule.user_id, event_id=f"order:{fill['order_id']}", event=event)


def on_executions_blocked(sender, *, blocks, **kwargs) -> None:
    owners = rule_owners(kind=TriggerKind.BOT_BLOCKED, user_ids={block["user_id"] for block in blocks})
    for block in blocks:
        if block["user_id"] not in owners:
            continue
        for rule in rules_for_event(user_id=block["user_id"], kinds=[TriggerKind.BOT_BLOCKED]):
            if rule.trigger.get("bot_id") and rule.trigger["bot_id"] != block["bot_id"]:
                continue
            event = {"bot_id": block["bot_id"], "regime": block["regime"], "reason": block["reason"]}
            rule_event_record(rule_id=rule.pk, user_id=rule.user_id, event_id=f"blocked:{block['blocked_id']}",
                              event=event)


def on_regime_changed(sender, *, symbol, previous, regime, reading_id, as_of, **kwargs) -> None:
    for rule_id, user_id, trigger in market_rules(kind=TriggerKind.REGIME_CHANGE, symbol=symbol):
        if trigger.get("regime") and trigger["regime"] != regime:
            continue
        event = {"symbol": symbol, "previous": previous, "regime": regime, "as_of": as_of.isoformat()}
        rule_event_record(rule_id=rule_id, user_id=user_id, event_id=f"regime:{reading_id}:{regime}", event=event)


def connect() -> None:
    alert_fired.connect(on_alert_fired, dispatch_uid="automation.on_alert_fired")
    orders_filled.connect(on_orders_filled, dispatch_uid="automation.on_orders_filled")
    executions_blocked.connect(on_executions_blocked, dispatch_uid="automation.on_executions_blocked")
    regime_changed.connect(on_regime_changed, dispatch_uid="automation.on_regime_changed")


def billing_counters_register() -> None:
    """Billing counts a user's rules, and their webhook-triggered rules, against the plan."""
    from automation.selectors import rule_count
    from billing.services import entitlement_counter_register

    entitlement_counter_register(feature="automation_rules", counter=lambda user: rule_count(user=user))
    entitlement_counter_register(
        feature="webhook_triggers", counter=lambda user: rule_count(user=user, trigger_kind=TriggerKind.WEBHOOK)
    )
