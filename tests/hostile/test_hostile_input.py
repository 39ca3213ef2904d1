"""Hostile input: every form, CSV column, API field and query parameter gets values built to break parsers
and the database: NUL characters, lone surrogates, text far past any limit, numbers that overflow or read
ambiguously, dates outside what a datetime can hold, JSON of the wrong type or nested thousands deep.

Each request changes one field of a payload the platform accepts (`test_the_untouched_payloads_are_accepted`
proves they are), so a refusal can only come from the hostile value. The answer must be a 4xx, or a page
that names the problem, never a 500 (the test client re-raises the view's exception); and nothing is
written: no row in any table the request could reach, and no audit row. The market sockets are in
tests/marketdata/test_hostile_sockets.py (they need the hub's per-test reset).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from accounts.models import User
from alerts.models import Alert
from core.models import AuditLog
from core.rls import system_context, tenant
from portfolios.models import Portfolio, Transaction, Watchlist, WatchlistItem
from portfolios.services import portfolio_create, watchlist_create
from tests.factories import DEFAULT_PASSWORD
from tests.trading.conftest import paper_setup, set_quote
from trading.models import Bot, ExchangeConnection, Order

pytestmark = pytest.mark.django_db

HOSTILE = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- The classes of hostile values ------------------------------------------------------------------------

with_nul = st.text(max_size=8).map(lambda s: f"{s}\x00{s}")
oversized = st.tuples(st.sampled_from("9xé"), st.sampled_from([1_100, 140_000])).map(lambda t: t[0] * t[1])
# Hostile for any field: nothing may store these.
TEXT = st.one_of(with_nul, oversized)
# Hostile for numbers: overflow, underflow, not-a-number, decimal commas, more digits than any column.
NUMBER = st.sampled_from(
    [
        "1e999999999",
        "-1e999999999",
        "1e-999999999",
        "NaN",
        "sNaN",
        "-Infinity",
        "0,5",
        "20000,50",
        "9" * 60,
        str(2**63),
        str(-(2**63) - 1),
        "0x10",
    ]
)
# Hostile for dates: outside year 1..9999 once in UTC, or not a date at all.
DATE = st.sampled_from(
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:00:00-05:00",
        "99999-01-01T00:00:00Z",
        "2023-02-30T10:00:00",
        "0000-00-00",
    ]
)
BY_KIND = {
    "text": TEXT,
    "choice": st.one_of(TEXT, NUMBER, DATE),
    "number": st.one_of(TEXT, NUMBER),
    "date": st.one_of(TEXT, DATE),
}
# JSON can also carry lone surrogates (as \ud800 escapes), containers and numbers no column holds.
surrogates = st.sampled_from(["\ud800", "a\udfffb"])
containers = st.sampled_from([[], {}, [["nested"]], {"a": {"b": 1}}])
huge = st.sampled_from([10**400, -(10**400), 1e308, -1e308])
API_BY_KIND = {
    "text": st.one_of(TEXT, surrogates, containers),
    "choice": st.one_of(TEXT, NUMBER, DATE, surrogates, containers, huge),
    "number": st.one_of(TEXT, NUMBER, surrogates, containers, huge),
    "date": st.one_of(TEXT, DATE, surrogates, containers, huge),
    "id": st.one_of(TEXT, NUMBER, surrogates, containers, huge, st.just(None)),
    "boolean": st.one_of(TEXT, NUMBER, surrogates, containers, huge),
}


# --- What a request may have written ----------------------------------------------------------------------

WATCHED = [
    User,
    EmailAddress,
    Portfolio,
    Transaction,
    Watchlist,
    WatchlistItem,
    Alert,
    ExchangeConnection,
    Bot,
    Order,
    AuditLog,
]


def row_counts() -> dict[str, int]:
    with system_context(reason="hostile-input test: counting rows"):
        return {model.__name__: model.objects.count() for model in WATCHED}


def assert_refused(response, before: dict[str, int]) -> None:
    assert response.status_code < 500
    assert row_counts() == before, "a refused request wrote rows"


# --- The world the requests act in ------------------------------------------------------------------------


@dataclass
class World:
    user: User
    portfolio: Portfolio
    paper_portfolio: Portfolio
    connection: ExchangeConnection
    watchlist: Watchlist


@pytest.fixture
def world(user_a, instruments_seeded) -> World:
    set_quote("BTC/USDT", "20000", bid="19999", ask="20001")
    paper_portfolio, connection = paper_setup(user_a)
    with tenant(user_a.pk):
        portfolio = portfolio_create(user=user_a, name="Main", base_currency="USDT")
        watchlist = watchlist_create(user=user_a, name="Majors")
    return World(user_a, portfolio, paper_portfolio, connection, watchlist)


@pytest.fixture
def instruments_seeded(db):
    from marketdata.services import instruments_seed

    return instruments_seed()


@pytest.fixture
def browser(client, world):
    client.force_login(world.user)
    return client


@pytest.fixture
def api(client, world):
    token = Token.objects.create(user=world.user)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {token.key}"
    return client


# --- Forms --------------------------------------------------------------------------------------------------


@dataclass
class Form:
    """A page's form: where it posts, a payload it accepts, and each field's kind (text, number, ...)."""

    url: str
    payload: dict
    fields: dict[str, str]
    anonymous: bool = False


def forms(w: World) -> dict[str, Form]:
    p, pp, c = w.portfolio.pk, w.paper_portfolio.pk, w.connection.pk
    return {
        "portfolio": Form(
            "/portfolios/",
            {"name": "Long term", "base_currency": "USDT", "kind": "manual"},
            {"name": "text", "base_currency": "choice", "kind": "choice"},
        ),
        "transaction": Form(
            f"/portfolios/{p}/transactions/add/",
            {
                "kind": "deposit",
                "instrument": "",
                "currency": "USDT",
                "quantity": "100",
                "price": "",
                "fee": "",
                "fee_currency": "",
                "executed_at": "2023-03-01T10:00:00",
                "note": "salary",
            },
            {
                "kind": "choice",
                "instrument": "text",
                "currency": "text",
                "quantity": "number",
                "price": "number",
                "fee": "number",
                "fee_currency": "text",
                "executed_at": "date",
                "note": "text",
            },
        ),
        "watchlist": Form("/watchlists/", {"name": "Alts"}, {"name": "text"}),
        "watchlist item": Form(
            f"/watchlists/{w.watchlist.pk}/add/",
            {f"w{w.watchlist.pk}-instrument": "ETH/USDT"},
            {f"w{w.watchlist.pk}-instrument": "choice"},
        ),
        "profile": Form(
            "/settings/",
            {"display_name": "Alice", "time_zone": "Europe/Paris", "base_currency": "EUR"},
            {"display_name": "text", "time_zone": "choice", "base_currency": "choice"},
        ),
        "alert": Form(
            "/alerts/",
            {
                "kind": "price_above",
                "symbol": "BTC/USDT",
                "threshold": "30000",
                "portfolio": "",
                "pnl_unit": "",
                "window_minutes": "",
                "venue": "",
                "cooldown_minutes": "15",
                "expires_at": "",
                "note": "moon",
            },
            {
                "kind": "choice",
                "symbol": "text",
                "threshold": "number",
                "portfolio": "choice",
                "pnl_unit": "choice",
                "window_minutes": "choice",
                "venue": "text",
                "cooldown_minutes": "number",
                "expires_at": "date",
                "note": "text",
            },
        ),
        "connection": Form(
            "/trading/connections/",
            {"label": "Second paper", "venue": "paper", "api_key": "", "api_secret": "", "passphrase": ""},
            {
                "label": "text",
                "venue": "choice",
                "api_key": "text",
                "api_secret": "text",
                "passphrase": "text",
            },
        ),
        "order": Form(
            "/trading/orders/",
            {
                "connection": c,
                "portfolio": pp,
                "symbol": "BTC/USDT",
                "side": "buy",
                "type": "limit",
                "quantity": "0.1",
                "price": "19000",
                "stop_price": "",
            },
            {
                "connection": "choice",
                "portfolio": "choice",
                "symbol": "choice",
                "side": "choice",
                "type": "choice",
                "quantity": "number",
                "price": "number",
                "stop_price": "number",
            },
        ),
        "bot": Form(
            "/trading/bots/",
            {
                "name": "Trend",
                "portfolio": pp,
                "connection": c,
                "symbol": "BTC/USDT",
                "strategy": "sma_crossover",
                "timeframe": "1m",
                "fast": "5",
                "slow": "20",
                "allocation": "200",
                "max_position": "0.05",
                "daily_loss_limit": "40",
            },
            {
                "name": "text",
                "portfolio": "choice",
                "connection": "choice",
                "symbol": "choice",
                "strategy": "choice",
                "timeframe": "choice",
                "fast": "number",
                "slow": "number",
                "allocation": "number",
                "max_position": "number",
                "daily_loss_limit": "number",
            },
        ),
        "add email": Form(
            "/accounts/email/", {"email": "alice.work@example.com", "action_add": ""}, {"email": "text"}
        ),
        "change password": Form(
            "/accounts/password/change/",
            {"oldpassword": DEFAULT_PASSWORD, "password1": "another-horse-7", "password2": "another-horse-7"},
            {"oldpassword": "text", "password1,password2": "text"},
        ),
        "sign up": Form(
            "/accounts/signup/",
            {
                "email": "newcomer@example.com",
                "password1": "a-strong-pass-2026",
                "password2": "a-strong-pass-2026",
            },
            {"email": "text", "password1,password2": "text"},
            anonymous=True,
        ),
    }


def _post(client, form: Form, data: dict):
    return (Client() if form.anonymous else client).post(form.url, data)


@pytest.mark.parametrize(
    "name",
    [
        "portfolio",
        "transaction",
        "watchlist",
        "watchlist item",
        "profile",
        "alert",
        "connection",
        "order",
        "bot",
        "add email",
        "change password",
        "sign up",
    ],
)
def test_the_untouched_payloads_are_accepted(browser, world, name):
    """Without this, a hostile value could be 'refused' only because the rest of the payload was wrong."""
    form = forms(world)[name]
    before = row_counts()
    response = _post(browser, form, form.payload)
    assert response.status_code in (200, 302), response.content[:2000]
    assert row_counts() != before, f"the {name} form's untouched payload wrote nothing"


@HOSTILE
@given(data=st.data())
def test_every_form_field_refuses_hostile_values(browser, world, data):
    all_forms = forms(world)
    name = data.draw(st.sampled_from(sorted(all_forms)), label="form")
    form = all_forms[name]
    fields = data.draw(st.sampled_from(sorted(form.fields)), label="field")
    value = data.draw(BY_KIND[form.fields[fields]], label="value")
    payload = {**form.payload, **dict.fromkeys(fields.split(","), value)}
    before = row_counts()
    assert_refused(_post(browser, form, payload), before)


def test_logging_in_with_hostile_values_fails_cleanly(client, world):
    for value in ["\x00", "a\x00b@example.com", "x" * 140_000, "é" * 5_000]:
        for data in (
            {"login": value, "password": DEFAULT_PASSWORD},
            {"login": world.user.email, "password": value},
        ):
            response = client.post("/accounts/login/", data)
            assert response.status_code in (200, 429) and "_auth_user_id" not in client.session


# --- Query strings ------------------------------------------------------------------------------------------


def pages(w: World) -> dict[str, tuple[str, list[str]]]:
    return {
        "dashboard": ("/dashboard/", ["portfolio"]),
        "transactions": (f"/portfolios/{w.portfolio.pk}/transactions/", ["page"]),
        "alerts": ("/alerts/", ["symbol", "kind", "threshold", "portfolio", "pnl_unit"]),
        "market": ("/markets/BTC-USDT", ["tf"]),
        "order history": (
            "/trading/orders/history/",
            ["status", "symbol", "side", "source", "since", "until", "page"],
        ),
        "blocked": ("/trading/blocked/", ["page"]),
        "billing return": ("/billing/return/", ["result", "session_id"]),
    }


@HOSTILE
@given(data=st.data())
def test_every_query_parameter_refuses_hostile_values(browser, world, data):
    all_pages = pages(world)
    url, params = all_pages[data.draw(st.sampled_from(sorted(all_pages)), label="page")]
    param = data.draw(st.sampled_from(params), label="parameter")
    value = data.draw(st.one_of(TEXT, NUMBER, DATE, st.sampled_from(["²", "٣", "-1", "1.5"])), label="value")
    before = row_counts()
    assert_refused(browser.get(url, {param: value}), before)


@pytest.mark.parametrize(
    "path", ["/markets/%00", "/markets/a%00b", "/markets/" + "X" * 5000, "/markets/%ED%A0%80"]
)
def test_market_pages_for_hostile_symbols_are_not_found(client, instruments_seeded, path):
    assert client.get(path).status_code == 404


# --- CSV import -----------------------------------------------------------------------------------------------

CSV_FORMATS = {
    "nexus": (
        "date,type,symbol,currency,quantity,price,fee,fee_currency,note,external_id",
        ["2023-03-01T10:00:00Z", "deposit", "", "USDT", "1000", "", "1", "USDT", "first", "ext-1"],
        {
            "date": "date",
            "type": "choice",
            "symbol": "text",
            "currency": "text",
            "quantity": "number",
            "price": "number",
            "fee": "number",
            "fee_currency": "text",
            "note": "text",
            "external_id": "text",
        },
    ),
    "binance": (
        "Date(UTC),Pair,Side,Price,Executed,Amount,Fee",
        ["2023-03-01 10:00:00", "BTCUSDT", "BUY", "20000", "0.01BTC", "200USDT", "0.00001BTC"],
        {
            "date(utc)": "date",
            "pair": "choice",
            "side": "choice",
            "price": "number",
            "executed": "number",
            "amount": "number",
            "fee": "number",
        },
    ),
    "binance legacy": (
        "Date(UTC),Market,Type,Price,Amount,Total,Fee,Fee Coin",
        ["2023-03-01 10:00:00", "BTCUSDT", "BUY", "20000", "0.01", "200", "0.00001", "BTC"],
        {
            "date(utc)": "date",
            "market": "choice",
            "type": "choice",
            "price": "number",
            "amount": "number",
            "total": "text",
            "fee": "number",
            "fee coin": "text",
        },
    ),
}
FUNDING = "2023-02-01T00:00:00Z,deposit,,USDT,100000,,,,,funding"


def _csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _csv(header: str, cells: list[str]) -> bytes:
    return f"{header}\n{','.join(_csv_cell(c) for c in cells)}\n".encode()


def _import(client, world, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("hostile.csv", content, content_type="text/csv")
    return client.post(f"/portfolios/{world.portfolio.pk}/import/", {"file": upload})


@pytest.mark.parametrize("fmt", sorted(CSV_FORMATS))
def test_the_untouched_csv_rows_are_accepted(browser, world, fmt):
    header, row, _ = CSV_FORMATS[fmt]
    if fmt.startswith("binance"):
        _import_funding(browser, world)
    preview = _import(browser, world, _csv(header, row))
    assert preview.status_code == 200 and preview.context["token"], preview.context["preview"].rows


def _import_funding(client, world) -> None:
    """USDT to buy with, so that a Binance row is valid on its own."""
    header = CSV_FORMATS["nexus"][0]
    response = _import(client, world, f"{header}\n{FUNDING}\n".encode())
    client.post(f"/portfolios/{world.portfolio.pk}/import/", {"token": response.context["token"]})


@HOSTILE
@given(data=st.data())
def test_every_csv_column_refuses_hostile_values(browser, world, data):
    header, row, columns = CSV_FORMATS[data.draw(st.sampled_from(sorted(CSV_FORMATS)), label="format")]
    names = [c.strip().lower() for c in header.split(",")]
    column = data.draw(st.sampled_from(sorted(columns)), label="column")
    value = data.draw(BY_KIND[columns[column]], label="value")
    cells = [value if name == column else cell for name, cell in zip(names, row, strict=True)]
    before = row_counts()
    response = _import(browser, world, _csv(header, cells))
    assert_refused(response, before)
    assert response.status_code == 400 and "token" not in response.context
    preview = response.context["preview"]
    assert preview.file_errors or all(r.message for r in preview.rows if r.status == "error")


# --- REST API -----------------------------------------------------------------------------------------------


def endpoints(w: World) -> dict[str, tuple[str, str, dict, dict[str, str]]]:
    """Each write endpoint: method, path, a body it accepts, and each field's kind."""
    p, pp, c = w.portfolio.pk, w.paper_portfolio.pk, w.connection.pk
    return {
        "portfolio": (
            "post",
            "/api/v1/portfolios/",
            {"name": "API", "base_currency": "USDT"},
            {"name": "text", "base_currency": "choice", "kind": "choice", "allow_short": "boolean"},
        ),
        "transaction": (
            "post",
            f"/api/v1/portfolios/{p}/transactions/",
            {
                "kind": "deposit",
                "currency": "USDT",
                "quantity": "100",
                "executed_at": "2023-03-01T09:00:00Z",
                "note": "n",
                "external_id": "api-1",
            },
            {
                "kind": "choice",
                "symbol": "text",
                "currency": "text",
                "quantity": "number",
                "price": "number",
                "fee": "number",
                "fee_currency": "text",
                "executed_at": "date",
                "external_id": "text",
                "note": "text",
            },
        ),
        "me": (
            "patch",
            "/api/v1/accounts/me/",
            {"display_name": "Al"},
            {"display_name": "text", "time_zone": "choice", "base_currency": "choice"},
        ),
        "order": (
            "post",
            "/api/v1/trading/orders/",
            {
                "connection": c,
                "portfolio": pp,
                "symbol": "BTC/USDT",
                "side": "buy",
                "type": "limit",
                "quantity": "0.1",
                "price": "19000",
            },
            {
                "connection": "id",
                "portfolio": "id",
                "symbol": "text",
                "side": "choice",
                "type": "choice",
                "quantity": "number",
                "price": "number",
                "stop_price": "number",
                "client_order_id": "id",
            },
        ),
    }


