"""The pages a trader uses: dashboard, add-transaction form (HTMX), transactions, export, watchlists."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from core.rls import tenant
from portfolios.models import Portfolio, Transaction
from portfolios.services import portfolio_create, transaction_record
from tests.portfolios.conftest import D, at, set_quote

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_a(client, user_a):
    client.force_login(user_a)
    return client


@pytest.fixture
def funded(user_a, instruments):
    with tenant(user_a.pk):
        portfolio = portfolio_create(user=user_a, name="Main", base_currency="USDT")
        transaction_record(
            user=user_a,
            portfolio=portfolio,
            kind="deposit",
            currency="USDT",
            quantity=D("10000"),
            executed_at=at(1, 9),
        )
        transaction_record(
            user=user_a,
            portfolio=portfolio,
            kind="buy",
            instrument=instruments["BTC/USDT"],
            quantity=D("0.2"),
            price=D("20000"),
            fee=D("4"),
            executed_at=at(1, 10),
        )
    set_quote(instruments["BTC/USDT"], "25000", open_24h="24000")
    return portfolio


def test_dashboard_without_a_portfolio_offers_to_create_one(client_a):
    response = client_a.get(reverse("dashboard"))
    assert response.status_code == 200
    assert b"Create your first portfolio" in response.content

    response = client_a.post(
        reverse("portfolios"), {"name": "Long term", "base_currency": "USDT", "kind": "manual"}
    )
    assert response.status_code == 302
    assert Portfolio.objects.count() == 0  # outside the request the tenant setting is gone: RLS hides it
    response = client_a.get(response["Location"])
    assert b"Long term (USDT)" in response.content


def test_dashboard_shows_live_value_positions_and_recent_transactions(client_a, funded):
    response = client_a.get(reverse("dashboard"))
    assert response.status_code == 200
    html = response.content.decode()
    # 0.2 BTC at 25,000 (5,000) + cash 10,000 - 4,004
    assert f'id="pf-{funded.pk}-total" data-total>10,996.00<' in html
    assert 'data-symbol="BTC/USDT"' in html
    assert "+996.00" in html  # unrealized: 5,000 - 4,004 cost
    assert "equity-data" in html and "Recent transactions" in html
    assert 'hx-post="/portfolios/' in html


def test_an_open_dashboard_keeps_its_viewer_present(client_a, funded, user_a):
    from portfolios.presence import viewers_among

    assert viewers_among(user_ids=[user_a.pk]) == set()
    html = client_a.get(reverse("dashboard")).content.decode()
    assert viewers_among(user_ids=[user_a.pk]) == {user_a.pk}
    assert 'hx-post="/dashboard/presence/" hx-trigger="every 45s"' in html
    assert client_a.post(reverse("dashboard_presence")).status_code == 204


def test_htmx_add_transaction_shows_field_errors_in_place(client_a, funded):
    url = reverse("portfolio_transaction_add", args=[funded.pk])
    response = client_a.post(
        url,
        {
            "kind": "sell",
            "instrument": "BTC/USDT",
            "quantity": "5",
            "price": "25000",
            "executed_at": "2023-03-02T10:00",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="transaction-form"')
    assert 'id="id_quantity_error">You hold 0.2 BTC in BTC/USDT; this sell needs 5.' in html
    assert 'value="5"' in html  # what was typed stays


def test_htmx_add_transaction_records_and_updates_the_page_out_of_band(client_a, funded):
    url = reverse("portfolio_transaction_add", args=[funded.pk])
    response = client_a.post(
        url,
        {
            "kind": "sell",
            "instrument": "BTC/USDT",
            "quantity": "0.1",
            "price": "25000",
            "fee": "2.5",
            "executed_at": "2023-03-02T10:00",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Recorded:" in html
    assert f'id="pf-{funded.pk}-stats" class="grid stats" hx-swap-oob="true"' in html
    assert f'id="pf-{funded.pk}-recent" class="table-wrap" hx-swap-oob="true"' in html
    with tenant(funded.user_id):
        sell = Transaction.objects.get(kind="sell")
    assert sell.realized_pnl == D("2497.5") - D("2002")


def test_a_bad_number_is_a_form_error_not_a_500(client_a, funded):
    response = client_a.post(
        reverse("portfolio_transaction_add", args=[funded.pk]),
        {
            "kind": "buy",
            "instrument": "BTC/USDT",
            "quantity": "lots",
            "price": "1",
            "executed_at": "2023-03-02T10:00",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert b'id="id_quantity_error">Enter a number.' in response.content


def test_export_round_trips_through_the_import_format(client_a, funded):
    response = client_a.get(reverse("portfolio_export_transactions", args=[funded.pk]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["type"], r["symbol"], r["currency"], r["quantity"], r["price"], r["fee"]) for r in rows] == [
        ("deposit", "", "USDT", "10000", "", ""),
        ("buy", "BTC/USDT", "", "0.2", "20000", "4"),
    ]
    positions = list(
        csv.DictReader(
            io.StringIO(
                client_a.get(reverse("portfolio_export_positions", args=[funded.pk])).content.decode()
            )
        )
    )
    assert positions[0]["symbol"] == "BTC/USDT" and positions[0]["market_value"] == "5000"
    assert positions[0]["unrealized_pnl"] == "996"


def test_watchlist_create_add_and_show_prices(client_a, instruments):
    set_quote(instruments["ETH/USDT"], "1605.2")
    assert client_a.post(reverse("watchlists"), {"name": "Majors"}).status_code == 302
    page = client_a.get(reverse("watchlists")).content.decode()
    assert "Majors" in page
    watchlist_id = int(page.split('action="/watchlists/')[1].split("/")[0])
    client_a.post(reverse("watchlist_add", args=[watchlist_id]), {f"w{watchlist_id}-instrument": "ETH/USDT"})
    page = client_a.get(reverse("watchlists")).content.decode()
    assert "ETH/USDT" in page and "1,605.20" in page


def test_an_unknown_instrument_is_a_field_error(client_a, funded):
    response = client_a.post(
        reverse("portfolio_transaction_add", args=[funded.pk]),
        {
            "kind": "buy",
            "instrument": "DOGE/USDT",
            "quantity": "1",
            "price": "1",
            "executed_at": "2023-03-02T10:00",
        },
        HTTP_HX_REQUEST="true",
    )
    assert b'id="id_instrument_error">Unknown instrument &#x27;DOGE/USDT&#x27;.' in response.content
    assert b'<option value="BTC/USDT">' in response.content  # the datalist offers the listed symbols


def test_deleting_a_portfolio_takes_its_transactions_and_is_audited(client_a, funded, user_a):
    from core.models import AuditLog

    response = client_a.post(reverse("portfolio_delete", args=[funded.pk]))
    assert response.status_code == 302
    with tenant(user_a.pk):
        assert not Portfolio.objects.exists() and not Transaction.objects.exists()
        assert AuditLog.objects.filter(action="portfolio.deleted").count() == 1
