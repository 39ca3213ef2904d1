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


def market_annotations_register() -> None:
    """Put the regime gatekeeper's latest reading of each pair on the public market pages."""
    from marketdata.annotations import register_market_annotation

    register_market_annotation("regime", label="Regime", provider=regime_annotations)


def regime_annotations(symbols: list[str]):
    from marketdata.annotations import Annotation
    from trading.decisions.selectors import regime_latest_map

    readings = regime_latest_map()
    return {
        symbol: Annotation(
            text=reading.get_regime_display(),
            css=f"regime-{reading.regime}",
            title=(
                f"SMA slope {reading.sma_slope_pct:+.2f}%, ADX {reading.adx:.1f} "
                f"({reading.timeframe} candles to {reading.as_of:%Y-%m-%d %H:%M} UTC)"
            ),
        )
        for symbol, reading in readings.items()
        if symbol in symbols
    }
