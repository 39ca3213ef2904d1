"""Demo alerts for the demo trader, created through the services (idempotent)."""

from __future__ import annotations

from decimal import Decimal

from alerts.choices import AlertKind
from alerts.models import Alert
from alerts.services import alert_create
from marketdata.selectors import instrument_get, quote_latest_map

DEMO_SYMBOL = "BTC/USDT"


def seed_alerts(*, trader, stdout) -> None:
    """A level at the last known price (crossed as soon as the replay moves through it) and two
    re-arming percent moves, which the replayed market crosses every so often."""
    if Alert.objects.filter(user=trader).exists():
        return
    instrument = instrument_get(symbol=DEMO_SYMBOL)
    quote = quote_latest_map(symbols=[DEMO_SYMBOL]).get(DEMO_SYMBOL)
    price = quote.price if quote is not None else instrument.reference_price
    if price:
        level = price.quantize(Decimal(1).scaleb(-instrument.price_precision))
        alert_create(
            user=trader,
            kind=AlertKind.PRICE_CROSS,
            symbol=DEMO_SYMBOL,
            threshold=level,
            repeat=True,
            note="Demo: re-arms 15 minutes after each firing.",
        )
    for move in (Decimal("-0.5"), Decimal("0.5")):
        alert_create(
            user=trader,
            kind=AlertKind.PERCENT_MOVE,
            symbol=DEMO_SYMBOL,
            threshold=move,
            window_minutes=15,
            repeat=True,
        )
    stdout.write(f"Demo alerts: a level and two percent moves on {DEMO_SYMBOL} for {trader.email}")
