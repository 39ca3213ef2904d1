"""Market pages. Public, like the WebSockets that keep them live: market data is nobody's private data."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from core.errors import DomainError
from marketdata.annotations import market_actions, market_annotations
from marketdata.selectors import (
    TIMEFRAMES,
    candle_list,
    instrument_get,
    instrument_list,
    live_payloads,
    recent_closes,
)

SPARK_WIDTH, SPARK_HEIGHT = 120, 32


def sparkline_points(closes: list[Decimal]) -> str:
    """SVG polyline points for the closes, scaled into the sparkline box (a drawing, not a price)."""
    if len(closes) < 2:
        return ""
    low, high = min(closes), max(closes)
    span = (high - low) or Decimal(1)
    step = Decimal(SPARK_WIDTH) / (len(closes) - 1)
    return " ".join(
        f"{float(i * step):.1f},{float(SPARK_HEIGHT - (c - low) / span * SPARK_HEIGHT):.1f}"
        for i, c in enumerate(closes)
    )


@require_GET
def market_list(request: HttpRequest) -> HttpResponse:
    instruments = list(instrument_list())
    payloads = {p["symbol"]: p for p in live_payloads(instruments=instruments)}
    closes = recent_closes(instruments=instruments)
    annotations = market_annotations(i.symbol for i in instruments)
    rows = [
        {
            "instrument": i,
            "q": payloads.get(i.symbol),
            "spark": sparkline_points(closes.get(i.pk, [])),
            "closes": ",".join(str(c) for c in closes.get(i.pk, [])),
            "annotations": [values.get(i.symbol) for _, values in annotations],
        }
        for i in instruments
    ]
    return render(
        request,
        "marketdata/market_list.html",
        {
            "rows": rows,
            "annotation_columns": [column for column, _ in annotations],
            "slugs": ",".join(i.slug for i in instruments),
            "spark_size": (SPARK_WIDTH, SPARK_HEIGHT),
        },
    )


@require_GET
def market_detail(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        instrument = instrument_get(symbol=slug)
    except DomainError as exc:
        raise Http404(str(exc)) from exc
    if slug != instrument.slug:
        return redirect("market_detail", slug=instrument.slug)
    timeframe = request.GET.get("tf", "1m")
    if timeframe not in TIMEFRAMES:
        messages.warning(
            request, f"Unknown timeframe {timeframe!r}; showing 1m. Choose one of {', '.join(TIMEFRAMES)}."
        )
        timeframe = "1m"
    bars = candle_list(symbol=instrument.symbol, timeframe=timeframe, limit=500)
    payload = next(iter(live_payloads(instruments=[instrument])), None)
    facts = [(column, values.get(instrument.symbol)) for column, values in market_annotations([instrument.symbol])]
    return render(
        request,
        "marketdata/market_detail.html",
        {
            "instrument": instrument,
            "facts": facts,
            "actions": market_actions(instrument.symbol),
            "q": payload,
            "timeframe": timeframe,
            "timeframes": list(TIMEFRAMES),
            "timeframe_seconds": int(TIMEFRAMES[timeframe].total_seconds()),
            "recent_candles": list(reversed(bars[-8:])),  # the chart's text alternative
            "candles": [
                {
                    "time": int(b.open_time.timestamp()),
                    "open": str(b.open),
                    "high": str(b.high),
                    "low": str(b.low),
                    "close": str(b.close),
                    "volume": str(b.volume),
                }
                for b in bars
            ],
        },
    )
