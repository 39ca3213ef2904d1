"""What alerts listen to: the feed's ticks (in the feed process) and trading's events (where they happen).

Trading sends its signals after its transaction commits, with send_robust; the event receivers below
look up the few armed event alerts concerned and fire them, each under the (alert, occurrence) unique
constraint, so a signal delivered twice records one firing.
"""

from __future__ import annotations

from decimal import Decimal

from django.urls import reverse
from django.utils import timezone

from alerts.choices import AlertKind
from alerts.evaluator import on_ticks_published
from alerts.services import event_alert_owners, event_alerts_fire
from marketdata.signals import ticks_published
from trading.signals import executions_blocked, orders_filled, venue_degraded


def _plain(value) -> str:
    return format(Decimal(value).normalize(), "f")


def on_orders_filled(sender, *, fills, **kwargs) -> None:
    # A fan-out chunk fills thousands of orders; one query finds the few owners with an armed alert.
    owners = event_alert_owners(kind=AlertKind.ORDER_FILLED, user_ids={fill["user_id"] for fill in fills})
    for fill in fills:
        if fill["user_id"] not in owners:
            continue
        verb = "bought" if fill["side"] == "buy" else "sold"
        event_alerts_fire(
            kind=AlertKind.ORDER_FILLED,
            user_id=fill["user_id"],
            occurrence_key=f"order:{fill['order_id']}",
            detail=f"Order filled: {verb} {_plain(fill['quantity'])} {fill['symbol']} at {_plain(fill['price'])}.",
            link=reverse("trading:order_history"),
        )


def on_executions_blocked(sender, *, blocks, **kwargs) -> None:
    # A bearish signal can block every subscriber's bot at once; one query finds the few with an alert.
    owners = event_alert_owners(kind=AlertKind.BOT_BLOCKED, user_ids={block["user_id"] for block in blocks})
    for block in blocks:
        if block["user_id"] not in owners:
            continue
        event_alerts_fire(
            kind=AlertKind.BOT_BLOCKED,
            user_id=block["user_id"],
            occurrence_key=f"blocked:{block['blocked_id']}",
            detail=f"A bot was blocked by the regime gatekeeper ({block['regime']}): {block['reason']}",
            link=reverse("trading:blocked"),
        )


def on_venue_degraded(sender, *, venue, retry_after_seconds, **kwargs) -> None:
    # The breaker sends this once per opening, cluster-wide; the minute keys a redelivered signal.
    event_alerts_fire(
        kind=AlertKind.EXCHANGE_DEGRADED,
        venue=venue,
        occurrence_key=f"venue:{venue}:{timezone.now():%Y-%m-%dT%H:%M}",
        detail=f"{venue} is degraded: Nexus pauses calls to it for {retry_after_seconds} s and retries after.",
        link=reverse("trading:connections"),
    )


def connect() -> None:
    ticks_published.connect(on_ticks_published, dispatch_uid="alerts.on_ticks_published")
    orders_filled.connect(on_orders_filled, dispatch_uid="alerts.on_orders_filled")
    executions_blocked.connect(on_executions_blocked, dispatch_uid="alerts.on_executions_blocked")
    venue_degraded.connect(on_venue_degraded, dispatch_uid="alerts.on_venue_degraded")


def billing_counter_register() -> None:
    """Billing counts a user's active alerts (armed, or re-arming after a firing) against the plan."""
    from alerts.selectors import alert_active_count
    from billing.services import entitlement_counter_register

    entitlement_counter_register(feature="alerts", counter=lambda user: alert_active_count(user=user))
