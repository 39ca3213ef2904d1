"""What alerts listen to: the feed's ticks (the `alerts` tick consumer, a process of its own) and trading's
events (where they happen).

Trading sends its signals after its transaction commits, with send_robust; the event receivers below
look up the few armed event alerts concerned and fire them, each under the (alert, occurrence) unique
constraint, so a signal delivered twice records one firing.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone

from alerts.choices import AlertKind
from alerts.evaluator import TickEvaluation
from alerts.services import event_alert_owners, event_alerts_fire
from core.money import plain
from marketdata.tick_consumers import register_tick_consumer
from trading.events import executions_blocked, orders_filled, venue_degraded


def _fire_for_owners(kind: str, events: list[dict], *, occurrence, detail, link: str) -> None:
    """Fire the armed `kind` alerts of the owners among `events` (one dict per event, with user_id).

    A fan-out chunk reports thousands of fills or blocks at once; one query finds the few owners who
    have such an alert, and only their events go further."""
    owners = event_alert_owners(kind=kind, user_ids={event["user_id"] for event in events})
    for event in events:
        if event["user_id"] in owners:
            event_alerts_fire(
                kind=kind, user_id=event["user_id"], occurrence_key=occurrence(event), detail=detail(event), link=link
            )


def on_orders_filled(sender, *, fills, **kwargs) -> None:
    def detail(fill: dict) -> str:
        verb = "bought" if fill["side"] == "buy" else "sold"
        return f"Order filled: {verb} {plain(fill['quantity'])} {fill['symbol']} at {plain(fill['price'])}."

    _fire_for_owners(
        AlertKind.ORDER_FILLED, fills, occurrence=lambda fill: f"order:{fill['order_id']}", detail=detail,
        link=reverse("trading:order_history"),
    )


def on_executions_blocked(sender, *, blocks, **kwargs) -> None:
    _fire_for_owners(
        AlertKind.BOT_BLOCKED, blocks, occurrence=lambda block: f"blocked:{block['blocked_id']}",
        detail=lambda block: f"A bot was blocked by the regime gatekeeper ({block['regime']}): {block['reason']}",
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
    register_tick_consumer("alerts", handler=TickEvaluation)
    orders_filled.connect(on_orders_filled, dispatch_uid="alerts.on_orders_filled")
    executions_blocked.connect(on_executions_blocked, dispatch_uid="alerts.on_executions_blocked")
    venue_degraded.connect(on_venue_degraded, dispatch_uid="alerts.on_venue_degraded")


def billing_counter_register() -> None:
    """Billing counts a user's active alerts (armed, or re-arming after a firing) against the plan."""
    from alerts.selectors import alert_active_count
    from billing.services import entitlement_counter_register

    entitlement_counter_register(feature="alerts", counter=lambda user: alert_active_count(user=user))


def page_actions_register() -> None:
    """Links to the alert form, filled in: "Set an alert" on each instrument's market page, and "Alert" on
    each position row of the dashboard (a loss alert on that position, in percent)."""
    from alerts.templatetags.alerts_tags import alert_create_url
    from marketdata.annotations import register_market_action
    from portfolios.actions import register_position_action

    register_market_action("alert", label="Set an alert", url=lambda symbol: alert_create_url(symbol=symbol))
    register_position_action(
        "alert",
        label="Alert",
        url=lambda *, symbol, portfolio_id: alert_create_url(
            symbol=symbol, kind="position_pnl_below", portfolio=portfolio_id, pnl_unit="percent"
        ),
    )
