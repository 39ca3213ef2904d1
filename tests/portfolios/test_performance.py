"""Snapshots build the equity curve; performance figures on the worked example of docs/portfolio-math.md."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app as celery_app
from core.rls import system_context
from marketdata.types import QuoteSnapshot
from portfolios.choices import Period
from portfolios.models import Snapshot
from portfolios.performance import period_start
from portfolios.selectors import portfolio_history, portfolio_keys_all, portfolio_valuation
from portfolios.services import snapshot_take
from portfolios.tasks import portfolio_snapshot_all
from tests.portfolios.conftest import D, at


def _quotes(btc: str) -> dict:
    return {
        "BTC/USDT": QuoteSnapshot(
            symbol="BTC/USDT",
            price=D(btc),
            bid=None,
            ask=None,
            change_pct=None,
            updated_at=timezone.now(),
            stale=False,
        )
    }


@pytest.fixture
def worked_example(portfolio, record):
    """The example of docs/portfolio-math.md: four daily closes, a deposit and a withdrawal on the way."""

    def step(kind, what, quantity, price=None, *, day, hour):
        record(portfolio, kind, what, quantity, price, when=at(day, hour))

    def close(day, btc):
        snapshot_take(
            portfolio=portfolio, day=date(2023, 3, day), quotes=_quotes(btc), taken_at=at(day + 1, 0)
        )

    step("deposit", "USDT", "10000", day=1, hour=9)
    step("buy", "BTC/USDT", "0.4", "20000", day=1, hour=10)
    close(1, "21000")  # 0.4 x 21,000 + 2,000 cash = 10,400
    close(2, "19000")  # 9,600
    step("deposit", "USDT", "5000", day=3, hour=9)
    close(3, "20000")  # 8,000 + 7,000 = 15,000
    step("withdrawal", "USDT", "1000", day=4, hour=9)
    close(4, "22000")  # 8,800 + 6,000 = 14,800
    return portfolio


def _history(portfolio, btc="23000"):
    valuation = portfolio_valuation(portfolio=portfolio, quotes=_quotes(btc))  # live: 9,200 + 6,000 = 15,200
    return portfolio_history(portfolio=portfolio, valuation=valuation, today=date(2023, 3, 5))


def test_snapshots_build_the_equity_curve(worked_example):
    snapshots = list(
        Snapshot.objects.filter(portfolio=worked_example).values_list("date", "value", "net_flow")
    )
    assert snapshots == [
        (date(2023, 3, 1), D("10400"), D("10000")),
        (date(2023, 3, 2), D("9600"), D("0")),
        (date(2023, 3, 3), D("15000"), D("5000")),
        (date(2023, 3, 4), D("14800"), D("-1000")),
    ]
    curve = _history(worked_example).equity_curve()
    assert [(p["time"], D(p["value"]), D(p["invested"])) for p in curve] == [
        ("2023-03-01", D("10400"), D("10000")),
        ("2023-03-02", D("9600"), D("10000")),
        ("2023-03-03", D("15000"), D("15000")),
        ("2023-03-04", D("14800"), D("14000")),
        ("2023-03-05", D("15200"), D("14000")),  # the live point
    ]
    # The live push reads only the last close; its live point still carries all the money added.
    valuation = portfolio_valuation(portfolio=worked_example, quotes=_quotes("23000"))
    day_only = portfolio_history(
        portfolio=worked_example, valuation=valuation, today=date(2023, 3, 5), periods=[Period.DAY]
    )
    assert day_only.equity_curve()[-1] == curve[-1]


def test_performance_figures_match_the_hand_checked_example(worked_example):
    figures = {f.period: f for f in _history(worked_example).performance}

    every = figures[Period.ALL]
    assert every.start is None and every.start_value == 0
    assert every.gain == D("1200")  # 15,200 - (10,000 + 5,000 - 1,000)
    assert every.total_return_pct == D("8.00")  # 1,200 / 15,000 added
    # 1.04 x (9,600 / 10,400) x (15,000 / 14,600) x (14,800 / 14,000) x (15,200 / 14,800) - 1
    assert every.twr_pct == D("7.08")
    assert every.max_drawdown_pct == D("-7.69")  # 0.96 / 1.04 - 1: the fall from day 1 to day 2
    # sample stdev of the four daily returns (0.04, -1/13, 2/73, 2/35) x sqrt(365)
    assert every.volatility_pct == D("115.51")
    assert every.intervals == 5

    day = figures[Period.DAY]
    assert (day.start, day.start_value, day.gain) == (date(2023, 3, 4), D("14800"), D("400"))
    assert day.total_return_pct == day.twr_pct == D("2.70")
    assert day.volatility_pct is None  # one interval, and it is the live one

    assert figures[Period.WEEK].start is None  # no close on or before 2023-02-26: since the first one


def test_period_starts():
    today = date(2024, 3, 31)
    assert period_start(Period.DAY, today) == date(2024, 3, 30)
    assert period_start(Period.WEEK, today) == date(2024, 3, 24)
    assert period_start(Period.MONTH, today) == date(2024, 2, 29)  # clamped to the month's last day
    assert period_start(Period.YTD, today) == date(2023, 12, 31)
    assert period_start(Period.YEAR, date(2024, 2, 29)) == date(2023, 2, 28)
    assert period_start(Period.ALL, today) is None


def test_a_snapshot_is_taken_once_per_day(portfolio, record):
    record(portfolio, "deposit", "USDT", "100")
    first = snapshot_take(portfolio=portfolio, day=date(2023, 3, 1))
    record(portfolio, "deposit", "USDT", "50")
    again = snapshot_take(portfolio=portfolio, day=date(2023, 3, 1))
    assert again.pk == first.pk and again.value == D("100")


def test_the_beat_task_snapshots_every_portfolio_as_its_owner(user_a, user_b, instruments):
    # Committed first (no test-wide tenant block): the task finds the portfolios on the system connection.
    from core.rls import tenant
    from portfolios.services import portfolio_create, transaction_record

    portfolios = {}
    for user, cash in ((user_a, "100"), (user_b, "7")):
        with tenant(user.pk):
            portfolios[user.pk] = portfolio_create(user=user, name="Main", base_currency="USDT")
            transaction_record(user=user, portfolio=portfolios[user.pk], kind="deposit", currency="USDT",
                               quantity=D(cash), executed_at=at(1))
    assert settings.CELERY_BEAT_SCHEDULE["portfolios-daily-snapshot"]["task"] == portfolio_snapshot_all.name
    yesterday = (timezone.now() - timedelta(days=1)).date()
    celery_app.conf.task_always_eager = True
    try:
        assert portfolio_snapshot_all.delay().get() == len(portfolio_keys_all()) == 2
    finally:
        celery_app.conf.task_always_eager = False
    # Cash only: every past day's value is known without a candle, so the year back is filled too.
    with tenant(user_a.pk):
        assert Snapshot.objects.filter(portfolio=portfolios[user_a.pk]).latest("date").date == yesterday
        assert set(Snapshot.objects.values_list("portfolio_id", flat=True)) == {portfolios[user_a.pk].pk}
    with tenant(user_b.pk):
        assert Snapshot.objects.latest("date").value == D("7")


def test_money_recorded_after_a_close_is_a_flow_not_a_gain_even_when_backdated(portfolio, record):
    record(portfolio, "deposit", "USDT", "1000", when=at(1, 9))
    snapshot_take(portfolio=portfolio, day=date(2023, 3, 1), quotes={}, taken_at=at(2, 0))
    record(portfolio, "deposit", "USDT", "500", when=at(1, 8))  # dated before that close, recorded after it

    history = portfolio_history(
        portfolio=portfolio,
        valuation=portfolio_valuation(portfolio=portfolio, quotes={}),
        today=date(2023, 3, 2),
    )
    day = history.day
    assert (day.start_value, day.end_value, day.net_flow, day.gain) == (D("1000"), D("1500"), D("500"), 0)
    assert snapshot_take(portfolio=portfolio, day=date(2023, 3, 2), quotes={}).net_flow == D("500")


def _candle(instrument, day: int, close: str, month: int = 3):
    from marketdata.models import Candle

    price = D(close)
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Candle.objects.create(
            instrument=instrument,
            open_time=at(day, 23, month=month).replace(minute=59),
            open=price,
            high=price,
            low=price,
            close=price,
            volume=D("1"),
        )


def test_backfill_draws_past_closes_from_the_stored_candles(portfolio, record, instruments):
    from marketdata.models import Candle
    from portfolios.services import snapshot_backfill

    record(portfolio, "deposit", "USDT", "10000", when=at(1, 9))
    record(portfolio, "buy", "BTC/USDT", "0.4", "20000", when=at(1, 10))
    record(portfolio, "deposit", "USDT", "5000", when=at(3, 9))
    record(portfolio, "withdrawal", "USDT", "1000", when=at(4, 9))
    btc = instruments["BTC/USDT"]
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Candle.objects.filter(instrument=btc).delete()  # only this test's candles
    for day, close in ((1, "21000"), (3, "20000"), (4, "22000")):  # no candle on day 2
        _candle(btc, day, close)

    assert snapshot_backfill(portfolio=portfolio, today=date(2023, 3, 5)).written == 3
    assert list(Snapshot.objects.filter(portfolio=portfolio).values_list("date", "value", "net_flow")) == [
        (date(2023, 3, 1), D("10400"), D("10000")),
        (date(2023, 3, 3), D("15000"), D("5000")),  # day 2 has no close: left out, not invented
        (date(2023, 3, 4), D("14800"), D("-1000")),
    ]
    assert (
        snapshot_backfill(portfolio=portfolio, today=date(2023, 3, 5)).written == 0
    )  # day 2: still no candle

    history = _history(portfolio)  # live 15,200: the same figures as the hand-checked example, minus day 2
    assert history.performance[-1].gain == D("1200")
