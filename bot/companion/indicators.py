"""Static definitions of the indicators and metrics traders ask about. Text only: no market figures.

The numbers in these texts (RSI's usual 14 periods and 70/30 levels...) are conventions of the
definition, not readings; they are returned by the indicator_explain tool, so an answer that repeats
them is grounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Indicator:
    name: str
    aliases: tuple[str, ...]
    text: str


INDICATORS: tuple[Indicator, ...] = (
    Indicator("RSI", ("rsi", "relative strength index", "relative strength"),
              "The Relative Strength Index compares the size of recent gains with recent losses over a "
              "window (usually 14 candles) and scales the result from 0 to 100. Readings above 70 are "
              "commonly read as overbought and below 30 as oversold; in strong trends it can stay there."),
    Indicator("SMA", ("sma", "simple moving average", "moving average", "ma"),
              "A simple moving average is the plain average of the last N closes. It smooths price and "
              "lags it; price above a rising SMA is a common sign of an uptrend."),
    Indicator("EMA", ("ema", "exponential moving average"),
              "An exponential moving average weights recent closes more than older ones, so it reacts "
              "faster than a simple moving average of the same length."),
    Indicator("MACD", ("macd", "moving average convergence divergence"),
              "MACD is the difference between a fast and a slow exponential moving average (usually 12 "
              "and 26 candles), with a signal line (a 9-candle EMA of it). The MACD crossing above its "
              "signal line is read as momentum turning up; crossing below, turning down."),
    Indicator("ADX", ("adx", "average directional index", "directional index"),
              "The Average Directional Index measures how strong a trend is, not its direction, from 0 "
              "to 100. Below about 20 the market is usually ranging; above 25 it is trending. Nexus's "
              "regime gatekeeper uses it with the SMA slope."),
    Indicator("SMA slope", ("sma slope", "slope"),
              "The SMA slope is how much a simple moving average changed over its last step, in percent. "
              "Positive means the average is rising; negative, falling. With ADX it tells the regime "
              "gatekeeper whether a pair is bullish, bearish or sideways."),
    Indicator("Regime", ("regime", "market regime", "regime gatekeeper", "gatekeeper"),
              "Nexus classifies each pair at every candle close as bullish, bearish or sideways from its "
              "SMA slope and ADX. Bots can be blocked from buying when the regime is against them."),
    Indicator("Bollinger Bands", ("bollinger", "bollinger bands", "bbands"),
              "Bollinger Bands are a moving average (usually 20 candles) with bands 2 standard deviations "
              "above and below it. The bands widen when volatility rises and narrow when it falls."),
    Indicator("ATR", ("atr", "average true range", "true range"),
              "The Average True Range is the average size of a candle's full range including gaps, "
              "usually over 14 candles. It measures volatility in price units, not direction."),
    Indicator("VWAP", ("vwap", "volume weighted average price"),
              "The volume-weighted average price is the average price paid over a session, each trade "
              "weighted by its size. Traders compare price with it to judge whether they buy cheap or dear."),
    Indicator("Max drawdown", ("drawdown", "max drawdown", "maximum drawdown"),
              "Maximum drawdown is the largest fall from a peak to a later low of the portfolio's value "
              "over the period, in percent. Deposits and withdrawals do not count as gains or losses."),
    Indicator("Time-weighted return", ("twr", "time weighted return", "time-weighted return"),
              "The time-weighted return chains the daily returns of the portfolio so that deposits and "
              "withdrawals do not count: it measures how the holdings did, not how much money was added."),
    Indicator("Volatility", ("volatility", "vol"),
              "Volatility on the dashboard is the annualized standard deviation of daily returns: how much "
              "the portfolio's value typically swings."),
    Indicator("Unrealized P&L", ("unrealized", "unrealized pnl", "unrealized p&l", "paper profit"),
              "Unrealized P&L is what an open position would gain or lose if sold at the current price: "
              "its market value minus its cost basis (FIFO lots)."),
    Indicator("Realized P&L", ("realized", "realized pnl", "realized p&l"),
              "Realized P&L is the profit or loss already locked in by sales, against the cost of the "
              "lots sold (first in, first out)."),
    Indicator("Cost basis", ("cost basis", "average cost", "avg cost", "basis"),
              "The cost basis is what the open lots of a position cost, fees included; the average cost "
              "is that divided by the quantity held."),
)  # fmt: skip


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9&]+", " ", text.lower()).strip()


_BY_ALIAS = {
    _key(alias): indicator for indicator in INDICATORS for alias in (indicator.name, *indicator.aliases)
}


def indicator_lookup(name: str) -> Indicator | None:
    return _BY_ALIAS.get(_key(name))


def indicator_in_text(text: str) -> Indicator | None:
    """The indicator a question names, longest alias first ("sma slope" before "sma")."""
    words = f" {_key(text)} "
    for alias in sorted(_BY_ALIAS, key=len, reverse=True):
        if len(alias) <= 2:  # "ma", "vol": only as whole words, and never inside other words
            if f" {alias} " in words and alias != "ma":
                return _BY_ALIAS[alias]
            continue
        if f" {alias} " in words:
            return _BY_ALIAS[alias]
    return None
