"""Demo rules for the demo trader, created through the services (idempotent): a TradingView webhook that
places paper orders, and a regime rule that pauses a bot (the trend bot, if the plan allowed it) when BTC
turns bearish."""

from __future__ import annotations

from automation.choices import ActionKind, TriggerKind
from automation.selectors import rule_list
from automation.services import rule_create
from core.errors import DomainError
from portfolios.choices import PortfolioKind
from portfolios.selectors import portfolio_list
from trading.bots.selectors import bot_list
from trading.choices import Venue
from trading.connections.selectors import connection_list

TRADINGVIEW_TEMPLATE = {
    "ticker": "{{ticker}}",
    "action": "{{strategy.order.action}}",
    "contracts": "{{strategy.order.contracts}}",
}


def seed_rules(*, trader, stdout) -> None:
    if rule_list(user=trader).exists():
        return
    connection = connection_list(user=trader).filter(venue=Venue.PAPER).first()
    portfolio = portfolio_list(user=trader).filter(kind=PortfolioKind.PAPER).first()
    if connection is None or portfolio is None:
        stdout.write("Automation: no paper connection and portfolio, demo rules skipped")
        return
    specs = [
        {
            "name": "TradingView: paper orders",
            "trigger_kind": TriggerKind.WEBHOOK,
            "trigger": {"template": TRADINGVIEW_TEMPLATE},
            "actions": [
                {"kind": ActionKind.PLACE_ORDER, "connection_id": connection.pk, "portfolio_id": portfolio.pk,
                 "symbol": "{{ticker}}", "side": "{{strategy.order.action}}", "order_type": "market",
                 "quantity": "{{strategy.order.contracts}}"},
                {"kind": ActionKind.NOTIFY,
                 "message": "TradingView said {{strategy.order.action}} {{strategy.order.contracts}} {{ticker}}."},
            ],
            "max_runs_per_hour": 20,
            "daily_order_cap": "2000",
        },
    ]
    bots = bot_list(user=trader).order_by("pk")
    trend = bots.filter(name="BTC trend").first() or bots.first()
    if trend is not None:
        specs.append({
            "name": f"Pause {trend.name} when BTC turns bearish",
            "trigger_kind": TriggerKind.REGIME_CHANGE,
            "trigger": {"symbol": "BTC/USDT", "regime": "bearish"},
            "actions": [
                {"kind": ActionKind.PAUSE_BOT, "bot_id": trend.pk},
                {"kind": ActionKind.NOTIFY, "message": f"BTC/USDT turned {{{{regime}}}}: {trend.name} is paused."},
            ],
        })
    for spec in specs:
        try:
            rule_create(user=trader, **spec)
        except DomainError as error:  # the demo trader's plan may allow fewer rules
            stdout.write(f"Automation: rule {spec['name']!r} not created: {error}")
    stdout.write(f"Automation: {rule_list(user=trader).count()} demo rule(s) for {trader.email}")
