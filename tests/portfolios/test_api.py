"""REST API: token auth under RLS, services behind it, problem+json errors, exact decimals as strings."""

from __future__ import annotations

import pytest

from tests.factories import api_token_for
from tests.portfolios.conftest import set_quote

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client, user_a, instruments):
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {api_token_for(user_a)}"
    return client


def _post(client, url, data):
    return client.post(url, data, content_type="application/json")


def test_create_record_and_read_back(api, instruments):
    created = _post(api, "/api/v1/portfolios/", {"name": "API", "base_currency": "USDT"})
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    url = f"/api/v1/portfolios/{pk}/transactions/"
    assert (
        _post(
            api,
            url,
            {
                "kind": "deposit",
                "currency": "USDT",
                "quantity": "1000",
                "executed_at": "2023-03-01T09:00:00Z",
            },
        ).status_code
        == 201
    )
    buy = _post(
        api,
        url,
        {
            "kind": "buy",
            "symbol": "BTC-USDT",
            "quantity": "0.01",
            "price": "23140.48",
            "fee": "0.231",
            "executed_at": "2023-03-01T10:00:00Z",
            "external_id": "fill-1",
        },
    )
    assert buy.status_code == 201, buy.content
    assert buy.json()["price"] == "23140.480000000000"
    again = _post(
        api,
        url,
        {
            "kind": "buy",
            "symbol": "BTC-USDT",
            "quantity": "0.01",
            "price": "23140.48",
            "executed_at": "2023-03-01T10:00:00Z",
            "external_id": "fill-1",
        },
    )
    assert again.json()["id"] == buy.json()["id"]

    set_quote(instruments["BTC/USDT"], "25000")
    detail = api.get(f"/api/v1/portfolios/{pk}/").json()
    assert detail["valuation"]["total"] == "1018.364200000000"  # 250 + 1,000 - 231.4048 - 0.231
    positions = api.get(f"/api/v1/portfolios/{pk}/positions/").json()
    assert [(p["symbol"], p["quantity"], p["unrealized_pnl"]) for p in positions] == [
        ("BTC/USDT", "0.010000000000", "18.364200000000")
    ]
    listing = api.get(url).json()
    assert len(listing["results"]) == 2 and listing["results"][0]["external_id"] == "fill-1"
    performance = api.get(f"/api/v1/portfolios/{pk}/performance/").json()
    assert [p["period"] for p in performance] == ["1D", "1W", "1M", "YTD", "1Y", "ALL"]


def test_errors_are_problem_json_with_the_field(api):
    pk = _post(api, "/api/v1/portfolios/", {"name": "API", "base_currency": "USDT"}).json()["id"]
    url = f"/api/v1/portfolios/{pk}/transactions/"
    oversell = _post(
        api,
        url,
        {
            "kind": "sell",
            "symbol": "BTC/USDT",
            "quantity": "1",
            "price": "20000",
            "executed_at": "2023-03-01T10:00:00Z",
        },
    )
    assert oversell.status_code == 400
    assert oversell["Content-Type"] == "application/problem+json"
    assert oversell.json()["errors"]["quantity"] == [
        "You hold 0 BTC in BTC/USDT; this sell needs 1. Selling more than you hold needs a portfolio that "
        "allows short positions."
    ]
    unknown = _post(
        api,
        url,
        {
            "kind": "buy",
            "symbol": "DOGE/USDT",
            "quantity": "1",
            "price": "1",
            "executed_at": "2023-03-01T10:00:00Z",
        },
    )
    assert unknown.status_code == 400 and "symbol" in unknown.json()["errors"]
    bad = _post(
        api,
        url,
        {"kind": "buy", "symbol": "BTC/USDT", "quantity": "-1", "price": "x", "executed_at": "yesterday"},
    )
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"quantity", "price", "executed_at"}
    duplicate = _post(api, "/api/v1/portfolios/", {"name": "api", "base_currency": "USDT"})
    assert duplicate.status_code == 400 and "name" in duplicate.json()["errors"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/portfolios/"),
        ("post", "/api/v1/portfolios/{pk}/transactions/"),
        ("patch", "/api/v1/accounts/me/"),
        ("post", "/api/v1/trading/orders/"),
    ],
)
def test_a_body_nested_5000_deep_is_a_400_on_every_write_endpoint(api, user_a, method, path):
    from core.rls import tenant
    from portfolios.services import portfolio_create

    with tenant(user_a.pk):
        pk = portfolio_create(user=user_a, name="Main", base_currency="USDT").pk
    response = getattr(api, method)(
        path.format(pk=pk), "[" * 5000 + "]" * 5000, content_type="application/json"
    )
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "JSON parse error - nested deeper than 32 levels."


def test_a_page_size_of_two_to_the_63_is_cut_to_the_largest_page(api, user_a):
    from core.rls import tenant
    from portfolios.services import portfolio_create

    with tenant(user_a.pk):
        pk = portfolio_create(user=user_a, name="Main", base_currency="USDT").pk
    for _ in range(3):
        _post(
            api,
            f"/api/v1/portfolios/{pk}/transactions/",
            {"kind": "deposit", "currency": "USDT", "quantity": "1", "executed_at": "2023-03-01T09:00:00Z"},
        )
    page = api.get(f"/api/v1/portfolios/{pk}/transactions/", {"page_size": 2**63}).json()
    assert len(page["results"]) == 3 and page["next"] is None
    assert api.get("/api/v1/trading/orders/", {"page_size": 2**63}).json()["results"] == []
