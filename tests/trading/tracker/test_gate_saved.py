"""What the gate saved: a known blocked execution marked to market from stored candles, per strategy, on the
page and in the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.rls import tenant
from marketdata.services import candles_store
from marketdata.types import CandleBar
from tests.factories import BlockedExecutionFactory, BotFactory, SignalFactory, api_token_for
from trading.tracker.selectors import GATE_HORIZONS, gate_outcomes, gate_totals

SIGNAL_AT = datetime(2023, 3, 9, 12, 0, tzinfo=UTC)


def _candle(at: datetime, close: str) -> CandleBar:
    price = Decimal(close)
    return CandleBar(open_time=at, open=price, high=price, low=price, close=price, volume=Decimal("1"))


@pytest.fixture
def blocked(user_a, instruments):
    btc = instruments["BTC/USDT"]
    candles_store(rows=[
        (btc.pk, _candle(SIGNAL_AT, "20000")),
        (btc.pk, _candle(SIGNAL_AT + timedelta(hours=1), "20500")),
        (btc.pk, _candle(SIGNAL_AT + timedelta(hours=24), "19000")),
        (btc.pk, _candle(SIGNAL_AT + timedelta(hours=30), "18000")),
    ])
    bot = BotFactory(user=user_a, instrument=btc, name="DCA in a falling market", allocation=Decimal("100"))
    signal = SignalFactory(instrument=btc, strategy="dca", candle_open_time=SIGNAL_AT, price=Decimal("20000"),
                           action="buy", regime="bearish")
    return BlockedExecutionFactory(user=user_a, bot=bot, signal=signal, regime="bearish")


def _outcomes(user, horizon):
    with tenant(user.pk):
        return gate_outcomes(user=user, horizon=GATE_HORIZONS[horizon])


def test_a_blocked_buy_is_marked_at_the_close_the_horizon_later(blocked, user_a):
    [outcome] = _outcomes(user_a, "24h")
    assert outcome.quantity == Decimal("0.005")
    assert outcome.mark_price == Decimal("19000")
    assert outcome.mark_at == SIGNAL_AT + timedelta(hours=24, minutes=1)
    assert outcome.horizon_reached
    # 0.005 x (19,000 - 20,000) - 0.1 % x 0.005 x (20,000 + 19,000): the gate saved 5.195 USDT.
    assert outcome.pnl == Decimal("-5.195")
    [total] = gate_totals([outcome], by="strategy")
    assert (total.label, total.blocked, total.marked, total.saved) == ("Dollar-cost averaging", 1, 1, Decimal("5.195"))

    [one_hour] = _outcomes(user_a, "1h")
    assert one_hour.pnl == Decimal("0.005") * 500 - Decimal("0.001") * Decimal("0.005") * 40500  # it cost 2.2975

    [later] = _outcomes(user_a, "72h")
    assert later.mark_price == Decimal("18000") and not later.horizon_reached  # the newest candle, "so far"


def test_the_page_and_the_api_say_what_the_gate_saved(blocked, user_a, user_b, client):
    client.force_login(user_a)
    page = client.get("/trading/tracker/gate/?horizon=24h").content.decode()
    assert "The gate saved 5.20" in page and "DCA in a falling market" in page and "Dollar-cost averaging" in page
    body = client.get("/api/v1/trading/tracker/gate/?horizon=24h").json()
    assert body["by_strategy"] == [{
        "label": "Dollar-cost averaging", "blocked": 1, "marked": 1,
        "would_have_made": "-5.195000000000", "saved": "5.195000000000",
    }]
    assert body["outcomes"][0]["mark_price"] == "19000.000000000000"
    assert client.get("/api/v1/trading/tracker/gate/?horizon=2d").status_code == 400

    # Another trader sees none of it.
    client.force_login(user_b)
    page = client.get("/trading/tracker/gate/").content.decode()
    assert "The gatekeeper has blocked nothing of yours yet." in page and "DCA in a falling market" not in page
    other = client.get("/api/v1/trading/tracker/gate/", HTTP_AUTHORIZATION=f"Token {api_token_for(user_b)}").json()
    assert other["outcomes"] == [] and other["by_strategy"] == []
