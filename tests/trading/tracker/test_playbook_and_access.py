"""Playbook tags on manual orders (ticket, API, model), the tracker's pages and API for their owner only (another
trader's bot, tag or replay is a 404), and replays started from a page and the API."""

from __future__ import annotations

from decimal import Decimal

from core.rls import tenant
from tests.factories import ReplayFillFactory, ReplayRunFactory, api_token_for
from tests.trading.conftest import make_bot, set_quote
from trading.choices import ReplayStatus
from trading.models import Fill, Order, ReplayRun
from trading.orders.services import order_place


def _api(client, user):
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {api_token_for(user)}"
    return client


def _ticket(connection, portfolio, **fields):
    return {"connection": connection.pk, "portfolio": portfolio.pk, "symbol": "BTC/USDT", "side": "buy",
            "type": "market", "quantity": "0.01", **fields}


def test_the_order_ticket_stores_a_playbook_tag_and_refuses_a_bad_one(client, user_a, paper_a):
    portfolio, connection = paper_a
    client.force_login(user_a)
    response = client.post("/trading/orders/", _ticket(connection, portfolio, playbook_tag="  Breakout   retest "),
                           HTTP_HX_REQUEST="true")
    assert "Order placed" in response.content.decode()
    with tenant(user_a.pk):
        assert Order.objects.get().playbook_tag == "Breakout retest"
    response = client.post("/trading/orders/", _ticket(connection, portfolio, playbook_tag="<script>"),
                           HTTP_HX_REQUEST="true")
    assert "A playbook tag is up to 40 letters" in response.content.decode()
    # The ticket offers the tags already used.
    assert '<option value="Breakout retest">' in client.get("/trading/").content.decode()


def test_the_api_takes_and_returns_a_playbook_tag(client, user_a, paper_a):
    portfolio, connection = paper_a
    api = _api(client, user_a)
    created = api.post("/api/v1/trading/orders/", _ticket(connection, portfolio, playbook_tag="scalp"),
                       content_type="application/json")
    assert created.status_code == 201 and created.json()["playbook_tag"] == "scalp"
    bad = api.post("/api/v1/trading/orders/", _ticket(connection, portfolio, playbook_tag="a/b"),
                   content_type="application/json")
    assert bad.status_code == 400 and "playbook_tag" in str(bad.json())


def test_a_tags_round_trip_is_in_its_journal_and_statistics(client, user_a, paper_a):
    portfolio, connection = paper_a
    with tenant(user_a.pk):
        order_place(user=user_a, portfolio=portfolio, connection=connection, symbol="BTC/USDT", side="buy",
                    type="market", quantity=Decimal("0.1"), playbook_tag="breakout")
    set_quote("BTC/USDT", "21000", bid="20999", ask="21001")
    with tenant(user_a.pk):
        order_place(user=user_a, portfolio=portfolio, connection=connection, symbol="BTC/USDT", side="sell",
                    type="market", quantity=Decimal("0.1"), playbook_tag="breakout")
    client.force_login(user_a)
    stats = client.get("/api/v1/trading/tracker/tag/breakout/stats/").json()
    assert stats["stats"]["trades"] == 1 and stats["stats"]["wins"] == 1
    with tenant(user_a.pk):
        buy, sell = (Fill.objects.get(order__side=side) for side in ("buy", "sell"))
    # Bought at the ask plus slippage, sold at the bid less slippage: proceeds net of the sell's fee less the
    # buy's cost with its fee.
    assert buy.price > Decimal("20001") and sell.price < Decimal("20999")
    expected = (Decimal("0.1") * sell.price - sell.fee) - (Decimal("0.1") * buy.price + buy.fee)
    assert Decimal(stats["stats"]["net_pnl"]) == expected > 0
    journal = client.get("/api/v1/trading/tracker/tag/breakout/journal/").json()
    assert journal["count"] == 1 and journal["results"][0]["entry_reason"] == "Order ticket: breakout"
    page = client.get("/trading/tracker/tag/breakout/").content.decode()
    assert "Trade journal" in page and "Order ticket: breakout" in page and "Per regime at entry" in page
    assert "breakout" in client.get("/trading/tracker/").content.decode()
    history = client.get("/trading/orders/history/").content.decode()
    assert '<a href="/trading/tracker/tag/breakout/">breakout</a>' in history


