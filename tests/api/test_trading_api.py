"""The trading API as a program uses it: orders, exchange connections, bots, plans, blocked executions.

Every object endpoint answers 404 for another trader's object; bad input is a 400 problem+json with the
field at fault; the services decide, exactly as on the pages."""

from __future__ import annotations

import inspect
import uuid
from decimal import Decimal

import pytest

from core.rls import tenant
from tests.api.conftest import user_client
from tests.factories import BlockedExecutionFactory, ExecutionPlanFactory, api_token_for
from tests.trading.binance import BINANCE_KEY, BINANCE_SECRET
from trading.models import Bot, ExchangeConnection, Order

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    return response.json()


def _post(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


def _patch(client, url, data):
    return client.patch(url, data, content_type="application/json")


def _order(paper, **fields):
    portfolio, connection = paper
    data = {
        "connection": connection.pk,
        "portfolio": portfolio.pk,
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.1",
        "price": "19000",
    }
    data.update(fields)
    return data


def _bot(paper, **fields):
    portfolio, connection = paper
    data = {
        "name": "Hourly DCA",
        "connection": connection.pk,
        "portfolio": portfolio.pk,
        "symbol": "BTC-USDT",
        "strategy": "dca",
        "params": {"every": 60},
        "timeframe": "1m",
        "allocation": "100",
        "max_position": "0.5",
        "daily_loss_limit": "50",
    }
    data.update(fields)
    return data


# --- orders ---------------------------------------------------------------------------------------------------


def test_a_paper_market_order_fills_and_moves_the_position(api_a, paper_a):
    portfolio, _ = paper_a
    placed = _post(
        api_a, "/api/v1/trading/orders/", _order(paper_a, type="market", quantity="0.05", price=None)
    )
    assert placed.status_code == 201, placed.content
    order = placed.json()
    assert (order["status"], order["source"], Decimal(order["filled_quantity"])) == (
        "filled",
        "api",
        Decimal("0.05"),
    )
    listed = api_a.get("/api/v1/trading/orders/", {"status": "filled"}).json()["results"]
    assert [(o["id"], o["status"]) for o in listed] == [(order["id"], "filled")]
    fills = api_a.get(f"/api/v1/trading/orders/{order['id']}/fills/").json()
    assert sum(Decimal(f["quantity"]) for f in fills) == Decimal("0.05")
    positions = api_a.get(f"/api/v1/portfolios/{portfolio.pk}/positions/").json()
    rows = positions["results"] if isinstance(positions, dict) else positions
    btc = [p for p in rows if p.get("symbol") in ("BTC/USDT", "BTC") or p.get("asset") == "BTC"]
    assert btc and Decimal(btc[0]["quantity"]) == Decimal("0.05"), rows


def test_a_limit_order_rests_is_read_back_and_cancelled(api_a, paper_a):
    placed = _post(api_a, "/api/v1/trading/orders/", _order(paper_a)).json()
    assert placed["status"] == "open"
    read = api_a.get(f"/api/v1/trading/orders/{placed['id']}/").json()
    assert (read["price"], read["symbol"]) == ("19000.000000000000", "BTC/USDT")
    assert [o["id"] for o in api_a.get("/api/v1/trading/orders/", {"open": "true"}).json()["results"]] == [
        placed["id"]
    ]
    cancelled = _post(api_a, f"/api/v1/trading/orders/{placed['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert api_a.get("/api/v1/trading/orders/", {"open": "true"}).json()["results"] == []
    _problem(_post(api_a, f"/api/v1/trading/orders/{placed['id']}/cancel/"), 400)


def test_the_check_validates_like_placing_and_writes_nothing(api_a, user_a, paper_a):
    check = _post(api_a, "/api/v1/trading/orders/check/", _order(paper_a))
    assert check.status_code == 200, check.content
    assert Decimal(check.json()["notional"]) == Decimal("1900") and check.json()["quote_currency"] == "USDT"
    refused = _problem(_post(api_a, "/api/v1/trading/orders/check/", _order(paper_a, quantity="50")), 400)
    assert "Insufficient balance" in str(refused["errors"]["quantity"])
    with tenant(user_a.pk):
        assert not Order.objects.exists()


def test_order_filters(api_a, paper_a):
    _post(api_a, "/api/v1/trading/orders/", _order(paper_a))
    _post(api_a, "/api/v1/trading/orders/", _order(paper_a, type="market", quantity="0.01", price=None))
    sells = api_a.get("/api/v1/trading/orders/", {"side": "sell"}).json()["results"]
    pair = api_a.get("/api/v1/trading/orders/", {"symbol": "btc-usdt", "source": "api"}).json()["results"]
    later = api_a.get("/api/v1/trading/orders/", {"since": "2999-01-01T00:00:00Z"}).json()["results"]
    assert (len(sells), len(pair), len(later)) == (0, 2, 0)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"quantity": "abc"}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "50"}, "quantity"),  # more than the balance
        ({"quantity": "0.1234567"}, "quantity"),  # finer than the pair's precision
        ({"price": None}, "price"),  # a limit order needs its price
        ({"symbol": 0}, "symbol"),
        ({"symbol": "NOPE/USDT"}, "symbol"),
        ({"side": "hold"}, "side"),
        ({"type": "iceberg"}, "type"),
        ({"connection": "one"}, "connection"),
        ({"connection": 2**70}, "connection"),
        ({"portfolio": 999999}, "portfolio"),
        ({"client_order_id": "not-a-uuid"}, "client_order_id"),
    ],
)
def test_bad_orders_are_field_errors_and_nothing_is_placed(api_a, user_a, paper_a, fields, field):
    response = _post(api_a, "/api/v1/trading/orders/", _order(paper_a, **fields))
    assert field in _problem(response, 400)["errors"]
    with tenant(user_a.pk):
        assert not Order.objects.exists()


