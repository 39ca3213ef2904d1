"""Technical indicators over Decimal series, written out (SMA, Wilder's RSI and ADX).

They are a few lines each; the maintained TA libraries (TA-Lib, pandas-ta, ta) pull in numpy/pandas and
work in floats, while every number here stays Decimal end to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from core.money import ZERO

HUNDRED = Decimal("100")


def sma(values: Sequence[Decimal], period: int) -> list[Decimal | None]:
    """Simple moving average; None until `period` values are in."""
    result: list[Decimal | None] = []
    window_sum = ZERO
    for index, value in enumerate(values):
        window_sum += value
        if index >= period:
            window_sum -= values[index - period]
        result.append(window_sum / period if index >= period - 1 else None)
    return result


def rsi(closes: Sequence[Decimal], period: int = 14) -> list[Decimal | None]:
    """Wilder's relative strength index, 0..100; None for the first `period` values."""
    result: list[Decimal | None] = [None] * len(closes)
    if len(closes) <= period:
        return result
    gains = ZERO
    losses = ZERO
    for index in range(1, period + 1):
        change = closes[index] - closes[index - 1]
        gains += max(change, ZERO)
        losses += max(-change, ZERO)
    average_gain, average_loss = gains / period, losses / period
    result[period] = _rsi_value(average_gain, average_loss)
    for index in range(period + 1, len(closes)):
        change = closes[index] - closes[index - 1]
        average_gain = (average_gain * (period - 1) + max(change, ZERO)) / period
        average_loss = (average_loss * (period - 1) + max(-change, ZERO)) / period
        result[index] = _rsi_value(average_gain, average_loss)
    return result


def _rsi_value(average_gain: Decimal, average_loss: Decimal) -> Decimal:
    if average_loss == 0:
        return HUNDRED if average_gain > 0 else Decimal("50")
    return HUNDRED - HUNDRED / (1 + average_gain / average_loss)


def adx(
    highs: Sequence[Decimal], lows: Sequence[Decimal], closes: Sequence[Decimal], period: int = 14
) -> list[Decimal | None]:
    """Wilder's average directional index (trend strength, 0..100, direction-free)."""
    count = len(closes)
    result: list[Decimal | None] = [None] * count
    if count < 2 * period + 1:
        return result
    true_ranges, plus_dm, minus_dm = [], [], []
    for index in range(1, count):
        up = highs[index] - highs[index - 1]
        down = lows[index - 1] - lows[index]
        plus_dm.append(up if up > down and up > 0 else ZERO)
        minus_dm.append(down if down > up and down > 0 else ZERO)
        true_ranges.append(
            max(highs[index] - lows[index], abs(highs[index] - closes[index - 1]), abs(lows[index] - closes[index - 1]))
        )
    smoothed_tr = sum(true_ranges[:period], ZERO)
    smoothed_plus = sum(plus_dm[:period], ZERO)
    smoothed_minus = sum(minus_dm[:period], ZERO)
    dx_values: list[Decimal] = []
    for index in range(period, len(true_ranges) + 1):
        if index > period:
            smoothed_tr = smoothed_tr - smoothed_tr / period + true_ranges[index - 1]
            smoothed_plus = smoothed_plus - smoothed_plus / period + plus_dm[index - 1]
            smoothed_minus = smoothed_minus - smoothed_minus / period + minus_dm[index - 1]
        if smoothed_tr == 0:
            dx_values.append(ZERO)
            continue
        plus_di = HUNDRED * smoothed_plus / smoothed_tr
        minus_di = HUNDRED * smoothed_minus / smoothed_tr
        total = plus_di + minus_di
        dx_values.append(ZERO if total == 0 else HUNDRED * abs(plus_di - minus_di) / total)
    # dx_values[i] belongs to candle index period + i; the first ADX averages `period` DX values.
    average = sum(dx_values[:period], ZERO) / period
    result[2 * period - 1] = average
    for offset in range(period, len(dx_values)):
        average = (average * (period - 1) + dx_values[offset]) / period
        result[period + offset] = average
    return result
