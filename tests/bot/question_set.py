"""A question set: things traders ask the companion, the tools each should call, and the facts its answer
must contain, checked on seeded data (tests/bot/seed.py).

Facts in braces are computed from the seeded account the way the dashboard computes and formats them
(`portfolios.live.live_context` and the dashboard's template filters), not copied from the tools:
    {position:BTC:quantity}   a position column as the positions table shows it
    {portfolio:total}         the dashboard's figures
    {performance:1M:gain}     the performance table's figures for a period
Other facts are literal text (case-insensitive).

In the suite (tests/bot/test_question_set.py) the set runs against the offline provider and every
question must pass. Against an OpenAI-compatible server:

    OPENAI_API_KEY=... [OPENAI_BASE_URL=...] [OPENAI_MODEL=...] python -m tests.bot.question_set --provider openai

runs the same test with the configured provider and reports how many pass (a model may phrase
differently, so there it reports rather than requires).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field

PROVIDER_ENV = "COMPANION_QUESTION_SET_PROVIDER"


@dataclass(frozen=True)
class Question:
    text: str
    tools: tuple[str, ...] = ()  # each must be called (others may be too)
    facts: tuple[str, ...] = ()  # each must appear in the answer
    confirmation: bool = False  # a proposed write, waiting for the member
    after: str | None = None  # asked first in the same conversation (follow-ups)
    topic: str = ""


def Q(text, tools=(), facts=(), **kw) -> Question:  # noqa: N802 - reads as a table row
    return Question(text, tuple(tools), tuple(facts), **kw)


QUESTIONS: list[Question] = [
    # --- positions
    Q("How is my BTC position?", ["position"],
      ["{position:BTC:quantity}", "{position:BTC:value}", "{position:BTC:unrealized}"], topic="position"),
    Q("How much ETH do I have?", ["position"], ["{position:ETH:quantity} ETH"], topic="position"),
    Q("What's my average cost on bitcoin?", ["position"], ["{position:BTC:average_cost}"], topic="position"),
    Q("What is my unrealized P&L on ETH?", ["position"], ["{position:ETH:unrealized}", "{position:ETH:unrealized_pct}"],
      topic="position"),
    Q("What's my realized profit on BTC?", ["position"], ["{position:BTC:realized}"], topic="position"),
    Q("How much is my BTC holding worth?", ["position"], ["{position:BTC:value}"], topic="position"),
    Q("Do I own any SOL?", ["position"], ["No open SOL/USDT position"], topic="position"),
    Q("show me my BTC/USDT position", ["position"], ["{position:BTC:quantity}", "{position:BTC:price}"],
      topic="position"),
    Q("What percentage of my portfolio is ETH?", ["position"], ["{position:ETH:weight}"], topic="position"),
    Q("am I up on my ETH?", ["position"], ["{position:ETH:unrealized_pct}"], topic="position"),
    # --- portfolio
    Q("What is my portfolio worth?", ["portfolio_summary"], ["{portfolio:total}"], topic="portfolio"),
    Q("What's my cash balance?", ["portfolio_summary"], ["cash {portfolio:cash}"], topic="portfolio"),
    Q("Give me an overview of my holdings", ["portfolio_summary"],
      ["{portfolio:total}", "BTC/USDT", "ETH/USDT"], topic="portfolio"),
    Q("What is my total unrealized P&L?", ["portfolio_summary"], ["{portfolio:unrealized}"], topic="portfolio"),
    Q("How much have I realized in total?", ["portfolio_summary"], ["{portfolio:realized}"], topic="portfolio"),
    Q("What's my net worth?", ["portfolio_summary"], ["{portfolio:total}"], topic="portfolio"),
    # --- performance
    Q("How is my portfolio performing this month?", ["performance"], ["{performance:1M:gain}"], topic="performance"),
    Q("How much did I make this week?", ["performance"], ["{performance:1W:gain}"], topic="performance"),
    Q("What's my return year to date?", ["performance"], ["{performance:YTD:gain}"], topic="performance"),
    Q("What is my all-time performance?", ["performance"], ["{performance:ALL:gain}"], topic="performance"),
    Q("How did I do today?", ["performance"], ["{performance:1D:gain}"], topic="performance"),
    Q("What is my max drawdown over the last year?", ["performance"], ["1 year"], topic="performance"),
    Q("performance over the past 12 months", ["performance"], ["{performance:1Y:gain}"], topic="performance"),
    # --- prices
    Q("What's the price of ETH?", ["price"], ["3,500.50"], topic="price"),
    Q("How much is bitcoin?", ["price"], ["67,412.35", "+2.14%"], topic="price"),
    Q("BTC price", ["price"], ["67,412.35"], topic="price"),
    Q("what is SOL trading at?", ["price"], ["150.25"], topic="price"),
    Q("Price of XRP?", ["price"], ["Unknown instrument"], topic="price"),
    Q("what's the bid and ask on BTC/USDT?", ["price"], ["bid 67,412.30", "ask 67,412.40"], topic="price"),
    Q("ETH quote please", ["price"], ["3,500.50", "−2.76%"], topic="price"),
    # --- candles
    Q("How has BTC moved over the last 24 hours?", ["candles_summary"], ["65,775.00", "67,525.00", "+2.66%"], topic="candles"),
    Q("What was the BTC high over the last 48 hours?", ["candles_summary"], ["67,625.00"], topic="candles"),
    Q("BTC range over the past 12 hours", ["candles_summary"], ["66,575.00", "67,625.00"], topic="candles"),
    Q("Show me BTC candles for the last 2 days", ["candles_summary"], ["63,975.00", "67,525.00"], topic="candles"),
    Q("how volatile has ETH been over the last week", ["candles_summary"], ["No candles stored yet"],
      topic="candles"),
    # --- regime and commentary
    Q("What's the regime on BTC?", ["regime"], ["Bullish", "0.42%", "31.3", "Not investment advice"],
      topic="regime"),
    Q("Is BTC bullish or bearish?", ["regime"], ["Bullish"], topic="regime"),
    Q("What is the trend for BTC/USDT?", ["regime"], ["Bullish"], topic="regime"),
    Q("regime for ETH", ["regime"], ["not classified"], topic="regime"),
    Q("How is BTC looking?", ["price", "candles_summary", "regime"],
      ["67,412.35", "Bullish", "Not investment advice."], topic="regime"),
    # --- alerts
    Q("List my alerts", ["alerts_list"], ["BTC/USDT rises above 80,000.00", "ETH/USDT falls below 3,000.00"],
      topic="alerts"),
    Q("What alerts do I have?", ["alerts_list"], ["BTC/USDT rises above 80,000.00"], topic="alerts"),
    Q("show my armed alerts", ["alerts_list"], ["ETH/USDT falls below 3,000.00"], topic="alerts"),
    Q("Alert me when BTC goes above 100,000", ["alert_create"], ["BTC/USDT rises above 100,000.00"],
      confirmation=True, topic="alerts"),
    Q("Set an alert for ETH below 3,200", ["alert_create"], ["ETH/USDT falls below 3,200.00"], confirmation=True,
      topic="alerts"),
    Q("notify me when SOL crosses 175", ["alert_create"], ["SOL/USDT crosses 175.00"], confirmation=True,
      topic="alerts"),
    Q("pause my ETH alert", ["alert_pause"], ["ETH/USDT falls below 3,000.00"], confirmation=True, topic="alerts"),
    Q("create an alert for BTC", [], ["above or below", "the price level"], topic="alerts"),
    # --- bots
    Q("List my bots", ["bots_list"], ["BTC trend", "ETH dca"], topic="bots"),
    Q("Which of my bots are running?", ["bots_list"], ["BTC trend", "running"], topic="bots"),
    Q("pause the BTC trend bot", ["bots_list", "bot_pause"], ["Pause the bot BTC trend"], confirmation=True,
      topic="bots"),
    Q("resume the ETH dca bot", ["bots_list", "bot_resume"], ["Resume the bot ETH dca"], confirmation=True,
      topic="bots"),
    Q("stop my bot", ["bots_list"], ["Say which bot"], topic="bots"),
    # --- orders
    Q("Show my open orders", ["recent_orders"], ["Buy 1 ETH/USDT limit at 3,000", "open"], topic="orders"),
    Q("What are my recent orders?", ["recent_orders"], ["BTC/USDT", "filled"], topic="orders"),
    Q("any pending orders?", ["recent_orders"], ["ETH/USDT"], topic="orders"),
    Q("list my last trades", ["recent_orders"], ["BTC/USDT"], topic="orders"),
    # --- indicators
    Q("What is RSI?", ["indicator_explain"], ["Relative Strength Index", "70"], topic="indicators"),
    Q("What does ADX mean?", ["indicator_explain"], ["how strong a trend is"], topic="indicators"),
    Q("explain MACD", ["indicator_explain"], ["signal line"], topic="indicators"),
    Q("What is max drawdown?", ["indicator_explain"], ["peak"], topic="indicators"),
    Q("what's a moving average", ["indicator_explain"], ["average of the last N closes"], topic="indicators"),
    Q("what does time-weighted return mean", ["indicator_explain"], ["deposits and withdrawals"],
      topic="indicators"),
    Q("price of eth/btc", ["price"], ["Unknown instrument 'ETH/BTC'"], topic="price"),
    Q("What's my year-to-date performance?", ["performance"], ["{performance:YTD:gain}"], topic="performance"),
    # --- out of scope
    Q("Should I buy SOL?", [], ["investment advice"], topic="out of scope"),
    Q("Will BTC go up tomorrow?", [], ["investment advice"], topic="out of scope"),
    Q("What's the weather in Paris?", [], ["can't answer that offline"], topic="out of scope"),
    Q("Tell me a joke", [], ["can't answer that offline"], topic="out of scope"),
    Q("Give me a price target for ETH", [], ["investment advice"], topic="out of scope"),
    Q("What stocks should I buy?", [], ["investment advice"], topic="out of scope"),
    # --- follow-ups and help
    Q("and ETH?", ["position"], ["{position:ETH:quantity} ETH"], after="How is my BTC position?", topic="follow-up"),
    Q("what about SOL?", ["price"], ["150.25"], after="What's the price of ETH?", topic="follow-up"),
    Q("what can you do?", [], ["I answer from your Nexus data"], topic="help"),
]  # fmt: skip


# --- facts as the dashboard shows them ----------------------------------------------------------------


def dashboard_facts(*, user, portfolio) -> dict[str, str]:
    """The dashboard's figures for the seeded portfolio, formatted by the dashboard's filters."""
    from core.rls import tenant
    from portfolios.choices import Period
    from portfolios.live import live_context
    from portfolios.templatetags.portfolio_format import money, pct, price, quantity, signed_money

    with tenant(user.pk):
        context = live_context(portfolio=portfolio, periods=Period.values)
    valuation, history = context["valuation"], context["history"]
    base = valuation.base_currency
    facts = {
        "portfolio:total": money(valuation.total, base),
        "portfolio:cash": money(valuation.cash_value, base),
        "portfolio:unrealized": signed_money(valuation.unrealized_pnl, base),
        "portfolio:realized": signed_money(valuation.realized_pnl, base),
    }
    for line in valuation.lines:
        key = f"position:{line.base}"
        facts[f"{key}:quantity"] = quantity(line.quantity)
        facts[f"{key}:average_cost"] = price(line.average_cost, "")
        facts[f"{key}:price"] = price(line.price, "")
        facts[f"{key}:value"] = money(line.value_base, base)
        facts[f"{key}:unrealized"] = signed_money(line.unrealized_pnl, line.quote)
        facts[f"{key}:unrealized_pct"] = pct(line.unrealized_pct)
        facts[f"{key}:realized"] = signed_money(line.realized_pnl, line.quote)
        facts[f"{key}:weight"] = f"{line.weight_pct}%"
    for figure in history.performance:
        facts[f"performance:{figure.period}:gain"] = signed_money(figure.gain, base)
    return facts


def resolve(fact: str, facts: dict[str, str]) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: facts[m.group(1)], fact)


@dataclass
class Outcome:
    question: Question
    passed: bool
    answer: str
    tools: list[str]
    problems: list[str] = field(default_factory=list)


def run(*, user, portfolio, key_prefix: str = "qs") -> list[Outcome]:
    """Ask every question as `user` (one conversation each; follow-ups share their setup question's)."""
    from bot.companion.service import companion_ask

    facts = dashboard_facts(user=user, portfolio=portfolio)
    outcomes = []
    for n, question in enumerate(QUESTIONS):
        surface_key = f"web:{key_prefix}-{n}"
        if question.after:
            companion_ask(
                user=user,
                text=question.after,
                surface="web",
                surface_key=surface_key,
                idempotency_key=f"{key_prefix}-{n}-setup",
            )
        reply = companion_ask(
            user=user,
            text=question.text,
            surface="web",
            surface_key=surface_key,
            idempotency_key=f"{key_prefix}-{n}",
        )
        problems = []
        if reply.status != "answered":
            problems.append(f"status {reply.status}")
        missing_tools = [t for t in question.tools if t not in reply.tools_called]
        if missing_tools:
            problems.append(f"tools not called: {missing_tools} (called {reply.tools_called})")
        if not question.tools and reply.tools_called:
            problems.append(f"called tools for a question no tool answers: {reply.tools_called}")
        for fact in question.facts:
            wanted = resolve(fact, facts)
            if wanted.lower() not in reply.text.lower():
                problems.append(f"missing fact {wanted!r}")
        if "couldn't look that up" in reply.text and not any("Unknown" in f for f in question.facts):
            problems.append("a tool call failed")
        if question.confirmation != (reply.confirmation is not None):
            problems.append("expected a confirmation" if question.confirmation else "unexpected confirmation")
        outcomes.append(Outcome(question, not problems, reply.text, reply.tools_called, problems))
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    passed = sum(o.passed for o in outcomes)
    lines = [f"question set: {passed}/{len(outcomes)} passed"]
    for outcome in outcomes:
        if not outcome.passed:
            lines.append(f"  FAIL {outcome.question.text!r}: {'; '.join(outcome.problems)}")
            lines.append(f"       answer: {outcome.answer[:300]!r}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    import argparse

    import pytest

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", choices=["offline", "openai"], default="offline")
    args = parser.parse_args(argv)
    if args.provider == "openai" and not os.environ.get("OPENAI_API_KEY"):
        print("Set OPENAI_API_KEY (and OPENAI_BASE_URL / OPENAI_MODEL for another server).", file=sys.stderr)
        return 2
    os.environ[PROVIDER_ENV] = args.provider
    return pytest.main(["-q", "-s", "-p", "no:cacheprovider", "tests/bot/test_question_set.py"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
