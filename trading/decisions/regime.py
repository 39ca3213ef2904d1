"""The regime gatekeeper's classifier: bullish, bearish or sideways, from a pair's candles.

Method (docs/trading.md): on `REGIME_TIMEFRAME` candles (one hour by default),
- trend direction is the slope of the close's SMA(`sma_period`) over the last `slope_lookback` bars, in
  percent of the earlier SMA value;
- trend strength is Wilder's ADX(`adx_period`).
A pair is bullish when ADX >= `adx_threshold` and the slope >= +`slope_threshold_pct`, bearish when ADX >=
`adx_threshold` and the slope <= -`slope_threshold_pct`, sideways otherwise (weak or flat trend). Too few
candles to tell is sideways.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from trading.choices import Regime
from trading.decisions.indicators import adx, sma

REGIME_TIMEFRAME = "1h"


@dataclass(frozen=True)
class RegimeParams:
    sma_period: int = 48
    slope_lookback: int = 24
    adx_period: int = 14
    adx_threshold: Decimal = Decimal("20")
    slope_threshold_pct: Decimal = Decimal("1")

    @property
    def candles_needed(self) -> int:
        return max(self.sma_period + self.slope_lookback, 2 * self.adx_period + 1)


@dataclass(frozen=True)
class RegimeResult:
    regime: str
    sma_slope_pct: Decimal
    adx: Decimal


def regime_classify(candles: Sequence, params: RegimeParams = RegimeParams()) -> RegimeResult:
    """Classify from candles (objects with high, low, close; oldest first) as of the last one."""
    if len(candles) < params.candles_needed:
        return RegimeResult(regime=Regime.SIDEWAYS, sma_slope_pct=Decimal("0"), adx=Decimal("0"))
    closes = [c.close for c in candles]
    averages = sma(closes, params.sma_period)
    now, before = averages[-1], averages[-1 - params.slope_lookback]
    slope_pct = (now - before) / before * 100
    strength = adx([c.high for c in candles], [c.low for c in candles], closes, params.adx_period)[-1]
    if strength >= params.adx_threshold and slope_pct >= params.slope_threshold_pct:
        regime = Regime.BULLISH
    elif strength >= params.adx_threshold and slope_pct <= -params.slope_threshold_pct:
        regime = Regime.BEARISH
    else:
        regime = Regime.SIDEWAYS
    return RegimeResult(
        regime=regime, sma_slope_pct=slope_pct.quantize(Decimal("0.000001")), adx=strength.quantize(Decimal("0.000001"))
    )
