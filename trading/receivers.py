"""Trading's subscriptions to the market feed (connected in TradingConfig.ready()).

They run in the feed process, so they only look up what is due and enqueue Celery tasks:
- each tick: resting paper orders the price may fill or trigger (one indexed query per symbol);
- each closed one-minute candle: the signal engine for that pair.
"""

from __future__ import annotations

import structlog

logger = structlog.get_logger(__name__)


def on_ticks(sender, *, ticks, **kwargs) -> None:
    from core.rls import system_context
    from trading.models import Order
    from trading.tasks import paper_match_task

    symbols = {tick.symbol for tick in ticks}
    with system_context(reason="paper exchange: which symbols have resting orders"):
        resting = set(
            Order.objects.filter(
                instrument__symbol__in=symbols, status__in=["open", "partially_filled"], connection__venue="paper"
            ).values_list("instrument__symbol", flat=True).distinct()
        )
    for tick in ticks:
        if tick.symbol in resting:
            paper_match_task.delay(tick.symbol, str(tick.price))


def on_candle_closed(sender, *, symbol, candle, **kwargs) -> None:
    from django.utils import timezone

    from trading.tasks import signals_compute_task

    signals_compute_task.delay(symbol, candle.open_time.isoformat(), timezone.now().isoformat())


def notification_kinds_register() -> None:
    """Describe trading's notification kinds for the preferences page (in-app by default)."""
    from core.notifications import register_kind

    register_kind("trading.order_filled", label="Order filled", default_channels={"in_app"})
    register_kind("trading.execution_blocked", label="Bot did not trade", default_channels={"in_app"})


def billing_counters_register() -> None:
    """Tell billing how many bots and real exchange connections a user has (it runs them as the user)."""
    from billing.services import entitlement_counter_register
    from trading.models import Bot, ExchangeConnection

    entitlement_counter_register(feature="bots", counter=lambda user: Bot.objects.filter(user_id=user.pk).count())
    entitlement_counter_register(
        feature="exchange_connections",
        counter=lambda user: ExchangeConnection.objects.filter(user_id=user.pk, status="active")
        .exclude(venue="paper")
        .count(),
    )
