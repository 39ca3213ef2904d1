"""Demo alerts for the demo trader, created through the services (idempotent)."""

from __future__ import annotations

from decimal import Decimal

from alerts.choices import AlertKind
from alerts.models import Alert
from alerts.services import alert_create
from marketdata.selectors import instrument_get, quote_latest_map

DEMO_SYMBOL = "BTC/USDT"


def seed_alerts(*, trader, stdout) -> None:
    if Alert.objects.filter(user=trader).exists():
        return
    instrument = instrument_get(symbol=DEMO_SYMBOL)
    quote = quote_latest_map(symbols=[DEMO_SYMBOL]).get(DEMO_SYMBOL)
    price = quote.price if quote is not None else instrument.reference_price
    if not price:
        return
    step = Decimal(1).scaleb(-instrument.price_precision)
    alert_create(
        user=trader,
        kind=AlertKind.PRICE_ABOVE,
        symbol=DEMO_SYMBOL,
        threshold=(price * Decimal("1.002")).quantize(step),
        note="Demo: a level just above the replayed price.",
    )
    alert_create(
        user=trader,
        kind=AlertKind.PRICE_BELOW,
        symbol=DEMO_SYMBOL,
        threshold=(price * Decimal("0.998")).quantize(step),
        repeat=True,
        note="Demo: re-arms 15 minutes after each firing.",
    )
    alert_create(
        user=trader,
        kind=AlertKind.PERCENT_MOVE,
        symbol=DEMO_SYMBOL,
        threshold=Decimal("-1"),
        window_minutes=60,
        repeat=True,
    )
    stdout.write(f"Demo alerts: 3 on {DEMO_SYMBOL} for {trader.email}")