def _send(client, method: str, path: str, body) -> object:
    raw = body if isinstance(body, str) else json.dumps(body)
    return getattr(client, method)(path, raw, content_type="application/json")


@pytest.mark.parametrize("name", ["portfolio", "transaction", "me", "order"])
def test_the_untouched_api_bodies_are_accepted(api, world, name):
    method, path, body, _ = endpoints(world)[name]
    before = row_counts()
    response = _send(api, method, path, body)
    assert response.status_code in (200, 201), response.content
    assert row_counts() != before


@HOSTILE
@given(data=st.data())
def test_every_api_field_refuses_hostile_values(api, world, data):
    all_endpoints = endpoints(world)
    method, path, body, fields = all_endpoints[
        data.draw(st.sampled_from(sorted(all_endpoints)), label="endpoint")
    ]
    name = data.draw(st.sampled_from(sorted(fields)), label="field")
    value = data.draw(API_BY_KIND[fields[name]], label="value")
    before = row_counts()
    response = _send(api, method, path, {**body, name: value})
    assert_refused(response, before)
    assert 400 <= response.status_code < 500 and response["Content-Type"] == "application/problem+json"


@HOSTILE
@given(
    data=st.data(),
    body=st.one_of(
        st.integers(min_value=33, max_value=20_000).map(lambda n: "[" * n + "]" * n),
        st.integers(min_value=33, max_value=20_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.sampled_from(["[]", '"x"', "1", "null", "{", '{"name": NaN}', '{"name": "\\ud800"}', "\x00"]),
        # Anything but an object or nothing at all (an empty PATCH is a valid request that changes nothing).
        st.text(max_size=50).filter(lambda text: text.strip()[:1] not in ("", "{")),
    ),
)
def test_every_api_write_endpoint_refuses_malformed_bodies(api, world, data, body):
    all_endpoints = endpoints(world)
    method, path, _, _ = all_endpoints[data.draw(st.sampled_from(sorted(all_endpoints)), label="endpoint")]
    before = row_counts()
    response = _send(api, method, path, body)
    assert_refused(response, before)
    assert 400 <= response.status_code < 500 and response["Content-Type"] == "application/problem+json"


@HOSTILE
@given(
    path=st.sampled_from(["/api/v1/trading/orders/", "/api/v1/portfolios/{p}/transactions/"]),
    param=st.sampled_from(["limit", "offset", "status", "symbol", "side", "open"]),
    value=st.one_of(TEXT, NUMBER, st.sampled_from([str(2**63), str(10**30), "-1", "0", "²"])),
)
def test_list_query_parameters_refuse_or_bound_hostile_values(api, world, path, param, value):
    response = api.get(path.format(p=world.portfolio.pk), {param: value})
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert len(response.json()["results"]) <= 500
