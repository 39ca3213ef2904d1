"""Valuation at live quotes (replayed from the recorded market), conversion to the base currency."""

from __future__ import annotations

import csv
from datetime import timedelta
from itertools import islice

from django.conf import settings
from django.utils import timezone

from core.rls import system_context
from marketdata.models import Quote
from portfolios.selectors import portfolio_valuation
from portfolios.services import portfolio_create
from portfolios.valuation import PriceSource
from tests.portfolios.conftest import D, at, set_quote


def _recorded_closes(n: int) -> list:
    path = settings.MARKET_REPLAY_DIR / "BTCUSDT_1m_2023-03-01_2023-03-21.csv"
    with open(path, newline="") as handle:
        return [D(row["close"]) for row in islice(csv.DictReader(handle), 0, n * 60, 60)]


def test_valuation_follows_replayed_quotes_to_the_cent(portfolio, record, instruments):
    record(portfolio, "deposit", "USDT", "30000", when=at(1, 0))
    record(portfolio, "buy", "BTC/USDT", "0.75", "23140.48", fee="17.35536", when=at(1, 1))
    record(portfolio, "buy", "ETH/USDT", "4", "1605.2", fee="6.4208", when=at(1, 2))
    cash = D("30000") - D("17355.36") - D("17.35536") - D("6420.8") - D("6.4208")
    cost = D("17355.36") + D("17.35536")

    for close in _recorded_closes(12):  # one recorded close per hour of 2023-03-01
        set_quote(instruments["BTC/USDT"], close)
        set_quote(instruments["ETH/USDT"], "1650.10")
        valuation = portfolio_valuation(portfolio=portfolio)
        btc = next(line for line in valuation.lines if line.symbol == "BTC/USDT")
        assert btc.price == close and btc.price_source == PriceSource.LIVE
        assert btc.market_value == D("0.75") * close
        assert btc.unrealized_pnl == D("0.75") * close - cost
        assert valuation.cash_value == cash
        assert valuation.total == D("0.75") * close + D("4") * D("1650.10") + cash
        assert valuation.unpriced == []


def test_allocation_and_weights_add_up(portfolio, record, instruments):
    record(portfolio, "deposit", "USDT", "1000")
    record(portfolio, "buy", "BTC/USDT", "0.01", "20000", when=at(2))
    set_quote(instruments["BTC/USDT"], "30000")
    valuation = portfolio_valuation(portfolio=portfolio)
    assert valuation.total == D("300") + D("800")
    assert [(s.label, s.value, s.pct) for s in valuation.allocation] == [
        ("USDT cash", D("800"), D("72.73")),
        ("BTC", D("300"), D("27.27")),
    ]


def test_stale_and_missing_quotes_are_flagged(portfolio, record, instruments):
    record(portfolio, "buy", "BTC/USDT", "1", "20000", when=at(1))
    record(portfolio, "buy", "SOL/USDT", "10", "22.45", when=at(1))
    set_quote(instruments["BTC/USDT"], "21000", updated_at=timezone.now() - timedelta(minutes=10))
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Quote.objects.filter(instrument=instruments["SOL/USDT"]).delete()
    lines = {line.symbol: line for line in portfolio_valuation(portfolio=portfolio).lines}
    assert lines["BTC/USDT"].price_source == PriceSource.STALE
    # No quote at all: valued at the last trade's price, and said so.
    assert (lines["SOL/USDT"].price, lines["SOL/USDT"].price_source) == (D("22.45"), PriceSource.LAST_TRADE)


def test_conversion_to_the_base_currency(as_a, record, instruments):
    in_btc = portfolio_create(user=as_a, name="In BTC", base_currency="BTC")
    record(in_btc, "deposit", "USDT", "2000")
    record(in_btc, "buy", "ETH/BTC", "2", "0.07", when=at(2))
    set_quote(instruments["BTC/USDT"], "20000")
    set_quote(instruments["ETH/BTC"], "0.08")
    valuation = portfolio_valuation(portfolio=in_btc)
    # ETH/BTC is quoted in BTC already; USDT converts through 1 / price of BTC/USDT.
    assert valuation.positions_value == D("0.16")
    assert valuation.cash_value == D("0.1")
    assert valuation.total == D("0.26")

    in_usd = portfolio_create(user=as_a, name="In USD", base_currency="USD")
    record(in_usd, "buy", "BTC/USDT", "1", "20000", when=at(2))
    assert portfolio_valuation(portfolio=in_usd).total == D("20000")  # USDT counts as one dollar

    in_eur = portfolio_create(user=as_a, name="In EUR", base_currency="EUR")
    record(in_eur, "buy", "BTC/USDT", "1", "20000", when=at(2))
    valuation = portfolio_valuation(portfolio=in_eur)
    assert (valuation.total, valuation.unpriced) == (0, ["BTC/USDT"])  # no EUR quote: shown, not guessed