@pytest.mark.parametrize(
    "query", [{"status": "lost"}, {"since": "last week"}, {"open": "maybe"}, {"side": 7}]
)
def test_bad_order_filters_are_400(api_a, query):
    _problem(api_a.get("/api/v1/trading/orders/", query), 400)


def test_another_traders_connection_and_portfolio_cannot_be_used(api_a, paper_a, paper_b):
    portfolio_b, connection_b = paper_b
    response = _post(api_a, "/api/v1/trading/orders/", _order(paper_a, connection=connection_b.pk))
    assert "connection" in _problem(response, 400)["errors"]
    response = _post(api_a, "/api/v1/trading/orders/", _order(paper_a, portfolio=portfolio_b.pk))
    assert "portfolio" in _problem(response, 400)["errors"]


# --- exchange connections -------------------------------------------------------------------------------------


def test_a_binance_key_is_stored_encrypted_and_listed_by_its_last_four(api_a, user_a, recorded_binance):
    created = _post(
        api_a,
        "/api/v1/trading/connections/",
        {
            "label": "Main",
            "venue": "binance",
            "api_key": BINANCE_KEY,
            "api_secret": BINANCE_SECRET,
        },
    )
    assert created.status_code == 201, created.content
    assert created.json()["key_last_four"] == BINANCE_KEY[-4:]
    listed = api_a.get("/api/v1/trading/connections/")
    body = listed.content.decode()
    assert BINANCE_KEY not in body and BINANCE_SECRET not in body
    assert [(c["label"], c["key_last_four"]) for c in listed.json()] == [("Main", BINANCE_KEY[-4:])]
    with tenant(user_a.pk):
        stored = ExchangeConnection.objects.get()
    assert stored.api_key_encrypted and BINANCE_KEY not in stored.api_key_encrypted


def test_a_key_that_can_withdraw_is_refused(api_a, recorded_binance):
    recorded_binance.restrictions["enableWithdrawals"] = True
    response = _post(
        api_a,
        "/api/v1/trading/connections/",
        {
            "label": "Main",
            "venue": "binance",
            "api_key": BINANCE_KEY,
            "api_secret": BINANCE_SECRET,
        },
    )
    assert "can withdraw" in str(_problem(response, 400)["errors"]["api_key"])
    assert api_a.get("/api/v1/trading/connections/").json() == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"venue": "paper"}, "label"),
        ({"label": 0, "venue": "paper"}, "label"),
        ({"label": "X", "venue": "mtgox"}, "venue"),
        ({"label": "X", "venue": "binance"}, "api_key"),
        ({"label": "X", "venue": "paper", "api_key": "k" * 2000}, "api_key"),
    ],
)
def test_bad_connections_are_field_errors(api_a, data, field):
    assert field in _problem(_post(api_a, "/api/v1/trading/connections/", data), 400)["errors"]