def test_another_traders_bot_tag_and_replay_are_404_in_pages_and_api(client, user_a, user_b, paper_a):
    bot = make_bot(user_a, paper_a, name="Alice's DCA")
    run = ReplayRunFactory(user=user_a, name="Alice's replay")
    ReplayFillFactory(user=user_a, run=run)
    portfolio, connection = paper_a
    with tenant(user_a.pk):
        order_place(user=user_a, portfolio=portfolio, connection=connection, symbol="BTC/USDT", side="buy",
                    type="market", quantity=Decimal("0.01"), playbook_tag="secret-setup")
    client.force_login(user_a)
    for path in (f"/trading/tracker/bot/{bot.pk}/", "/trading/tracker/strategy/dca/",
                 "/trading/tracker/tag/secret-setup/", f"/trading/tracker/replay/{run.pk}/",
                 f"/trading/tracker/replays/{run.pk}/"):
        assert client.get(path).status_code == 200, path
    assert "Simulation" in client.get(f"/trading/tracker/replay/{run.pk}/").content.decode()

    client.force_login(user_b)
    for path in (f"/trading/tracker/bot/{bot.pk}/", "/trading/tracker/strategy/dca/",
                 "/trading/tracker/tag/secret-setup/", f"/trading/tracker/replay/{run.pk}/",
                 f"/trading/tracker/replays/{run.pk}/", "/trading/tracker/nothing/1/"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/trading/tracker/replays/{run.pk}/delete/").status_code == 404
    assert client.post(f"/trading/tracker/replays/bot/{bot.pk}/").status_code == 404
    overview = client.get("/trading/tracker/").content.decode()
    assert "Alice" not in overview and "secret-setup" not in overview
    compare = client.get(f"/trading/tracker/compare/?s=bot:{bot.pk}&s=replay:{run.pk}")
    assert compare.status_code == 404

    api = _api(client, user_b)
    for path in (f"/api/v1/trading/tracker/bot/{bot.pk}/stats/", f"/api/v1/trading/tracker/bot/{bot.pk}/journal/",
                 "/api/v1/trading/tracker/tag/secret-setup/stats/", f"/api/v1/trading/tracker/replay/{run.pk}/stats/",
                 f"/api/v1/trading/tracker/replays/{run.pk}/"):
        response = api.get(path)
        assert response.status_code == 404 and response["Content-Type"].startswith("application/problem+json"), path
    assert api.get("/api/v1/trading/tracker/").json() == []
    assert api.get("/api/v1/trading/tracker/replays/").json()["results"] == []


def test_a_replay_started_from_the_page_and_the_api(client, user_a, paper_a, django_capture_on_commit_callbacks,
                                                    monkeypatch):
    started = []
    monkeypatch.setattr("trading.tracker.services.task_enqueue", lambda name, args: started.append((name, args)))
    bot = make_bot(user_a, paper_a, name="Trend", strategy="sma_crossover", params={"fast": 9, "slow": 21})
    client.force_login(user_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/trading/tracker/replays/bot/{bot.pk}/")
    with tenant(user_a.pk):
        run = ReplayRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/trading/tracker/replays/{run.pk}/"
    assert started == [("trading.replay_run", [run.pk, user_a.pk])]
    assert (run.strategy, run.params_key, run.bot_id, run.status) == ("sma_crossover", "fast=9,slow=21", bot.pk, "queued")
    status = client.get(f"/trading/tracker/replays/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "Waiting for a worker" in status and 'hx-trigger="every 2s"' in status

    bad = client.post("/trading/tracker/replays/", {"name": "x", "symbol": "BTC/USDT", "strategy": "sma_crossover",
                                                     "timeframe": "1m", "fast": "30", "slow": "10",
                                                     "allocation": "250", "max_position": "0.1",
                                                     "daily_loss_limit": "150", "source": "recording"})
    assert bad.status_code == 422 and "The fast SMA must be shorter than the slow one." in bad.content.decode()

    api = _api(client, user_a)
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/v1/trading/tracker/replays/", {
            "name": "API run", "symbol": "BTC-USDT", "strategy": "dca", "params": {"every": 5}, "timeframe": "1m",
            "allocation": "100", "max_position": "0.2", "daily_loss_limit": "100",
        }, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert body["simulated"] is True and body["status"] == ReplayStatus.QUEUED and body["symbol"] == "BTC/USDT"
    assert api.get(f"/api/v1/trading/tracker/replays/{body['id']}/").json()["name"] == "API run"
    refused = api.post("/api/v1/trading/tracker/replays/", {
        "name": "Too long", "symbol": "BTC/USDT", "strategy": "dca", "timeframe": "1m", "allocation": "100",
        "max_position": "0.2", "daily_loss_limit": "100", "source": "stored",
        "start": "2023-01-01T00:00:00Z", "end": "2023-03-01T00:00:00Z",
    }, content_type="application/json")
    assert refused.status_code == 400 and "31 days" in str(refused.json())
