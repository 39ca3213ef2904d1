"""Trading strategies as pure functions over candles (oldest first) -> one Decision for the last candle.

Each strategy declares the regimes it may buy in; the gatekeeper blocks a buy in any other regime. Sells
only ever reduce what a bot holds, so they are allowed in every regime a strategy lists for selling (all
three for the strategies here: blocking an exit in a falling market would add risk, not remove it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.errors import DomainError
from trading.choices import Regime, SignalAction
from trading.decisions.indicators import rsi, sma

ALL_REGIMES = frozenset({Regime.BULLISH, Regime.BEARISH, Regime.SIDEWAYS})


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: int
    minimum: int
    maximum: int
    help: str


@dataclass(frozen=True)
class Strategy:
    key: str
    label: str
    description: str
    decide: Callable[..., Decision]
    params: tuple[ParamSpec, ...]
    buy_regimes: frozenset[str]
    sell_regimes: frozenset[str] = field(default=ALL_REGIMES)

    def candles_needed(self, params: dict) -> int:
        return _CANDLES_NEEDED[self.key](params)

    def regimes_for(self, action: str) -> frozenset[str]:
        return self.buy_regimes if action == SignalAction.BUY else self.sell_regimes


def sma_crossover(candles: Sequence, *, fast: int = 9, slow: int = 21) -> Decision:
    """Buy when the fast SMA crosses above the slow one, sell when it crosses below."""
    closes = [c.close for c in candles]
    if len(closes) < slow + 1:
        return Decision(SignalAction.HOLD, f"needs {slow + 1} candles")
    fast_line, slow_line = sma(closes, fast), sma(closes, slow)
    before = fast_line[-2] - slow_line[-2]
    now = fast_line[-1] - slow_line[-1]
    if before <= 0 < now:
        return Decision(SignalAction.BUY, f"SMA{fast} crossed above SMA{slow}")
    if before >= 0 > now:
        return Decision(SignalAction.SELL, f"SMA{fast} crossed below SMA{slow}")
    return Decision(SignalAction.HOLD, "no crossover")


def rsi_mean_reversion(candles: Sequence, *, period: int = 14, oversold: int = 30, overbought: int = 70) -> Decision:
    """Buy when RSI comes back up through the oversold level, sell when it falls back through overbought."""
    closes = [c.close for c in candles]
    if len(closes) < period + 2:
        return Decision(SignalAction.HOLD, f"needs {period + 2} candles")
    values = rsi(closes, period)
    before, now = values[-2], values[-1]
    if before < oversold <= now:
        return Decision(SignalAction.BUY, f"RSI{period} rose through {oversold} ({now:.1f})")
    if before > overbought >= now:
        return Decision(SignalAction.SELL, f"RSI{period} fell through {overbought} ({now:.1f})")
    return Decision(SignalAction.HOLD, f"RSI{period} {now:.1f}")


def dca(candles: Sequence, *, every: int = 60) -> Decision:
    """Dollar-cost averaging: buy a fixed amount on every `every`-th candle of the clock (UTC)."""
    if len(candles) < 2:
        return Decision(SignalAction.HOLD, "needs 2 candles")
    period = (candles[-1].open_time - candles[-2].open_time).total_seconds()
    index = int(candles[-1].open_time.timestamp() // period)
    if index % every == 0:
        return Decision(SignalAction.BUY, f"scheduled buy (every {every} candles)")
    return Decision(SignalAction.HOLD, "between scheduled buys")


STRATEGIES: dict[str, Strategy] = {
    s.key: s
    for s in (
        Strategy(
            key="sma_crossover",
            label="SMA crossover",
            description="Trend following: buys when the fast moving average crosses above the slow one.",
            decide=sma_crossover,
            params=(
                ParamSpec("fast", 9, 2, 200, "Fast SMA length (candles)"),
                ParamSpec("slow", 21, 3, 400, "Slow SMA length (candles)"),
            ),
            buy_regimes=frozenset({Regime.BULLISH}),
        ),
        Strategy(
            key="rsi_mean_reversion",
            label="RSI mean reversion",
            description="Buys oversold dips and sells overbought rallies; avoids catching a falling market.",
            decide=rsi_mean_reversion,
            params=(
                ParamSpec("period", 14, 2, 100, "RSI length (candles)"),
                ParamSpec("oversold", 30, 1, 49, "Buy level"),
                ParamSpec("overbought", 70, 51, 99, "Sell level"),
            ),
            buy_regimes=frozenset({Regime.BULLISH, Regime.SIDEWAYS}),
        ),
        Strategy(
            key="dca",
            label="Dollar-cost averaging",
            description="Buys a fixed amount on a schedule, paused while the market is bearish.",
            decide=dca,
            params=(ParamSpec("every", 60, 1, 10_000, "Buy every N candles"),),
            buy_regimes=frozenset({Regime.BULLISH, Regime.SIDEWAYS}),
        ),
    )
}

_CANDLES_NEEDED: dict[str, Callable[[dict], int]] = {
    "sma_crossover": lambda p: p["slow"] + 1,
    "rsi_mean_reversion": lambda p: p["period"] * 3 + 2,
    "dca": lambda p: 2,
}


def strategy_get(key: str) -> Strategy:
    try:
        return STRATEGIES[key]
    except KeyError:
        raise DomainError(f"Unknown strategy {key!r}.", field="strategy") from None


def strategy_params_clean(key: str, params: dict | None) -> tuple[dict, str]:
    """Fill defaults, check bounds; returns (params, params_key) where params_key identifies the settings."""
    strategy = strategy_get(key)
    given = dict(params or {})
    unknown = set(given) - {p.name for p in strategy.params}
    if unknown:
        raise DomainError(f"{strategy.label} has no parameter {', '.join(sorted(unknown))}.", field="params")
    cleaned = {}
    for spec in strategy.params:
        raw = given.get(spec.name, spec.default)
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise DomainError(f"{spec.help} must be a whole number.", field="params") from None
        if not spec.minimum <= value <= spec.maximum:
            raise DomainError(f"{spec.help} must be between {spec.minimum} and {spec.maximum}.", field="params")
        cleaned[spec.name] = value
    if key == "sma_crossover" and cleaned["fast"] >= cleaned["slow"]:
        raise DomainError("The fast SMA must be shorter than the slow one.", field="params")
    params_key = ",".join(f"{name}={cleaned[name]}" for name in sorted(cleaned))
    return cleaned, params_key


def strategy_decide(key: str, candles: Sequence, params: dict) -> Decision:
    return strategy_get(key).decide(candles, **params)