def test_a_connection_is_read_and_deleted(api_a):
    created = _post(api_a, "/api/v1/trading/connections/", {"label": "Practice", "venue": "paper"}).json()
    assert api_a.get(f"/api/v1/trading/connections/{created['id']}/").json()["label"] == "Practice"
    assert api_a.delete(f"/api/v1/trading/connections/{created['id']}/").status_code == 204
    assert api_a.get("/api/v1/trading/connections/").json() == []
    _problem(api_a.get(f"/api/v1/trading/connections/{created['id']}/"), 404)


def test_a_connection_a_bot_uses_cannot_be_deleted(api_a, paper_a):
    _post(api_a, "/api/v1/trading/bots/", _bot(paper_a))
    response = api_a.delete(f"/api/v1/trading/connections/{paper_a[1].pk}/")
    assert "Bots use this connection" in _problem(response, 400)["errors"]["detail"][0]


# --- bots -----------------------------------------------------------------------------------------------------


def test_strategies_are_listed_with_their_parameters(api_a):
    strategies = {s["key"]: s for s in api_a.get("/api/v1/trading/strategies/").json()}
    assert {"dca", "sma_crossover", "rsi_mean_reversion"} <= set(strategies)
    assert [p["name"] for p in strategies["sma_crossover"]["params"]] == ["fast", "slow"]


def test_a_bot_is_created_changed_paused_resumed_and_deleted(api_a, user_a, paper_a):
    created = _post(api_a, "/api/v1/trading/bots/", _bot(paper_a))
    assert created.status_code == 201, created.content
    bot = created.json()
    assert (bot["status"], bot["symbol"], bot["params"]) == ("enabled", "BTC/USDT", {"every": 60})
    assert [b["name"] for b in api_a.get("/api/v1/trading/bots/").json()["results"]] == ["Hourly DCA"]
    url = f"/api/v1/trading/bots/{bot['id']}/"
    changed = _patch(api_a, url, {"allocation": "50", "params": {"every": 30}, "name": "Half-hourly"})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["allocation"], changed.json()["params"], changed.json()["name"]) == (
        "50.000000000000",
        {"every": 30},
        "Half-hourly",
    )
    assert api_a.get(url).json()["allocation"] == "50.000000000000"
    paused = _post(api_a, f"{url}pause/")
    assert paused.json()["status"] == "paused"
    assert api_a.get("/api/v1/trading/bots/", {"status": "paused"}).json()["results"][0]["id"] == bot["id"]
    assert _post(api_a, f"{url}resume/").json()["status"] == "enabled"
    assert api_a.delete(url).status_code == 204
    assert api_a.get("/api/v1/trading/bots/").json()["results"] == []
    with tenant(user_a.pk):
        assert not Bot.objects.exists()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": 0}, "name"),
        ({"strategy": "martingale"}, "strategy"),
        ({"params": {"every": "often"}}, "params"),
        ({"params": {"fast": 3}}, "params"),  # DCA has no such parameter
        ({"params": {"every": 0}}, "params"),  # out of the strategy's bounds
        ({"params": []}, "params"),
        ({"allocation": "1"}, "allocation"),  # below the pair's minimum notional
        ({"allocation": "-5"}, "allocation"),
        ({"timeframe": "2m"}, "timeframe"),
        ({"symbol": "NOPE/USDT"}, "symbol"),
        ({"daily_loss_limit": "lots"}, "daily_loss_limit"),
    ],
)
def test_bad_bots_are_field_errors(api_a, user_a, paper_a, fields, field):
    response = _post(api_a, "/api/v1/trading/bots/", _bot(paper_a, **fields))
    assert field in _problem(response, 400)["errors"]
    with tenant(user_a.pk):
        assert not Bot.objects.exists()


def test_a_bad_change_leaves_the_bot_as_it_was(api_a, paper_a):
    bot = _post(api_a, "/api/v1/trading/bots/", _bot(paper_a)).json()
    url = f"/api/v1/trading/bots/{bot['id']}/"
    assert "name" in _problem(_patch(api_a, url, {"name": "  "}), 400)["errors"]
    assert "timeframe" in _problem(_patch(api_a, url, {"timeframe": 5}), 400)["errors"]
    assert "params" in _problem(_patch(api_a, url, {"params": {"every": -1}}), 400)["errors"]
    assert "allocation" in _problem(_patch(api_a, url, {"allocation": "0.5"}), 400)["errors"]
    assert api_a.get(url).json() == bot


