"""The companion's tools run as the asking user, state the dashboard's figures, and never raise."""

from __future__ import annotations

import json

from bot.companion.tools import TOOLS, tool_preview, tool_run, tool_specs
from core.rls import tenant
from portfolios.selectors import portfolio_valuation
from portfolios.templatetags.portfolio_format import money, quantity, signed_money


def test_every_tool_is_described_in_the_chat_completions_function_format():
    specs = tool_specs()
    assert {s["function"]["name"] for s in specs} == set(TOOLS)
    for spec in specs:
        assert spec["type"] == "function"
        assert spec["function"]["parameters"]["type"] == "object"
        json.dumps(spec)


def test_position_states_the_dashboards_quantity_value_and_pnl(seeded_a, user_a):
    result = tool_run(user=user_a, name="position", arguments={"symbol": "BTC"})
    with tenant(user_a.pk):
        line = next(li for li in portfolio_valuation(portfolio=seeded_a.portfolio).lines if li.base == "BTC")
    assert result["quantity"] == quantity(line.quantity) == "0.4"
    assert result["value"] == money(line.value_base, "USDT") == "26,964.94"
    assert result["unrealized_pnl"] == signed_money(line.unrealized_pnl, "USDT") == "+14,964.94"
    assert result["realized_pnl"] == "+3,000.00"


def test_tools_of_a_never_see_bs_data(seeded_a, seeded_b, user_a, user_b):
    b_alert = seeded_b.alerts["btc"].pk
    b_bot = seeded_b.bots["trend"].pk
    a_alerts = tool_run(user=user_a, name="alerts_list", arguments={})
    assert b_alert not in {a["id"] for a in a_alerts["alerts"]}
    assert a_alerts["count"] == 2
    assert {b["id"] for b in tool_run(user=user_a, name="bots_list", arguments={})["bots"]} == {
        seeded_a.bots["trend"].pk,
        seeded_a.bots["dca"].pk,
    }
    assert tool_run(user=user_a, name="recent_orders", arguments={"scope": "recent"})["count"] == 2
    # Naming B's rows by id finds nothing.
    assert "error" in tool_preview(user=user_a, name="alert_pause", arguments={"alert_id": b_alert})
    assert "error" in tool_preview(user=user_a, name="bot_pause", arguments={"bot_id": b_bot})


def test_bad_input_is_an_error_result_not_an_exception(seeded_a, user_a):
    assert (
        "Unknown instrument" in tool_run(user=user_a, name="price", arguments={"pair": "NOPE/USDT"})["error"]
    )
    assert "error" in tool_run(user=user_a, name="performance", arguments={"period": "fortnight"})
    assert "error" in tool_run(user=user_a, name="candles_summary", arguments={"pair": "BTC", "lookback": 0})
    assert "error" in tool_run(user=user_a, name="position", arguments={})
    assert "error" in tool_run(user=user_a, name="position", arguments={"symbol": "BTC", "hack": 1})
    assert "error" in tool_run(user=user_a, name="no_such_tool", arguments={})
    assert "error" in tool_preview(
        user=user_a, name="alert_create", arguments={"pair": "BTC", "direction": "above", "level": "-5"}
    )


def test_market_tools_read_the_stored_market(seeded_a, user_a):
    price = tool_run(user=user_a, name="price", arguments={"pair": "btc-usdt"})
    assert price["price"] == "67,412.35" and price["change_24h_pct"] == "+2.14%"
    regime = tool_run(user=user_a, name="regime", arguments={"pair": "BTC"})
    assert (regime["regime"], regime["sma_slope_pct"], regime["adx"]) == ("Bullish", "0.42%", "31.3")
    candles = tool_run(
        user=user_a, name="candles_summary", arguments={"pair": "BTC", "interval": "1h", "lookback": 24}
    )
    assert candles["bars"] == 24
    assert candles["close"] == "67,525.00"
