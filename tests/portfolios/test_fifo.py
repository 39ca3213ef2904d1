"""FIFO accounting through the service the pages, the importer and trading all use."""

from __future__ import annotations

import pytest

from core.errors import DomainError
from core.models import AuditLog
from core.rls import tenant
from portfolios.models import Lot, Position, Transaction
from portfolios.selectors import cash_balance, position_list
from portfolios.services import portfolio_create, transaction_delete
from tests.portfolios.conftest import D, at


def _position(portfolio, symbol="BTC/USDT") -> Position:
    return Position.objects.get(portfolio=portfolio, instrument__symbol=symbol)


def test_partial_sell_across_two_lots_realizes_fifo_with_quote_fees(portfolio, record):
    record(portfolio, "deposit", "USDT", "50000", when=at(1, 9))
    record(portfolio, "buy", "BTC/USDT", "1", "20000", fee="10", when=at(1, 10))
    record(portfolio, "buy", "BTC/USDT", "1", "22000", fee="11", when=at(2))
    sell = record(portfolio, "sell", "BTC/USDT", "1.5", "25000", fee="18.75", when=at(3))

    # proceeds 37,500 - 18.75 fee; cost: all of lot 1 (20,010) + half of lot 2 (22,011 / 2)
    assert sell.realized_pnl == D("37481.25") - D("20010") - D("11005.5") == D("6465.75")
    position = _position(portfolio)
    assert position.quantity == D("0.5")
    assert position.cost_basis == D("11005.5")
    assert position.average_cost == D("22011")
    assert position.realized_pnl == D("6465.75")
    assert position.fees_paid == D("39.75")
    assert cash_balance(portfolio=portfolio, currency="USDT") == D("50000") - D("20010") - D("22011") + D(
        "37481.25"
    )
    lots = list(Lot.objects.filter(position=position).order_by("opened_at"))
    assert [(lot.quantity, lot.quantity_open, lot.cost_open) for lot in lots] == [
        (D("1"), D("0"), D("0")),
        (D("1"), D("0.5"), D("11005.5")),
    ]
    assert lots[0].closed_at == at(3) and lots[1].closed_at is None


def test_fees_in_the_base_currency_reduce_the_units_held(portfolio, record):
    record(portfolio, "deposit", "USDT", "20000", when=at(1, 9))
    buy = record(portfolio, "buy", "BTC/USDT", "1", "20000", fee="0.001", fee_currency="BTC", when=at(1, 10))
    assert buy.fee_currency == "BTC"
    position = _position(portfolio)
    assert (position.quantity, position.cost_basis) == (D("0.999"), D("20000"))
    assert cash_balance(portfolio=portfolio, currency="USDT") == 0

    sell = record(portfolio, "sell", "BTC/USDT", "0.5", "30000", fee="0.0005", fee_currency="BTC", when=at(2))
    # 0.5005 BTC leave the lot: its cost share is 20,000 x 0.5005 / 0.999, rounded to 12 places
    cost_share = D("10020.020020020020")
    assert sell.realized_pnl == D("15000") - cost_share
    position.refresh_from_db()
    assert position.quantity == D("0.4985")
    assert position.cost_basis == D("20000") - cost_share
    assert position.fees_paid == D("20") + D("15")  # 0.001 BTC at 20,000 + 0.0005 BTC at 30,000
    assert cash_balance(portfolio=portfolio, currency="USDT") == D("15000")


def test_a_base_fee_as_large_as_the_quantity_is_refused(portfolio, record):
    with pytest.raises(DomainError, match="fee in BTC must be smaller") as caught:
        record(portfolio, "buy", "BTC/USDT", "0.001", "20000", fee="0.001", fee_currency="BTC")
    assert caught.value.field == "fee"


def test_a_sell_that_closes_the_position_exactly(portfolio, record):
    record(portfolio, "buy", "BTC/USDT", "0.3", "100", when=at(1))
    record(portfolio, "buy", "BTC/USDT", "0.7", "200", when=at(2))
    sell = record(portfolio, "sell", "BTC/USDT", "1", "300", when=at(3))

    assert sell.realized_pnl == D("300") - D("30") - D("140")
    position = _position(portfolio)
    assert (position.quantity, position.cost_basis, position.realized_pnl) == (0, 0, D("130"))
    assert not Lot.objects.filter(position=position, closed_at__isnull=True).exists()
    assert list(position_list(portfolio=portfolio)) == []  # closed positions are not listed as holdings