def test_the_plans_bot_limit_holds_over_the_api(api_a, paper_a):
    assert _post(api_a, "/api/v1/trading/bots/", _bot(paper_a)).status_code == 201
    refused = _problem(_post(api_a, "/api/v1/trading/bots/", _bot(paper_a, name="Second")), 400)
    assert "Upgrade to Pro" in str(refused["errors"])


def test_a_bots_orders_plans_and_blocked_executions(api_a, user_a, paper_a):
    from tests.trading.conftest import make_signal
    from trading.fanout import services

    bot = _post(api_a, "/api/v1/trading/bots/", _bot(paper_a, params={"every": 1})).json()
    services.plans_execute(plans=services.signal_plan(signal_id=make_signal().pk).pending, symbol="BTC/USDT")
    url = f"/api/v1/trading/bots/{bot['id']}/"
    orders = api_a.get(f"{url}orders/").json()["results"]
    assert [(o["source"], o["bot"], o["status"]) for o in orders] == [("bot", bot["id"], "filled")]
    plans = api_a.get(f"{url}plans/").json()["results"]
    assert [(p["status"], p["order"], p["signal_reason"]) for p in plans] == [
        ("executed", orders[0]["id"], "test signal")
    ]
    assert api_a.get(f"{url}plans/", {"status": "blocked"}).json()["results"] == []
    _problem(api_a.get(f"{url}plans/", {"status": "nope"}), 400)
    with tenant(user_a.pk):
        model = Bot.objects.get(pk=bot["id"])
    blocked = BlockedExecutionFactory(user=user_a, bot=model)
    rows = api_a.get(f"{url}blocked-executions/").json()["results"]
    assert [(r["id"], r["regime"], r["bot_name"]) for r in rows] == [(blocked.pk, "bearish", "Hourly DCA")]
    everywhere = api_a.get("/api/v1/trading/blocked-executions/").json()["results"]
    assert [r["id"] for r in everywhere] == [blocked.pk]
    assert (
        api_a.get("/api/v1/trading/blocked-executions/", {"bot": bot["id"]}).json()["results"][0]["id"]
        == blocked.pk
    )
    one = api_a.get(f"/api/v1/trading/blocked-executions/{blocked.pk}/").json()
    assert (one["side"], one["symbol"], one["reason"]) == ("buy", "BTC/USDT", blocked.reason)


# --- another trader's objects ---------------------------------------------------------------------------------


@pytest.fixture
def objects_of_b(user_b, paper_b):
    """One of each of trader B's objects: an order, a connection, a bot, a plan and a blocked execution."""
    client_b = user_client(user_b)
    order = _post(client_b, "/api/v1/trading/orders/", _order(paper_b)).json()
    bot = _post(client_b, "/api/v1/trading/bots/", _bot(paper_b)).json()
    with tenant(user_b.pk):
        model = Bot.objects.get(pk=bot["id"])
    plan = ExecutionPlanFactory(user=user_b, bot=model)
    blocked = BlockedExecutionFactory(user=user_b, bot=model)
    return {
        "order": order["id"],
        "connection": paper_b[1].pk,
        "bot": bot["id"],
        "plan": plan.pk,
        "blocked": blocked.pk,
    }


OBJECT_ENDPOINTS = [
    ("get", "/api/v1/trading/orders/{order}/"),
    ("post", "/api/v1/trading/orders/{order}/cancel/"),
    ("get", "/api/v1/trading/orders/{order}/fills/"),
    ("get", "/api/v1/trading/connections/{connection}/"),
    ("delete", "/api/v1/trading/connections/{connection}/"),
    ("get", "/api/v1/trading/bots/{bot}/"),
    ("patch", "/api/v1/trading/bots/{bot}/"),
    ("delete", "/api/v1/trading/bots/{bot}/"),
    ("post", "/api/v1/trading/bots/{bot}/pause/"),
    ("post", "/api/v1/trading/bots/{bot}/resume/"),
    ("get", "/api/v1/trading/bots/{bot}/orders/"),
    ("get", "/api/v1/trading/bots/{bot}/plans/"),
    ("get", "/api/v1/trading/bots/{bot}/blocked-executions/"),
    ("get", "/api/v1/trading/blocked-executions/{blocked}/"),
]


