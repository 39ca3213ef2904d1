"""Trading's subscriptions to the market feed.

- Published prices: the `matching` tick consumer (`manage.py run_tick_consumer matching`, a process of its
  own) fills and triggers the resting paper orders each price crosses, in the order published.
- Each closed one-minute candle (`marketdata.events.candle_closed`, in the feed process): the receiver
  enqueues the signal engine for that pair.
"""

from __future__ import annotations

import structlog
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from core.rls import system_context
from marketdata.selectors import quote_latest_map
from marketdata.tick_consumers import TickHandler, register_tick_consumer
from marketdata.types import TickEvent
from trading.exchanges.registry import resting_orders_reached
from trading.models import Order
from trading.orders.services import RESTING_STATUSES, order_match_resting

logger = structlog.get_logger(__name__)


def _symbols_with_resting_orders(symbols: set[str] | None = None) -> set[str]:
    """The symbols (of `symbols`, or all) with resting orders. Cross-tenant, one query, symbols only."""
    with system_context(reason="tick matching: which symbols have resting orders"):
        orders = Order.objects.filter(status__in=RESTING_STATUSES)
        if symbols is not None:
            orders = orders.filter(instrument__symbol__in=symbols)
        # order_by(): the model's ordering would join the DISTINCT (a row per resting order).
        return set(orders.order_by().values_list("instrument__symbol", flat=True).distinct())


class RestingOrderMatching(TickHandler):
    """The `matching` tick consumer. Every published price is matched against the resting paper orders
    of its symbol, in order; a batch is acknowledged only once matched, so prices published while no
    matcher ran, or read by one that died, are matched when one (re)starts. Matching is idempotent (an
    order is matched under its row lock, only while it still rests), so a price matched twice fills
    nothing twice."""

    def start(self) -> None:
        """Catch up on what the stream cannot replay (a matcher that never ran, a backlog the stream
        trimmed): match every resting order against its market's latest live price."""
        symbols = _symbols_with_resting_orders()
        quotes = quote_latest_map(symbols=symbols) if symbols else {}
        now = timezone.now()
        self.handle(
            [
                TickEvent(symbol=symbol, price=quote.price, previous_price=None, at=now)
                for symbol, quote in sorted(quotes.items())
                if not quote.stale
            ]
        )

    def handle(self, ticks: list[TickEvent]) -> None:
        resting = _symbols_with_resting_orders({tick.symbol for tick in ticks}) if ticks else set()
        for tick in ticks:
            if tick.symbol not in resting:
                continue
            for order_id, user_id in resting_orders_reached(symbol=tick.symbol, price=tick.price):
                try:
                    order_match_resting(order_id=order_id, user_id=user_id, price=tick.price)
                except (OperationalError, InterfaceError):
                    raise  # the database is away: the batch is matched again once it is back
                except Exception:
                    logger.exception("trading.paper_match_failed", order_id=order_id, symbol=tick.symbol)


def tick_consumer_register() -> None:
    register_tick_consumer("matching", handler=RestingOrderMatching)


def on_candle_closed(sender, *, symbol, candle, **kwargs) -> None:
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