def test_an_oversell_is_refused_and_nothing_is_written(portfolio, record):
    record(portfolio, "buy", "BTC/USDT", "1", "20000", when=at(1))
    transactions, audits = Transaction.objects.count(), AuditLog.objects.count()

    with pytest.raises(DomainError) as caught:
        record(portfolio, "sell", "BTC/USDT", "1.5", "25000", when=at(2))

    assert str(caught.value).startswith("You hold 1 BTC in BTC/USDT; this sell needs 1.5.")
    assert caught.value.field == "quantity"
    assert (Transaction.objects.count(), AuditLog.objects.count()) == (transactions, audits)
    position = _position(portfolio)
    assert (position.quantity, position.cost_basis) == (D("1"), D("20000"))


def test_a_portfolio_that_allows_shorting_opens_and_closes_a_short(as_a, record):
    shorts = portfolio_create(user=as_a, name="Shorts", base_currency="USDT", allow_short=True)
    record(shorts, "buy", "BTC/USDT", "0.5", "100", when=at(1))
    record(shorts, "sell", "BTC/USDT", "1.5", "120", fee="1.5", when=at(2))
    position = _position(shorts)
    # 0.5 closed at a profit, 1.0 short opened with proceeds 120 - 1 (its share of the fee)
    assert position.quantity == D("-1")
    assert position.cost_basis == D("-119")
    assert position.realized_pnl == D("59.5") - D("50")

    cover = record(shorts, "buy", "BTC/USDT", "1", "80", when=at(3))
    assert cover.realized_pnl == D("119") - D("80")
    position.refresh_from_db()
    assert (position.quantity, position.cost_basis) == (0, 0)


def test_a_backdated_buy_replays_history_in_fifo_order(portfolio, record):
    record(portfolio, "buy", "BTC/USDT", "1", "200", when=at(5))
    first_sell = record(portfolio, "sell", "BTC/USDT", "1", "300", when=at(6))
    assert first_sell.realized_pnl == D("100")

    record(portfolio, "buy", "BTC/USDT", "1", "100", when=at(2))  # earlier: it is the first lot now

    first_sell.refresh_from_db()
    assert first_sell.realized_pnl == D("200")
    position = _position(portfolio)
    assert (position.quantity, position.cost_basis, position.realized_pnl) == (D("1"), D("200"), D("200"))


def test_a_backdated_sell_that_would_oversell_later_is_refused(portfolio, record):
    record(portfolio, "buy", "BTC/USDT", "1", "200", when=at(5))
    with pytest.raises(DomainError, match="You hold 0 BTC"):
        record(portfolio, "sell", "BTC/USDT", "1", "300", when=at(2))
    assert Transaction.objects.filter(portfolio=portfolio).count() == 1


def test_recording_the_same_external_id_twice_adds_nothing(portfolio, record):
    first = record(portfolio, "buy", "BTC/USDT", "1", "200", external_id="binance:42")
    again = record(portfolio, "buy", "BTC/USDT", "1", "200", external_id="binance:42")
    assert again.pk == first.pk
    assert _position(portfolio).quantity == D("1")


def test_deleting_a_transaction_replays_and_refuses_to_break_a_later_sell(portfolio, record, as_a):
    buy_one = record(portfolio, "buy", "BTC/USDT", "1", "100", when=at(1))
    buy_two = record(portfolio, "buy", "BTC/USDT", "1", "200", when=at(2))
    record(portfolio, "sell", "BTC/USDT", "1", "300", when=at(3))

    transaction_delete(user=as_a, txn=buy_one)
    position = _position(portfolio)
    assert (position.quantity, position.realized_pnl) == (0, D("100"))

    kept = buy_two.pk
    with pytest.raises(DomainError, match="would break a later one"):
        transaction_delete(user=as_a, txn=buy_two)
    assert Transaction.objects.filter(pk=kept).exists()
    assert _position(portfolio).realized_pnl == D("100")