@pytest.mark.parametrize(("method", "template"), OBJECT_ENDPOINTS)
def test_another_traders_object_is_a_404_and_stays_as_it_was(
    api_a, paper_a, objects_of_b, user_b, method, template
):
    url = template.format(**objects_of_b)
    if method in ("get", "delete"):
        response = getattr(api_a, method)(url)
    else:
        response = getattr(api_a, method)(url, {"name": "Mine now"}, content_type="application/json")
    _problem(response, 404)
    client_b = user_client(user_b)
    assert client_b.get(f"/api/v1/trading/orders/{objects_of_b['order']}/").json()["status"] == "open"
    bot = client_b.get(f"/api/v1/trading/bots/{objects_of_b['bot']}/").json()
    assert (bot["name"], bot["status"]) == ("Hourly DCA", "enabled")
    assert client_b.get(f"/api/v1/trading/connections/{objects_of_b['connection']}/").status_code == 200
    assert client_b.get(f"/api/v1/trading/blocked-executions/{objects_of_b['blocked']}/").status_code == 200


def test_another_traders_objects_are_not_listed(api_a, paper_a, objects_of_b):
    refused = _problem(api_a.get("/api/v1/trading/blocked-executions/", {"bot": objects_of_b["bot"]}), 400)
    assert refused["errors"] == {"bot": ["No such bot."]}, "the same answer as for a bot that does not exist"
    assert api_a.get("/api/v1/trading/orders/").json()["results"] == []
    assert api_a.get("/api/v1/trading/bots/").json()["results"] == []
    assert [c["label"] for c in api_a.get("/api/v1/trading/connections/").json()] == ["Paper"]
    assert api_a.get("/api/v1/trading/blocked-executions/").json()["results"] == []


def test_unknown_ids_are_404(api_a):
    _problem(api_a.get(f"/api/v1/trading/orders/{uuid.uuid4()}/"), 404)
    _problem(api_a.get("/api/v1/trading/bots/999999999/"), 404)
    _problem(api_a.get("/api/v1/trading/blocked-executions/99999999999999999999/"), 404)


# --- scopes ---------------------------------------------------------------------------------------------------


def test_a_read_token_reads_but_cannot_trade(user_a, paper_a):
    if "scopes" not in inspect.signature(api_token_for).parameters:
        pytest.skip("tokens have no scopes yet (the API foundation adds them)")
    reader = user_client(user_a, scopes=["read"])
    assert reader.get("/api/v1/trading/orders/").status_code == 200
    assert reader.get("/api/v1/trading/bots/").status_code == 200
    _problem(_post(reader, "/api/v1/trading/orders/", _order(paper_a)), 403)
    _problem(_post(reader, "/api/v1/trading/bots/", _bot(paper_a)), 403)
    _problem(_post(reader, "/api/v1/trading/connections/", {"label": "X", "venue": "paper"}), 403)
    with tenant(user_a.pk):
        assert not Order.objects.exists() and not Bot.objects.exists()


# --- the shared API machinery on these operations ---------------------------------------------------------------


def test_a_retried_order_with_the_same_idempotency_key_is_placed_once(api_a, user_a, paper_a):
    key = {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}
    first = api_a.post("/api/v1/trading/orders/", _order(paper_a), content_type="application/json", **key)
    retried = api_a.post("/api/v1/trading/orders/", _order(paper_a), content_type="application/json", **key)
    assert first.status_code == retried.status_code == 201
    assert first.json()["id"] == retried.json()["id"]
    with tenant(user_a.pk):
        assert Order.objects.count() == 1
    bot_key = {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}
    bots = [
        api_a.post("/api/v1/trading/bots/", _bot(paper_a), content_type="application/json", **bot_key)
        for _ in range(2)
    ]
    assert [b.status_code for b in bots] == [201, 201] and bots[0].json()["id"] == bots[1].json()["id"]


def test_orders_are_paged_by_cursor_newest_first(api_a, paper_a):
    placed = [
        _post(api_a, "/api/v1/trading/orders/", _order(paper_a, price=str(19000 + n))).json()["id"]
        for n in range(3)
    ]
    seen, url, query = [], "/api/v1/trading/orders/", {"page_size": 2}
    while url:
        page = api_a.get(url, query).json()
        seen += [o["id"] for o in page["results"]]
        url, query = page["next"], None
    assert seen == placed[::-1]


def test_an_unchanged_order_answers_304_to_its_etag(api_a, paper_a):
    order = _post(api_a, "/api/v1/trading/orders/", _order(paper_a)).json()
    url = f"/api/v1/trading/orders/{order['id']}/"
    etag = api_a.get(url)["ETag"]
    assert api_a.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    _post(api_a, f"{url}cancel/")
    assert api_a.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 200
