"""Live updates: a tick revalues the holders' portfolios and pushes one fragment per user over Redis; the
`revaluation` tick consumer takes the feed's batches."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from core.consumers import user_group
from core.rls import tenant
from marketdata.types import TickEvent
from portfolios import live
from portfolios.presence import viewer_touch
from portfolios.services import portfolio_create, transaction_record
from tests.portfolios.conftest import D, at, set_quote
from tests.ticks import publish, started

pytestmark = pytest.mark.django_db


def _listen(user_id: int) -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(user_id), channel)
    return channel


def _receive(channel: str, timeout: float = 2.0) -> dict | None:
    layer = get_channel_layer()

    async def receive():
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout)
        except TimeoutError:
            return None

    return async_to_sync(receive)()


def _received_before_a_marker(channel: str, user_id: int) -> list[dict]:
    """What `channel` got until now: a marker sent to the user's group now arrives after everything sent to
    it before (a channel is first in, first out), so "nothing else" needs no fixed wait."""
    marker = {"type": "test.marker", "marker": uuid.uuid4().hex}
    async_to_sync(get_channel_layer().group_send)(user_group(user_id), marker)
    messages = []
    while (message := _receive(channel)) != marker:
        assert message is not None, "the marker never arrived"
        messages.append(message)
    return messages


@pytest.fixture
def holders(user_a, user_b, instruments):
    with tenant(user_a.pk):
        main = portfolio_create(user=user_a, name="Main", base_currency="USDT")
        second = portfolio_create(user=user_a, name="Second", base_currency="USDT")
        for portfolio, quantity in ((main, "1"), (second, "2")):
            transaction_record(
                user=user_a,
                portfolio=portfolio,
                kind="buy",
                instrument=instruments["BTC/USDT"],
                quantity=D(quantity),
                price=D("20000"),
                executed_at=at(1),
            )
    with tenant(user_b.pk):
        eth_only = portfolio_create(user=user_b, name="ETH", base_currency="USDT")
        transaction_record(
            user=user_b,
            portfolio=eth_only,
            kind="buy",
            instrument=instruments["ETH/USDT"],
            quantity=D("1"),
            price=D("1500"),
            executed_at=at(1),
        )
    return main, second, eth_only


def test_a_tick_pushes_each_holder_one_message_with_every_affected_portfolio(
    user_a, user_b, holders, instruments
):
    main, second, _ = holders
    channel_a, channel_b = _listen(user_a.pk), _listen(user_b.pk)
    viewer_touch(user_id=user_a.pk)
    viewer_touch(user_id=user_b.pk)
    set_quote(instruments["BTC/USDT"], "21000")

    result = live.portfolios_revalue(symbols={"BTC/USDT"})

    assert (result.users, result.portfolios) == (1, 2)  # A's two portfolios; B holds no BTC
    message = _receive(channel_a)
    assert message["type"] == "user.html"
    html = message["html"]
    assert f'<span id="pf-{main.pk}-total" data-total>21,000.00</span>' in html
    assert f'<span id="pf-{second.pk}-total" data-total>42,000.00</span>' in html
    assert html.count('hx-swap-oob="true"') == 8  # stats, positions, allocation, live point, per portfolio
    assert _received_before_a_marker(channel_a, user_a.pk) == []  # one message, not one per portfolio or tick
    assert _received_before_a_marker(channel_b, user_b.pk) == []  # B holds no BTC


def test_holders_without_a_dashboard_open_are_not_rendered(user_a, holders, instruments):
    channel = _listen(user_a.pk)
    set_quote(instruments["BTC/USDT"], "21000")
    assert live.portfolios_revalue(symbols={"BTC/USDT"}).users == 0
    assert _received_before_a_marker(channel, user_a.pk) == []

    viewer_touch(user_id=user_a.pk)  # the dashboard renders, or its heartbeat arrives
    channel = _listen(user_a.pk)
    assert live.portfolios_revalue(symbols={"BTC/USDT"}).users == 1
    assert _receive(channel)["type"] == "user.html"


def test_a_recorded_transaction_is_pushed_after_commit_to_an_open_dashboard(
    user_a, holders, instruments, django_capture_on_commit_callbacks
):
    main, _, _ = holders
    set_quote(instruments["BTC/USDT"], "20000")

    def deposit(amount: str) -> None:
        with django_capture_on_commit_callbacks(execute=True), tenant(user_a.pk):
            transaction_record(
                user=user_a,
                portfolio=main,
                kind="deposit",
                currency="USDT",
                quantity=D(amount),
                executed_at=at(2),
            )

    channel = _listen(user_a.pk)
    deposit("1")
    assert _received_before_a_marker(channel, user_a.pk) == []  # no dashboard open: nothing rendered, nothing sent

    viewer_touch(user_id=user_a.pk)
    channel = _listen(user_a.pk)
    deposit("499")
    html = _receive(channel)["html"]
    assert f'id="pf-{main.pk}-recent"' in html  # the new transaction is listed
    assert f'<span id="pf-{main.pk}-total" data-total>20,500.00</span>' in html


def _nobody_watching(symbols) -> live.RevalueResult:
    return live.RevalueResult(symbols=tuple(sorted(symbols)), users=0, portfolios=0, seconds=0.0)


def test_the_revaluation_consumer_revalues_the_symbols_of_a_published_batch_once(monkeypatch):
    revalued = []

    def revalue(*, symbols):
        revalued.append(set(symbols))
        return _nobody_watching(symbols)

    monkeypatch.setattr(live, "portfolios_revalue", revalue)
    consumer = started("revaluation", consumer="test-1")
    tick = TickEvent(symbol="BTC/USDT", price=Decimal("1"), previous_price=None, at=timezone.now())
    publish([tick, tick])
    assert consumer.run(max_entries=1, timeout=5) == 1
    assert revalued == [{"BTC/USDT"}]


def test_ticks_arriving_during_a_slow_round_coalesce_into_one_batch(monkeypatch):
    batches: list[set[str]] = []

    def tick_of(symbol: str) -> TickEvent:
        return TickEvent(symbol=symbol, price=Decimal("1"), previous_price=None, at=timezone.now())

    def slow_revalue(*, symbols):
        batches.append(set(symbols))
        if len(batches) == 1:  # the feed publishes four times while this round renders
            publish(*([tick_of(symbol)] for symbol in ("ETH/USDT", "BTC/USDT", "SOL/USDT", "ETH/USDT")))
        return _nobody_watching(symbols)

    monkeypatch.setattr(live, "portfolios_revalue", slow_revalue)
    consumer = started("revaluation", consumer="test-1")
    publish([tick_of("BTC/USDT")])
    assert consumer.run(max_entries=5, timeout=5) == 5
    assert batches == [{"BTC/USDT"}, {"ETH/USDT", "BTC/USDT", "SOL/USDT"}]


def test_rounds_start_at_most_once_an_interval_and_after_a_quiet_spell_at_once(monkeypatch, settings):
    settings.PORTFOLIO_REVALUATION_INTERVAL = 1.0
    now, paused, rounds = [1000.0], [], []

    def pause(seconds: float) -> None:
        paused.append(round(seconds, 3))
        now[0] += seconds

    def revalue(*, symbols):
        rounds.append((round(now[0] - 1000.0, 3), set(symbols)))
        now[0] += 0.2  # the round takes 0.2 s
        return _nobody_watching(symbols)

    monkeypatch.setattr(live.TickRevaluation, "clock", staticmethod(lambda: now[0]))
    monkeypatch.setattr(live.TickRevaluation, "pause", staticmethod(pause))
    monkeypatch.setattr(live, "portfolios_revalue", revalue)
    consumer = started("revaluation", consumer="test-1")

    def tick_of(symbol: str) -> TickEvent:
        return TickEvent(symbol=symbol, price=Decimal("1"), previous_price=None, at=timezone.now())

    publish([tick_of("BTC/USDT")])
    assert consumer.run(max_entries=1, timeout=5) == 1  # the first round at once
    publish([tick_of("ETH/USDT")])
    assert consumer.run(max_entries=1, timeout=5) == 1  # 0.2 s after the first began: waits 0.8 s
    now[0] += 5.0  # prices quiet for five seconds
    publish([tick_of("SOL/USDT")])
    assert consumer.run(max_entries=1, timeout=5) == 1  # at once again
    assert paused == [0.8]
    assert rounds == [(0.0, {"BTC/USDT"}), (1.0, {"ETH/USDT"}), (6.2, {"SOL/USDT"})]


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_large_batch_is_rendered_on_several_threads_each_user_in_their_tenant(instruments):
    from tests.factories import UserFactory

    count = live.PARALLEL_MIN_USERS + 6
    traders = [UserFactory(email=f"holder{n}@example.com") for n in range(count)]
    portfolios = {}
    for n, trader in enumerate(traders):
        with tenant(trader.pk):
            portfolio = portfolio_create(user=trader, name="Main", base_currency="USDT")
            transaction_record(
                user=trader,
                portfolio=portfolio,
                kind="buy",
                instrument=instruments["SOL/USDT"],
                quantity=D(n + 1),
                price=D("20"),
                executed_at=at(1),
            )
            portfolios[trader.pk] = portfolio.pk
    set_quote(instruments["SOL/USDT"], "25")
    for trader in traders:
        viewer_touch(user_id=trader.pk)
    listened = {trader.pk: _listen(trader.pk) for trader in (traders[0], traders[33], traders[-1])}

    result = live.portfolios_revalue(symbols={"SOL/USDT"})

    assert (result.users, result.portfolios) == (count, count)
    for n, trader in ((0, traders[0]), (33, traders[33]), (count - 1, traders[-1])):
        html = _receive(listened[trader.pk])["html"]
        value = f"{D(25) * (n + 1):,.2f}"  # only this trader's own holding: (n + 1) SOL at 25
        assert f'<span id="pf-{portfolios[trader.pk]}-total" data-total>{value}</span>' in html
        assert html.count("data-total") == 1


def test_the_one_query_tick_fragment_equals_the_page_fragment(user_a, instruments):
    from datetime import date

    from marketdata.selectors import quote_latest_map
    from portfolios.selectors import portfolios_live_state
    from portfolios.services import snapshot_take

    with tenant(user_a.pk):
        portfolio = portfolio_create(user=user_a, name="Mixed", base_currency="USD")
        for kind, what, quantity, price, fee, fee_currency in [
            ("deposit", "USDT", "5000", None, "0", ""),
            ("buy", "BTC/USDT", "0.1", "20000", "0.0001", "BTC"),
            ("buy", "ETH/BTC", "1", "0.07", "0", ""),  # needs BTC it does not hold: money added in BTC
            ("sell", "BTC/USDT", "0.05", "21000", "1.05", "USDT"),
        ]:
            instrument = instruments.get(what)
            transaction_record(
                user=user_a,
                portfolio=portfolio,
                kind=kind,
                instrument=instrument,
                currency=None if instrument else what,
                quantity=D(quantity),
                price=D(price) if price else None,
                fee=D(fee),
                fee_currency=fee_currency,
                executed_at=at(1),
            )
        snapshot_take(portfolio=portfolio, day=date(2023, 3, 1))
        for symbol, price in (("BTC/USDT", "21500"), ("ETH/BTC", "0.071")):
            set_quote(instruments[symbol], price, open_24h="1")
        quotes = quote_latest_map(symbols=list(instruments))
        today = timezone.now().date()
        (state,) = portfolios_live_state(user_id=user_a.pk, portfolio_ids=[portfolio.pk], today=today)
        assert live.state_fragment(state=state, quotes=quotes, today=today) == live.portfolio_fragment(
            portfolio=portfolio, quotes=quotes
        )
        assert state.flows["BTC"] == D("0.07")
