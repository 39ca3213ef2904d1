"""One tick, rendered once: the JSON programs receive and the HTML fragments pages swap in (HTMX OOB).

The feed builds the payload and renders it once per symbol and publish; every consumer forwards the
same strings. Pages render their first state from the same payload and templates, so a live update and
a reload look the same.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.loader import render_to_string

from core.money import plain
from marketdata.types import CandleBar, change_pct

# The fragment kinds a page can subscribe to (query `?view=`): the markets table's cells, and a
# self-contained ticker any page can show any number of times.
VIEWS = {"row": "marketdata/oob/row.html", "ticker": "marketdata/oob/ticker.html"}
MESSAGE_TYPE = "market.tick"


def _plain_or_none(value: Decimal | None) -> str | None:
    return None if value is None else plain(value)


def _display(value: Decimal | None, places: int) -> str:
    if value is None:
        return "—"
    return intcomma(f"{value.quantize(Decimal(1).scaleb(-places)):f}")


def group_name(slug: str) -> str:
    return f"market.{slug}"


ALL_GROUP = "market.all"


def tick_payload(
    *,
    symbol: str,
    seq: int,
    price: Decimal,
    previous_price: Decimal | None,
    bid: Decimal | None,
    ask: Decimal | None,
    open_24h: Decimal | None,
    high_24h: Decimal | None,
    low_24h: Decimal | None,
    volume_24h: Decimal | None,
    at: datetime,
    updated_at: datetime,
    stale: bool,
    stale_after: int,
    precision: int,
    candle: CandleBar | None,
    received_at: float | None = None,
) -> dict:
    """The JSON a program receives for a symbol (Decimals as strings) plus display strings for templates."""
    change = change_pct(price=price, reference=open_24h)
    if previous_price is None or price == previous_price:
        direction = ""
    else:
        direction = "up" if price > previous_price else "down"
    return {
        "type": "tick",
        "symbol": symbol,
        "slug": symbol.replace("/", "-"),
        "seq": seq,
        "price": _plain_or_none(price),
        "previous_price": _plain_or_none(previous_price),
        "bid": _plain_or_none(bid),
        "ask": _plain_or_none(ask),
        "change_pct": _plain_or_none(change),
        "open_24h": _plain_or_none(open_24h),
        "high_24h": _plain_or_none(high_24h),
        "low_24h": _plain_or_none(low_24h),
        "volume_24h": _plain_or_none(volume_24h),
        "at": at.isoformat(),
        "updated_at": updated_at.isoformat(),
        "stale": stale,
        "stale_after": stale_after,
        "candle": None
        if candle is None
        else {
            "t": int(candle.open_time.timestamp()),
            "o": plain(candle.open),
            "h": plain(candle.high),
            "l": plain(candle.low),
            "c": plain(candle.close),
            "v": plain(candle.volume),
        },
        "received_at": received_at,
        "display": {
            "price": _display(price, precision),
            "change": "—" if change is None else f"{change:+.2f}%",
            "change_class": "" if not change else ("up" if change > 0 else "down"),
            "direction": direction,
            "volume": _display(volume_24h, 2),
            "high": _display(high_24h, precision),
            "low": _display(low_24h, precision),
            "updated_ts": updated_at.timestamp(),
        },
    }


def render_fragments(data: dict) -> dict[str, str]:
    return {view: render_to_string(template, {"q": data, "oob": True}) for view, template in VIEWS.items()}


def channel_message(data: dict) -> dict:
    """What goes on the channel layer: the data, its JSON and its fragments, each produced once."""
    program = {k: v for k, v in data.items() if k != "display"}
    return {
        "type": MESSAGE_TYPE,
        "symbol": data["symbol"],
        "slug": data["slug"],
        "seq": data["seq"],
        "data": data,
        "json": json.dumps(program, separators=(",", ":")),
        "html": render_fragments(data),
    }


def with_stale(data: dict, *, stale: bool) -> dict:
    return {**data, "stale": stale}
