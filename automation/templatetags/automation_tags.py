"""{% load automation_tags %}: a rule's trigger, conditions and actions as a trader reads them."""

from django import template

from alerts.choices import WINDOW_LABELS
from automation.actions import action_describe
from automation.choices import PriceDirection, TriggerKind
from automation.conditions import condition_describe

register = template.Library()


@register.filter
def trigger_text(rule) -> str:
    trigger, kind = rule.trigger, rule.trigger_kind
    if kind == TriggerKind.PRICE:
        return f"{trigger['symbol']} {PriceDirection(trigger['direction']).label} {trigger['price']}"
    if kind == TriggerKind.PERCENT_MOVE:
        return f"{trigger['symbol']} moves {trigger['percent']}% in {WINDOW_LABELS.get(trigger['window_minutes'], '?')}"
    if kind == TriggerKind.REGIME_CHANGE:
        return f"{trigger['symbol']} regime changes" + (f" to {trigger['regime']}" if trigger.get("regime") else "")
    if kind == TriggerKind.ALERT_FIRED:
        return f"alert #{trigger['alert_id']} fires" if trigger.get("alert_id") else "any of your alerts fires"
    if kind == TriggerKind.ORDER_FILLED:
        return f"a {trigger['symbol']} order is filled" if trigger.get("symbol") else "any order is filled"
    if kind == TriggerKind.BOT_BLOCKED:
        return f"bot #{trigger['bot_id']} is blocked" if trigger.get("bot_id") else "any bot is blocked"
    if kind == TriggerKind.SCHEDULE:
        return f"cron {trigger['cron']} (your time zone)"
    return "a webhook arrives"


@register.filter
def condition_text(condition: dict) -> str:
    return condition_describe(condition)


@register.filter
def action_text(action: dict) -> str:
    return action_describe(action)