def test_paper_portfolio_cannot_spend_cash_it_does_not_hold(paper_portfolio, record):
    record(paper_portfolio, "deposit", "USDT", "1000")
    with pytest.raises(DomainError, match="Not enough USDT: the portfolio holds 1000, this buy needs 2001"):
        record(paper_portfolio, "buy", "BTC/USDT", "0.1", "20000", fee="1", when=at(2))


def test_manual_portfolio_counts_a_cash_shortfall_as_money_added(portfolio, record):
    record(portfolio, "deposit", "USDT", "1000", when=at(1))
    buy = record(portfolio, "buy", "BTC/USDT", "0.1", "20000", fee="1", when=at(2))
    assert buy.funding == D("1001")
    assert (buy.flow_amount, buy.flow_currency) == (D("1001"), "USDT")
    assert cash_balance(portfolio=portfolio, currency="USDT") == 0


def test_a_withdrawal_beyond_the_cash_held_is_refused(portfolio, record):
    record(portfolio, "deposit", "USDT", "100")
    with pytest.raises(DomainError, match="You have 100 USDT in cash; this withdrawal needs 150"):
        record(portfolio, "withdrawal", "USDT", "150", when=at(2))


def test_a_fee_in_a_third_currency_comes_out_of_that_cash(portfolio, record):
    record(portfolio, "deposit", "USDT", "1000", when=at(1))
    record(portfolio, "deposit", "BNB", "1", when=at(1))
    buy = record(portfolio, "buy", "BTC/USDT", "0.01", "20000", fee="0.02", fee_currency="BNB", when=at(2))
    assert buy.realized_pnl == 0
    assert _position(portfolio).cost_basis == D("200")  # a third-currency fee is not part of the cost
    assert cash_balance(portfolio=portfolio, currency="BNB") == D("0.98")
    assert cash_balance(portfolio=portfolio, currency="USDT") == D("800")


def test_transfers_move_coins_at_cost_without_realizing(portfolio, record):
    record(portfolio, "transfer_in", "BTC/USDT", "2", "150", when=at(1))
    out = record(portfolio, "transfer_out", "BTC/USDT", "0.5", when=at(2))
    assert out.realized_pnl == 0
    assert out.flow_amount == D("-75")  # no price given: valued at the cost that left
    position = _position(portfolio)
    assert (position.quantity, position.cost_basis) == (D("1.5"), D("225"))


def test_bad_fields_are_refused_with_the_field_named(portfolio, record):
    cases = [
        ({"kind": "buy", "what": "BTC/USDT", "quantity": "-1", "price": "10"}, "quantity"),
        ({"kind": "buy", "what": "BTC/USDT", "quantity": "1", "price": None}, "price"),
        ({"kind": "buy", "what": "BTC/USDT", "quantity": "0.0000000000001", "price": "1"}, "quantity"),
        ({"kind": "deposit", "what": "us dollars", "quantity": "1"}, "currency"),
    ]
    for fields, field in cases:
        with pytest.raises(DomainError) as caught:
            record(portfolio, fields["kind"], fields["what"], fields["quantity"], fields.get("price"))
        assert caught.value.field == field, fields
    with pytest.raises(DomainError, match="future") as caught:
        record(portfolio, "deposit", "USDT", "1", when=at(1, year=2999))
    assert Transaction.objects.count() == 0


def test_the_demo_seed_is_idempotent(user_a, instruments):
    from io import StringIO

    from portfolios.demo import portfolios_demo_seed

    with tenant(user_a.pk):
        first = portfolios_demo_seed(trader=user_a, stdout=StringIO())
        again = portfolios_demo_seed(trader=user_a, stdout=StringIO())
        assert again.pk == first.pk
        assert Transaction.objects.filter(portfolio=first).count() == 5
        holdings = {p.instrument.symbol: p.quantity for p in position_list(portfolio=first)}
    assert holdings == {"BTC/USDT": D("1.0"), "ETH/USDT": D("6")}
