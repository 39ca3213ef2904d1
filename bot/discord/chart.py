"""A candlestick chart as a PNG, drawn server-side with Pillow from `marketdata.selectors.candle_list` (the
same stored candles as the market page): candles, volume bars underneath, price labels on the right and
times (UTC) along the bottom."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal

from PIL import Image, ImageDraw, ImageFont

from core.money import plain

WIDTH, HEIGHT = 900, 500
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 12, 96, 36, 30
VOLUME_SHARE = 0.2
BACKGROUND = (22, 26, 33)
GRID = (48, 54, 64)
TEXT = (210, 214, 222)
UP = (38, 166, 154)
DOWN = (239, 83, 80)
PRICE_TICKS = 5
TIME_TICKS = 5


def _price_label(value: Decimal, span: Decimal) -> str:
    places = 2 if span >= 10 else 4 if span >= Decimal("0.1") else 8
    return plain(value.quantize(Decimal(1).scaleb(-places)))


def candles_png(bars: Sequence, *, title: str, timeframe: str) -> bytes:
    """The bars (oldest first, each with open_time, open, high, low, close, volume) as a PNG image."""
    if not bars:
        raise ValueError("no candles to draw")
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    price_h = int(plot_h * (1 - VOLUME_SHARE)) - 8
    volume_top = MARGIN_TOP + price_h + 8
    volume_h = plot_h - price_h - 8

    high = max(Decimal(b.high) for b in bars)
    low = min(Decimal(b.low) for b in bars)
    span = high - low or (high or Decimal(1)) * Decimal("0.01")
    top, bottom = high + span * Decimal("0.05"), low - span * Decimal("0.05")
    max_volume = max(Decimal(b.volume) for b in bars) or Decimal(1)

    def y(price: Decimal) -> float:
        return MARGIN_TOP + float((top - Decimal(price)) / (top - bottom)) * price_h

    # Price grid and labels.
    for i in range(PRICE_TICKS + 1):
        level = bottom + (top - bottom) * Decimal(i) / PRICE_TICKS
        row = y(level)
        draw.line([(MARGIN_LEFT, row), (MARGIN_LEFT + plot_w, row)], fill=GRID)
        draw.text((MARGIN_LEFT + plot_w + 6, row - 6), _price_label(level, span), fill=TEXT, font=font)

    step = plot_w / len(bars)
    body = max(1.0, step * 0.7)
    for index, bar in enumerate(bars):
        centre = MARGIN_LEFT + step * index + step / 2
        colour = UP if bar.close >= bar.open else DOWN
        draw.line([(centre, y(bar.high)), (centre, y(bar.low))], fill=colour)
        upper, lower = y(max(bar.open, bar.close)), y(min(bar.open, bar.close))
        draw.rectangle([(centre - body / 2, upper), (centre + body / 2, max(lower, upper + 1))], fill=colour)
        height = float(Decimal(bar.volume) / max_volume) * volume_h
        draw.rectangle(
            [(centre - body / 2, volume_top + volume_h - height), (centre + body / 2, volume_top + volume_h)],
            fill=colour,
        )

    # Times along the bottom.
    fmt = "%d %b" if timeframe == "1d" else "%d %b %H:%M" if timeframe == "1h" else "%H:%M"
    for i in range(TIME_TICKS):
        index = min(len(bars) - 1, round(i * (len(bars) - 1) / max(TIME_TICKS - 1, 1)))
        column = MARGIN_LEFT + step * index + step / 2
        draw.line([(column, MARGIN_TOP), (column, volume_top + volume_h)], fill=GRID)
        label = bars[index].open_time.strftime(fmt)
        draw.text((max(MARGIN_LEFT, column - 20), HEIGHT - MARGIN_BOTTOM + 8), label, fill=TEXT, font=font)
    draw.text((MARGIN_LEFT + plot_w + 6, volume_top), "volume", fill=TEXT, font=font)

    last = bars[-1]
    draw.text(
        (MARGIN_LEFT, 10),
        f"{title}  {timeframe}  last {_price_label(Decimal(last.close), span)}  ({len(bars)} candles, UTC)",
        fill=TEXT,
        font=font,
    )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
