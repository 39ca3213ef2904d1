"""The offline provider: a deterministic planner that answers common questions from tool results alone.

It is the companion's provider when no OpenAI key is configured. It never calls the network and never
invents a figure: on the first turn of a question it reads the question and returns tool calls; once the
tool results are in the conversation it writes the answer from them, copying their figures verbatim.
What it does not understand, or what no tool can answer (advice on what to buy, predictions, anything
outside the member's Nexus data), it says plainly.

Understood: portfolio value and P&L, one position, prices, candle moves over a window, the regime,
performance by period, alerts (list, create, pause), bots (list, pause, resume), open or recent orders,
and what an indicator means. A short follow-up such as "and ETH?" reuses the previous question's intent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.companion.indicators import indicator_in_text
from bot.companion.providers.base import ProviderTurn, ToolCall
from core.money import plain

NOT_ADVICE = "Not investment advice."

HELP = (
    "I answer from your Nexus data: your portfolio and positions, prices and recent candles, the regime "
    "of a pair, your performance over a period, your alerts, bots and orders, and what an indicator means. "
    "I can also set up a price alert, pause an alert, or pause or resume a bot once you confirm. "
    'Try: "how is my BTC position?", "price of ETH", "my performance this month", "what is RSI?".'
)

OUT_OF_SCOPE_ADVICE = (
    "I can't tell you whether to buy or sell, or predict where a price will go: that would be investment "
    "advice, and I only report what your Nexus data shows. I can show you the price, the recent candles "
    "and the regime of a pair, or your position in it."
)

OUT_OF_SCOPE_OTHER = (
    "I can't answer that offline: I only answer questions about your Nexus data (portfolio, positions, "
    "prices, candles, regime, performance, alerts, bots, orders) and explain trading indicators."
)

NAMES = {
    "bitcoin": "BTC", "btc": "BTC", "xbt": "BTC",
    "ethereum": "ETH", "ether": "ETH", "eth": "ETH",
    "solana": "SOL", "sol": "SOL",
    "ripple": "XRP", "xrp": "XRP",
    "cardano": "ADA", "ada": "ADA", "dogecoin": "DOGE", "doge": "DOGE", "bnb": "BNB",
    "avalanche": "AVAX", "avax": "AVAX", "polkadot": "DOT", "chainlink": "LINK", "link": "LINK",
    "litecoin": "LTC", "ltc": "LTC", "tron": "TRX", "trx": "TRX", "polygon": "MATIC", "matic": "MATIC",
}  # fmt: skip
QUOTE_ASSETS = {"USDT", "USDC", "USD", "BUSD", "DAI", "EUR", "BTC", "ETH"}
# All-caps words that are not assets.
NOT_ASSETS = {
    "I", "A", "P", "L", "PNL", "RSI", "SMA", "EMA", "MACD", "ADX", "ATR", "VWAP", "TWR", "YTD", "UTC", "AI",
    "USD", "OK", "DM", "ID", "FIFO", "API", "EUR", "GBP", "ALL", "MY", "IS", "THE", "AND", "OR", "HOW",
}  # fmt: skip

ADVICE = re.compile(
    r"\b(should i (buy|sell|short|long|hold|invest|get out|exit)|is it (a )?good (time|idea) to|"
    r"(will|is) .{0,30}\b(go(ing)? (up|down)|moon|crash|dump|pump|rise|fall)\b|predict|prediction|"
    r"forecast|price target|recommend|financial advice|which coin|what (coin|token) should|best (coin|crypto))"
)
OTHER = re.compile(
    r"\b(weather|joke|poem|song|recipe|movie|football|soccer|news|president|election|translate|"
    r"write (me )?(a|an) (essay|story|email)|capital of|meaning of life|stock|stocks|nasdaq|s&p)\b"
)
HELPISH = re.compile(r"^\s*(hi|hello|hey|help|what can you do|who are you|\?)\b")
EXPLAIN = re.compile(r"\b(what('s| is| are| does)|explain|meaning|mean|means|define|definition|how does)\b")
PERIODS = [
    (re.compile(r"\b(all[- ]time|ever|since (i )?(started|start|inception|the beginning)|overall|in total)\b"),
     "ALL"),
    (re.compile(r"\b(ytd|year[- ]to[- ]date|this year)\b"), "YTD"),
    (re.compile(r"\b(last|past) (12 months|year)\b|\b1y\b|\byearly\b|\bannual\b"), "1Y"),
    (re.compile(r"\b(this|last|past) month\b|\b30 days\b|\b1m\b|\bmonthly\b"), "1M"),
    (re.compile(r"\b(this|last|past) week\b|\b7 days\b|\b1w\b|\bweekly\b"), "1W"),
    (re.compile(r"\b(today|daily|24 ?h(ours)?|1d|this day|since yesterday)\b"), "1D"),
]  # fmt: skip
WINDOW = re.compile(
    r"\b(?:last|past|over the last|over the past)\s+(\d{1,3})?\s*(minute|min|hour|day|week)s?\b"
)
FOLLOW_UP = re.compile(r"^\s*(and|what about|how about|same for|and for|now)\b")
LEVEL = re.compile(r"(?<![\w/])\$?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s*(k\b)?", re.IGNORECASE)


@dataclass
class Plan:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    text: str | None = None
    commentary: bool = False

    def add(self, tool: str, /, **arguments: Any) -> None:
        if (tool, arguments) not in self.calls:
            self.calls.append((tool, arguments))


def assets_in(question: str) -> list[str]:
    """The assets or pairs a question names, in order: "BTC/USDT", "ETH", ..."""
    found: list[str] = []
    for match in re.finditer(r"\b([A-Za-z]{2,10})\s*([/-])\s*([A-Za-z]{2,10})\b", question):
        base, separator, quote = match.group(1).upper(), match.group(2), match.group(3).upper()
        # "BTC/USDT", "eth/btc", "btc-usdt"; not "all-time", "time-weighted" or "year-to-date".
        if separator == "-" and quote not in QUOTE_ASSETS:
            continue
        pair = f"{base}/{quote}"
        if pair not in found:
            found.append(pair)
    covered = {part for pair in found for part in pair.split("/")}
    for word in re.findall(r"[A-Za-z][A-Za-z0-9]*", question):
        symbol = NAMES.get(word.lower())
        if symbol is None and word.isupper() and 2 <= len(word) <= 6 and word not in NOT_ASSETS:
            symbol = word
        if symbol and symbol not in covered and symbol not in found:
            found.append(symbol)
    return found


def _period(q: str) -> str | None:
    for pattern, period in PERIODS:
        if pattern.search(q):
            return period
    return None


def _window(q: str) -> tuple[str, int]:
    match = WINDOW.search(q)
    if not match:
        return "1h", 24
    count = int(match.group(1) or 1)
    unit = match.group(2)
    if unit in ("minute", "min"):
        return "1m", max(1, min(count, 500))
    if unit == "hour":
        return ("5m", 12) if count == 1 else ("1h", max(1, min(count, 500)))
    if unit == "week":
        return "1d", max(1, min(count * 7, 500))
    return ("1h", 24) if count == 1 else ("1d", max(1, min(count, 500)))


def _level(q: str, assets: list[str]) -> str | None:
    """The price level of "alert me when BTC goes above 70,000" (or 70k)."""
    for match in LEVEL.finditer(q):
        number = match.group(1).replace(",", "")
        if match.group(2):
            return plain(Decimal(number) * 1000)  # "70.25k" is 70250, exactly
        return number
    return None


def plan_question(question: str) -> Plan:
    """The tool calls (or the direct reply) for one question."""
    q = " ".join(question.lower().split())
    plan = Plan()
    assets = assets_in(question)
    asset = assets[0] if assets else None
    indicator = indicator_in_text(q)

    if not q or HELPISH.search(q) and len(q) < 40 and not assets:
        plan.text = HELP
        return plan
    if ADVICE.search(q):
        plan.text = OUT_OF_SCOPE_ADVICE
        return plan
    if OTHER.search(q):
        plan.text = OUT_OF_SCOPE_OTHER
        return plan

    # Writes: proposed, confirmed by the member.
    wants_alert = re.search(
        r"\b(alert|notify|ping|tell|let) me\b|\b(create|set|add|make|new|put)( up)?( an?)?( price)? alert\b",
        q,
    )
    pausing = re.search(r"\b(pause|disable|stop|mute|halt|turn off|switch off|suspend)\b", q)
    resuming = re.search(r"\b(resume|restart|unpause|re-?enable|enable|turn on|switch on|start)\b", q)
    if "bot" in q and (pausing or resuming):
        plan.add("bots_list")
        plan.text = "pick-bot"  # the second turn picks the bot from the list, or asks which
        return plan
    if "alert" in q and pausing:
        number = re.search(r"(?:#|alert\s+(?:no\.?\s*|number\s*)?)(\d{1,12})\b", q)
        if number:
            plan.add("alert_pause", alert_id=int(number.group(1)))
        elif asset:
            plan.add("alert_pause", pair=asset)
        else:
            plan.add("alerts_list")
            plan.text = "pick-alert"
        return plan
    if wants_alert and not re.search(r"\b(list|show|my alerts|which alerts|what alerts)\b", q):
        direction = None
        if re.search(r"\b(below|under|drops?|falls?|dips?|less than|lower than|beneath)\b", q):
            direction = "below"
        elif re.search(r"\b(above|over|rises?|exceeds?|more than|higher than|breaks?|tops?)\b", q):
            direction = "above"
        elif re.search(r"\b(cross(es)?|hits?|reach(es)?|touch(es)?|gets? to)\b", q):
            direction = "cross"
        level = _level(q, assets)
        if asset and direction and level:
            plan.add("alert_create", pair=asset, direction=direction, level=level)
            return plan
        missing = [
            label
            for label, value in (
                ("the pair", asset),
                ("above or below", direction),
                ("the price level", level),
            )
            if not value
        ]
        plan.text = (
            "To set a price alert I need "
            + ", ".join(missing)
            + '. Say it like this: "alert me when BTC goes above" followed by the price.'
        )
        return plan

    # Reads.
    mine = re.search(r"\b(my|i|i'm|am i|mine|do i|have i)\b", q)
    # "What is RSI?" is a definition; "what is my unrealized P&L?" asks for the member's own figure.
    defining = re.search(r"\b(mean|means|meaning|explain|define|definition)\b", q) is not None
    explaining = indicator is not None and bool(EXPLAIN.search(q)) and (defining or not (asset or mine))
    if explaining:
        plan.add("indicator_explain", name=indicator.name)
        if not asset:
            return plan
    period = _period(q)
    if re.search(r"\bbots?\b", q):
        plan.add("bots_list")
    if re.search(r"\borders?\b|\bfills?\b|\btrades?\b", q):
        scope = "open" if re.search(r"\b(open|pending|working|active|resting|unfilled)\b", q) else "recent"
        plan.add("recent_orders", scope=scope)
    if re.search(r"\balerts?\b", q):
        state = "armed" if re.search(r"\b(armed|active)\b", q) else None
        plan.add("alerts_list", **({"state": state} if state else {}))
    if re.search(r"\b(perform\w*|return|returns|twr|drawdown|volatility)\b", q) or (
        period
        and re.search(r"\b(made|make|lost|lose|gain|gained|profit|p&l|pnl|p/l|up|down|doing|did)\b", q)
        and not asset
    ):
        plan.add("performance", period=period or "1D")
    commentary = re.search(
        r"\b(outlook|commentary|sentiment|looking|look like|how is the market|market doing|overview|analysis"
        r"|analyse|analyze|momentum)\b",
        q,
    )
    if asset and re.search(r"\b(regime|trend|trending|bullish|bearish|sideways|gatekeeper)\b", q):
        plan.add("regime", pair=asset)
    if (
        asset
        and re.search(
            r"\b(candles?|high|low|range|moved?|movement|change|changed|volatile|chart)\b|"
            r"\b(last|past) \d*\s*(minute|min|hour|day|week)s?\b",
            q,
        )
        and not mine
    ):
        interval, lookback = _window(q)
        plan.add("candles_summary", pair=asset, interval=interval, lookback=lookback)
    if asset and commentary and not mine:
        interval, lookback = _window(q)
        plan.add("price", pair=asset)
        plan.add("candles_summary", pair=asset, interval=interval, lookback=lookback)
        plan.add("regime", pair=asset)
        plan.commentary = True
    asks_price = re.search(
        r"\b(price|prices|trading at|quote|how much is|how much does|cost|costs|worth|bid|ask"
        r"|at what|rate|value of (a|one))\b",
        q,
    )
    position_words = re.search(
        r"\b(position|holding|holdings|hold|own|bag|stack|exposure|average cost|avg cost"
        r"|cost basis|entry|unrealized|unrealised|realized|realised|p&l|pnl|profit|loss"
        r"|up on|down on)\b",
        q,
    )
    if asset and (position_words or (mine and not asks_price)):
        for name in assets[:3]:
            plan.add("position", symbol=name)
    elif asset and (asks_price or not plan.calls):
        for name in assets[:3]:
            plan.add("price", pair=name)
    if (
        not asset
        and re.search(
            r"\b(portfolio|balance|balances|net worth|account|holdings|positions|cash|worth|total value"
            r"|allocation|exposure|unrealized|unrealised|realized|realised|p&l|pnl)\b",
            q,
        )
        and not any(name == "performance" for name, _ in plan.calls)
    ):
        plan.add("portfolio_summary")
    if not plan.calls:
        if indicator is not None:
            plan.add("indicator_explain", name=indicator.name)
        elif mine and re.search(r"\b(doing|going|up|down|made|lost)\b", q):
            plan.add("performance", period=period or "1D")
    return plan


# --- composing answers from tool results --------------------------------------------------------------


def _error(tool: str, result: dict[str, Any]) -> str:
    return f"I couldn't look that up: {result['error']}"


def _position(result: dict[str, Any], _: dict) -> str:
    if not result.get("open"):
        return result.get("note", "No open position.")
    base = result["symbol"].split("/")[0]
    price_note = {
        "stale": " (stale: no update from the feed for a while)",
        "last trade": " (no live quote: the price of your last trade)",
    }.get(result["price_source"], "")
    parts = [
        f"Your {result['symbol']} position in {result['portfolio']}: {result['quantity']} {base}",
        f"at an average cost of {result['average_cost']} {result['pnl_currency']}.",
        f"Price {result['price']} {result['pnl_currency']}{price_note}"
        + (f", {result['change_24h_pct']} over 24h" if result.get("change_24h_pct") else "")
        + ".",
    ]
    if result.get("value") is not None:
        parts.append(f"Value {result['value']} {result['value_currency']}.")
    if result.get("unrealized_pnl") is not None:
        parts.append(
            f"Unrealized P&L {result['unrealized_pnl']} {result['pnl_currency']}"
            + (f" ({result['unrealized_pct']})" if result.get("unrealized_pct") else "")
            + ";"
        )
    parts.append(f"realized P&L {result['realized_pnl']} {result['pnl_currency']}.")
    if result.get("weight_pct"):
        parts.append(f"It is {result['weight_pct']} of the portfolio.")
    return " ".join(parts)


def _portfolio(result: dict[str, Any], _: dict) -> str:
    base = result["base_currency"]
    text = (
        f"{result['portfolio']} is worth {result['total_value']} {base}: positions {result['positions_value']}"
        f" and cash {result['cash_value']}. Unrealized P&L {result['unrealized_pnl']} {base}, realized"
        f" {result['realized_pnl']} {base}. Today: {result['today_gain']} {base}"
        + (f" ({result['today_return_pct']})" if result.get("today_return_pct") else "")
        + "."
    )
    lines = [
        f"- {p['symbol']}: {p['quantity']}, value {p['value'] or 'unpriced'}"
        + (f", unrealized {p['unrealized_pnl']} {p['pnl_currency']}" if p.get("unrealized_pnl") else "")
        for p in result["positions"][:10]
    ]
    if lines:
        text += "\nOpen positions:\n" + "\n".join(lines)
    else:
        text += " No open positions."
    if result.get("unpriced"):
        text += "\nWithout a price (not in the total): " + ", ".join(result["unpriced"]) + "."
    return text


def _price(result: dict[str, Any], _: dict) -> str:
    if result.get("price") is None:
        return f"{result['pair']}: {result.get('note', 'no price yet')}"
    text = f"{result['pair']} is at {result['price']} {result['currency']}"
    if result.get("change_24h_pct"):
        text += f" ({result['change_24h_pct']} over 24h)"
    text += f", as of {result['updated_at']}" if result.get("updated_at") else ""
    if result.get("bid") and result.get("ask"):
        text += f"; bid {result['bid']}, ask {result['ask']}"
    if result.get("stale"):
        text += "; the feed has not updated it for a while, so it may be stale"
    return text + "."


def _candles(result: dict[str, Any], _: dict) -> str:
    if not result.get("bars"):
        return f"{result['pair']}: {result.get('note', 'no candles stored yet')}"
    return (
        f"Over the last {result['bars']} {result['interval']} candles ({result['from']} to {result['to']}), "
        f"{result['pair']} went from {result['open']} to {result['close']} ({result['change_pct']}), "
        f"with a high of {result['high']} and a low of {result['low']}."
    )


def _regime(result: dict[str, Any], _: dict) -> str:
    if not result.get("regime"):
        return f"The regime gatekeeper has not classified {result['pair']} yet."
    return (
        f"The regime gatekeeper reads {result['pair']} as {result['regime']} on the {result['timeframe']} "
        f"candles (SMA slope {result['sma_slope_pct']}, ADX {result['adx']}) as of {result['as_of']}."
    )


def _performance(result: dict[str, Any], _: dict) -> str:
    since = result["from"]
    text = (
        f"{result['portfolio']}, {result['period_label'].lower()} (since {since}): gain {result['gain']} "
        f"{result['currency']}"
    )
    if result.get("return_pct"):
        text += f", return {result['return_pct']}"
    if result.get("time_weighted_return_pct"):
        text += f", time-weighted {result['time_weighted_return_pct']}"
    text += f". Value went from {result['start_value']} to {result['end_value']} {result['currency']}"
    text += f" with {result['net_deposits']} {result['currency']} of net deposits."
    if result.get("max_drawdown_pct"):
        text += f" Max drawdown {result['max_drawdown_pct']}."
    if not result.get("return_pct"):
        text += " There is not enough history yet for a return over this period."
    return text


def _alerts(result: dict[str, Any], _: dict) -> str:
    if not result["count"]:
        return "You have no alerts."
    lines = [
        f"- #{a['id']} {a['summary']} ({a['state'].lower()}"
        + (f", fired {a['fired_count']} times" if a["fired_count"] else "")
        + ")"
        for a in result["alerts"]
    ]
    return (
        f"You have {result['count']} alerts:\n" + "\n".join(lines)
        if result["count"] != 1
        else ("You have one alert:\n" + "\n".join(lines))
    )


def _bots(result: dict[str, Any], _: dict) -> str:
    if not result["count"]:
        return "You have no bots."
    lines = [
        f"- {b['name']}: {b['pair']}, {b['strategy']} on {b['timeframe']}, {b['status'].lower()}; holds "
        f"{b['position_quantity']}, realized P&L {b['realized_pnl']} {b['pnl_currency']}"
        for b in result["bots"]
    ]
    head = "You have one bot:" if result["count"] == 1 else f"You have {result['count']} bots:"
    return head + "\n" + "\n".join(lines)


def _orders(result: dict[str, Any], _: dict) -> str:
    if not result["count"]:
        return "You have no open orders." if result["scope"] == "open" else "You have no orders yet."
    lines = []
    for o in result["orders"]:
        line = f"- {o['side']} {o['quantity']} {o['pair']} {o['type'].lower()}"
        if o.get("price"):
            line += f" at {o['price']}"
        line += f": {o['status'].lower()}"
        if o.get("average_price"):
            line += f", filled {o['filled_quantity']} at {o['average_price']}"
        line += f" ({o['created_at']})"
        lines.append(line)
    head = "Your open orders:" if result["scope"] == "open" else "Your most recent orders:"
    return head + "\n" + "\n".join(lines)


def _indicator(result: dict[str, Any], _: dict) -> str:
    return f"{result['name']}: {result['definition']}"


def _proposal(result: dict[str, Any], _: dict) -> str:
    return f"{result['summary']}. Confirm to go ahead or cancel; nothing changes until you confirm."


COMPOSERS = {
    "position": _position,
    "portfolio_summary": _portfolio,
    "price": _price,
    "candles_summary": _candles,
    "regime": _regime,
    "performance": _performance,
    "alerts_list": _alerts,
    "bots_list": _bots,
    "recent_orders": _orders,
    "indicator_explain": _indicator,
    "alert_create": _proposal,
    "alert_pause": _proposal,
    "bot_pause": _proposal,
    "bot_resume": _proposal,
}


# --- the provider -------------------------------------------------------------------------------------


def _parse(content: Any) -> dict[str, Any]:
    if isinstance(content, dict):
        return content
    try:
        value = json.loads(content or "{}")
    except ValueError:
        return {"error": str(content)}
    return value if isinstance(value, dict) else {"result": value}


class OfflineProvider:
    """Provider (base.py) without a model: plans tool calls from the question, answers from their results."""

    name = "offline"
    local = True  # answers in-process: the service keeps its database connection across turns

    def complete(self, *, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ProviderTurn:
        last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
        if last_user is None:
            return ProviderTurn(text=HELP)
        question = str(messages[last_user].get("content") or "")
        turn = messages[last_user + 1 :]
        results = self._results(turn)
        plan = self._plan(messages[:last_user], question)
        available = {t["function"]["name"] for t in tools if t.get("type") == "function"}
        if not results:
            if plan.text and not plan.calls:
                return ProviderTurn(text=plan.text)
            calls = [(n, a) for n, a in plan.calls if n in available]
            if not calls:
                return ProviderTurn(text=plan.text or HELP)
            return ProviderTurn(text=None, tool_calls=self._calls(calls, round_=0))
        follow = self._follow_up(question, plan, results, available)
        if follow:
            rounds = sum(1 for m in turn if m.get("role") == "assistant" and m.get("tool_calls"))
            return ProviderTurn(text=None, tool_calls=self._calls(follow, round_=rounds))
        return ProviderTurn(text=self._compose(results, plan))

    # The question, or for a bare follow-up ("and ETH?") the previous question's intent with its asset.
    def _plan(self, earlier: list[dict[str, Any]], question: str) -> Plan:
        plan = plan_question(question)
        assets = assets_in(question)
        bare = FOLLOW_UP.search(question.lower()) is not None and len(question.split()) <= 6
        if not assets or not (bare or not plan.calls):
            return plan
        for message in reversed(earlier):
            if message.get("role") != "user":
                continue
            previous = str(message.get("content") or "")
            old_assets = assets_in(previous)
            if not old_assets:
                continue
            candidate = plan_question(
                previous.replace(old_assets[0], assets[0]).replace(old_assets[0].lower(), assets[0])
            )
            if candidate.calls:
                return candidate
            break
        return plan

    @staticmethod
    def _calls(calls: list[tuple[str, dict[str, Any]]], *, round_: int) -> list[ToolCall]:
        return [
            ToolCall(id=f"call_{round_}_{n}_{name}", name=name, arguments=args)
            for n, (name, args) in enumerate(calls)
        ]

    @staticmethod
    def _results(turn: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(tool name, arguments, result) for each tool result of this question, in order."""
        calls: dict[str, tuple[str, dict[str, Any]]] = {}
        results = []
        for message in turn:
            if message.get("role") == "assistant":
                for call in message.get("tool_calls") or []:
                    function = call.get("function", {})
                    calls[call.get("id")] = (function.get("name", ""), _parse(function.get("arguments")))
            elif message.get("role") == "tool":
                name, arguments = calls.get(message.get("tool_call_id"), ("", {}))
                results.append((name, arguments, _parse(message.get("content"))))
        return results

    @staticmethod
    def _follow_up(question: str, plan: Plan, results, available) -> list[tuple[str, dict[str, Any]]]:
        """A second round for writes that need a lookup first: which bot to pause or resume."""
        q = question.lower()
        done = {name for name, _, _ in results}
        if "bots_list" not in done or done & {"bot_pause", "bot_resume"} or "bot" not in q:
            return []
        pausing = re.search(r"\b(pause|disable|stop|halt|turn off|switch off|suspend)\b", q)
        resuming = re.search(r"\b(resume|restart|unpause|re-?enable|enable|turn on|switch on|start)\b", q)
        if not (pausing or resuming):
            return []
        tool = (
            "bot_resume"
            if resuming and not re.search(r"\bpause\b", q.replace("unpause", ""))
            else "bot_pause"
        )
        listed = next(r for name, _, r in results if name == "bots_list")
        bots = listed.get("bots") or []
        chosen = [b for b in bots if b["name"].lower() in q]
        if not chosen:
            assets = assets_in(question)
            chosen = [
                b for b in bots if assets and (b["pair"] == assets[0] or b["pair"].split("/")[0] == assets[0])
            ]
        if not chosen and len(bots) == 1:
            chosen = bots
        if len(chosen) != 1 or tool not in available:
            return []
        return [(tool, {"bot_id": chosen[0]["id"]})]

    @staticmethod
    def _compose(results, plan: Plan) -> str:
        proposals = [
            (n, a, r)
            for n, a, r in results
            if n in ("alert_create", "alert_pause", "bot_pause", "bot_resume")
        ]
        if proposals:
            results = proposals
        elif plan.text == "pick-alert":
            listed = next((r for n, _, r in results if n == "alerts_list"), {})
            body = (
                COMPOSERS["alerts_list"](listed, {})
                if "error" not in listed
                else _error("alerts_list", listed)
            )
            return body + '\nSay which one to pause, for example "pause alert #" followed by its number.'
        elif plan.text == "pick-bot":
            listed = next((r for n, _, r in results if n == "bots_list"), {})
            body = (
                COMPOSERS["bots_list"](listed, {}) if "error" not in listed else _error("bots_list", listed)
            )
            return body + "\nSay which bot, by its name."
        sections = []
        for name, _arguments, result in results:
            if "error" in result:
                sections.append(_error(name, result))
                continue
            composer = COMPOSERS.get(name)
            if composer is not None:
                sections.append(composer(result, _arguments))
        if not sections:
            return HELP
        text = "\n\n".join(dict.fromkeys(sections))
        market = {"regime", "candles_summary"} & {n for n, _, r in results if "error" not in r}
        if plan.commentary or market:
            text += f"\n\n{NOT_ADVICE}"
        return text
