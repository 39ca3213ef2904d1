"""The trading pages and the orders API, through the real middleware stack (tenant context per request)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.rls import tenant
from tests.factories import InstrumentFactory, RegimeReadingFactory
from tests.trading.binance import BINANCE_KEY, BINANCE_SECRET
from tests.trading.conftest import make_bot, make_signal
from trading.fanout import services
from trading.models import Bot, ExchangeConnection, Order

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def trader(client, user_a, paper_a):
    client.force_login(user_a)
    return client


def _ticket(paper, **fields):
    portfolio, connection = paper
    data = {"connection": connection.pk, "portfolio": portfolio.pk, "symbol": "BTC/USDT", "side": "buy",
            "type": "limit", "quantity": "0.1", "price": "19000", "stop_price": ""}
    data.update(fields)
    return data


def test_the_trade_page_shows_the_ticket_open_orders_and_prices(trader):
    page = trader.get("/trading/").content.decode()
    assert 'id="order-ticket"' in page and 'id="open-orders"' in page and "No open orders." in page
    assert "BTC/USDT" in page and "paper: ok" in page


def test_the_ticket_places_a_limit_order_over_htmx(trader, user_a, paper_a):
    response = trader.post("/trading/orders/", _ticket(paper_a), **HTMX)
    assert response.status_code == 200
    assert "Order placed: Buy 0.1 BTC/USDT — open." in response.content.decode()
    with tenant(user_a.pk):
        order = Order.objects.get()
    assert (order.status, order.price, order.source) == ("open", Decimal("19000"), "manual")
    assert f'id="order-{order.pk}"' in trader.get("/trading/").content.decode()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quantity": "5"}, "Insufficient balance"),
        ({"quantity": "0.1234567"}, "at most 5 decimal places"),
        ({"quantity": "0.0001"}, "needs at least 10 USDT"),
        ({"price": ""}, "needs a limit price"),
        ({"quantity": "abc"}, "Enter a number"),
    ],
)
def test_ticket_errors_are_shown_in_place_and_nothing_is_placed(trader, user_a, paper_a, fields, message):
    response = trader.post("/trading/orders/", _ticket(paper_a, **fields), **HTMX)
    assert response.status_code == 200, "htmx swaps only 2xx answers: the errors must reach the ticket"
    body = response.content.decode()
    assert trader.post("/trading/orders/", _ticket(paper_a, **fields)).status_code == 422  # without htmx
    assert message in body and 'id="order-ticket"' in body
    check = trader.post("/trading/orders/check/", _ticket(paper_a, **fields), **HTMX)
    assert message in check.content.decode()
    with tenant(user_a.pk):
        assert not Order.objects.exists()


def test_the_pre_submit_check_passes_a_good_order(trader, paper_a):
    body = trader.post("/trading/orders/check/", _ticket(paper_a), **HTMX).content.decode()
    assert "checks passed" in body and "1900.00 USDT" in body


def test_cancel_over_htmx_returns_the_refreshed_open_orders(trader, user_a, paper_a):
    trader.post("/trading/orders/", _ticket(paper_a), **HTMX)
    with tenant(user_a.pk):
        order = Order.objects.get()
    body = trader.post(f"/trading/orders/{order.pk}/cancel/", **HTMX).content.decode()
    assert "No open orders." in body
    with tenant(user_a.pk):
        assert Order.objects.get().status == "cancelled"


def test_another_users_order_cannot_be_cancelled(client, user_b, trader, user_a, paper_a):
    trader.post("/trading/orders/", _ticket(paper_a), **HTMX)
    with tenant(user_a.pk):
        order = Order.objects.get()
    client.force_login(user_b)
    assert client.post(f"/trading/orders/{order.pk}/cancel/").status_code == 404
    with tenant(user_a.pk):
        assert Order.objects.get().status == "open"


def test_order_history_filters(trader, user_a, paper_a):
    trader.post("/trading/orders/", _ticket(paper_a), **HTMX)
    trader.post("/trading/orders/", _ticket(paper_a, type="market", quantity="0.01", price=""), **HTMX)
    filled = trader.get("/trading/orders/history/?status=filled").content.decode()
    opened = trader.get("/trading/orders/history/?status=open", **HTMX).content.decode()
    assert filled.count('data-order-status="filled"') == 1 and 'data-order-status="open"' not in filled
    assert opened.count('data-order-status="open"') == 1 and 'id="order-history"' in opened


def test_adding_a_binance_key_shows_its_last_four_only(client, user_a, recorded_binance):
    client.force_login(user_a)
    page = client.get("/trading/connections/").content.decode()
    assert "restrict it to the IP address" in page
    response = client.post("/trading/connections/", {
        "label": "Main", "venue": "binance", "api_key": BINANCE_KEY, "api_secret": BINANCE_SECRET,
    }, follow=True)
    body = response.content.decode()
    assert "••••" + BINANCE_KEY[-4:] in body
    assert BINANCE_KEY not in body and BINANCE_SECRET not in body


def test_a_key_that_can_withdraw_is_refused_with_an_explanation(client, user_a, recorded_binance):
    recorded_binance.restrictions["enableWithdrawals"] = True
    client.force_login(user_a)
    response = client.post("/trading/connections/", {
        "label": "Main", "venue": "binance", "api_key": BINANCE_KEY, "api_secret": BINANCE_SECRET,
    })
    assert response.status_code == 422
    assert "This key can withdraw funds" in response.content.decode()
    with tenant(user_a.pk):
        assert not ExchangeConnection.objects.exists()


def test_a_bot_is_created_and_paused_from_its_pages(trader, user_a, paper_a):
    portfolio, connection = paper_a
    response = trader.post("/trading/bots/", {
        "name": "Trend", "portfolio": portfolio.pk, "connection": connection.pk, "symbol": "BTC/USDT",
        "strategy": "sma_crossover", "timeframe": "1m", "fast": "5", "slow": "20", "allocation": "200",
        "max_position": "0.05", "daily_loss_limit": "40",
    }, follow=True)
    assert "Bot Trend is running." in response.content.decode()
    with tenant(user_a.pk):
        bot = Bot.objects.get()
    assert (bot.params, bot.params_key, bot.allocation) == ({"fast": 5, "slow": 20}, "fast=5,slow=20", Decimal("200"))
    trader.post(f"/trading/bots/{bot.pk}/status/")
    with tenant(user_a.pk):
        assert Bot.objects.get().status == "paused"


def test_a_venue_with_fees_above_the_maximum_is_refused_for_bots(trader, user_a, paper_a, settings):
    settings.TRADING_BOT_MAX_TAKER_FEE = Decimal("0.0005")
    portfolio, connection = paper_a
    response = trader.post("/trading/bots/", {
        "name": "Pricey", "portfolio": portfolio.pk, "connection": connection.pk, "symbol": "BTC/USDT",
        "strategy": "dca", "timeframe": "1m", "every": "5", "allocation": "100", "max_position": "1",
        "daily_loss_limit": "10",
    })
    assert response.status_code == 422
    assert "0.100% taker fee; bots need 0.050% or less" in response.content.decode()


def test_bad_bot_input_is_a_form_error(trader, paper_a):
    portfolio, connection = paper_a
    response = trader.post("/trading/bots/", {
        "name": "X", "portfolio": portfolio.pk, "connection": connection.pk, "symbol": "BTC/USDT",
        "strategy": "sma_crossover", "timeframe": "1m", "fast": "30", "slow": "10", "allocation": "100",
        "max_position": "1", "daily_loss_limit": "10",
    })
    assert response.status_code == 422 and "The fast SMA must be shorter" in response.content.decode()


def test_the_markets_page_shows_each_pairs_regime(trader, user_a, paper_a):
    RegimeReadingFactory(instrument=InstrumentFactory(symbol="BTC/USDT"), as_of="2023-03-10T11:00:00Z",
                         regime="bearish", sma_slope_pct="-3.78", adx="72")
    response = trader.get("/trading/markets/", follow=True)
    assert response.redirect_chain == [("/markets", 301)]
    body = response.content.decode()
    assert "regime-bearish" in body and "-3.78%" in body


def test_the_public_market_pages_show_the_regime_too(client, instruments):
    RegimeReadingFactory(instrument=instruments["BTC/USDT"], as_of="2023-03-10T11:00:00Z", regime="bearish",
                         sma_slope_pct="-3.78", adx="72")
    listing = client.get("/markets").content.decode()
    row = listing[listing.index('id="market-BTC-USDT"'):]
    row = row[: row.index("</tr>")]
    assert '<th scope="col">Regime</th>' in listing
    assert 'class="badge regime-bearish"' in row and ">Bearish</span>" in row
    other = listing[listing.index('id="market-BTC-USDC"'):]
    assert '<span class="muted">—</span>' in other[: other.index("</tr>")], "a pair not classified yet"
    detail = client.get("/markets/BTC-USDT").content.decode()
    assert "<dt>Regime</dt>" in detail and "SMA slope -3.78%, ADX 72.0 (1h candles to 2023-03-10 11:00 UTC)" in detail


def test_the_nav_links_to_trading(trader):
    body = trader.get("/trading/bots/").content.decode()
    assert 'href="/trading/"' in body and 'aria-current="page">Bots</a>' in body


# --- API -------------------------------------------------------------------------------------------------------


def test_the_api_places_lists_and_cancels_orders(trader, paper_a):
    portfolio, connection = paper_a
    created = trader.post("/api/v1/trading/orders/", {
        "connection": connection.pk, "portfolio": portfolio.pk, "symbol": "BTC/USDT", "side": "buy",
        "type": "limit", "quantity": "0.1", "price": "19000",
    }, content_type="application/json")
    assert created.status_code == 201 and created.json()["status"] == "open"
    listed = trader.get("/api/v1/trading/orders/?open=true").json()
    assert [o["id"] for o in listed["results"]] == [created.json()["id"]]
    cancelled = trader.post(f"/api/v1/trading/orders/{created.json()['id']}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    again = trader.post(f"/api/v1/trading/orders/{created.json()['id']}/cancel/")
    assert again.status_code == 400 and again["Content-Type"] == "application/problem+json"


def test_api_errors_are_problem_json(trader, paper_a):
    portfolio, connection = paper_a
    response = trader.post("/api/v1/trading/orders/", {
        "connection": connection.pk, "portfolio": portfolio.pk, "symbol": "BTC/USDT", "side": "buy",
        "type": "market", "quantity": "50",
    }, content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert "Insufficient balance" in str(response.json()["errors"]["quantity"])


def test_a_bot_page_lists_what_the_bot_did(trader, user_a, paper_a):
    bot = make_bot(user_a, paper_a)
    services.plans_execute(plans=services.signal_plan(signal_id=make_signal().pk).pending, symbol="BTC/USDT")
    body = trader.get(f"/trading/bots/{bot.pk}/").content.decode()
    assert "Executed" in body and "test signal" in body


def test_a_client_order_id_taken_by_someone_else_is_refused(trader, client, user_b, paper_a, paper_b):
    portfolio, connection = paper_a
    payload = {"connection": connection.pk, "portfolio": portfolio.pk, "symbol": "BTC/USDT", "side": "buy",
               "type": "limit", "quantity": "0.1", "price": "19000",
               "client_order_id": "5b6f3f5e-2c1d-4c1e-9d53-0d1f2f3a4b5c"}
    first = trader.post("/api/v1/trading/orders/", payload, content_type="application/json")
    retried = trader.post("/api/v1/trading/orders/", payload, content_type="application/json")
    assert first.status_code == retried.status_code == 201 and first.json()["id"] == retried.json()["id"]
    portfolio_b, connection_b = paper_b
    client.force_login(user_b)
    stolen = client.post("/api/v1/trading/orders/", {**payload, "connection": connection_b.pk,
                                                     "portfolio": portfolio_b.pk}, content_type="application/json")
    assert stolen.status_code == 400 and "already in use" in str(stolen.json()["errors"])


def test_a_degraded_venue_is_shown_on_the_pages(client, user_a, recorded_binance, btc_quote):
    from tests.trading.binance import binance_connection
    from trading.exchanges.breaker import breaker_record_failure

    binance_connection(user_a)
    client.force_login(user_a)
    assert "degraded" not in client.get("/trading/connections/").content.decode()
    breaker_record_failure(venue="binance", http_status=418)
    assert "degraded (retry in" in client.get("/trading/connections/").content.decode()
    assert "binance: degraded" in client.get("/trading/").content.decode()
