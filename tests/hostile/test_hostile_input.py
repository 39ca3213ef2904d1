"""Hostile input: every form field, query parameter, CSV column and API field gets values built to break
parsers and the database: NUL characters, lone surrogates, text far past any limit, numbers that overflow
or read ambiguously, dates a datetime cannot hold, JSON of the wrong type or nested thousands deep.

Each request changes one field of a payload the platform accepts (the `..._untouched_...` tests prove
they are accepted), so a refusal can only come from the hostile value. The answer must be a 4xx or a
page naming the problem, never a 500 (the test client re-raises a view's exception), and nothing may be
written: no row in any table the request could reach, not even an audit row. The market sockets get the
same treatment in tests/marketdata/test_hostile_sockets.py, beside the hub's per-test reset.
"""

from __future__ import annotations

import json

import pytest
from allauth.account.models import EmailAddress
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from alerts.models import Alert
from core.models import AuditLog
from core.rls import system_context, tenant
from marketdata.services import instruments_seed
from portfolios.models import Portfolio, Transaction, Watchlist, WatchlistItem
from portfolios.services import portfolio_create, watchlist_create
from tests.factories import DEFAULT_PASSWORD, api_token_for
from tests.trading.conftest import paper_setup, set_quote
from trading.models import Bot, ExchangeConnection, Order, ReplayRun

pytestmark = pytest.mark.django_db

# Each test is parametrized by the field it attacks; hypothesis picks the values.
HOSTILE = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- The classes of hostile values ------------------------------------------------------------------------

with_nul = st.text(max_size=8).map(lambda s: f"{s}\x00{s}")
oversized = st.builds(
    lambda char, size: char * size, st.sampled_from("9xé"), st.sampled_from([1_100, 140_000])
)
# Hostile for any field: nothing may store these.
TEXT = st.one_of(with_nul, oversized)
# Hostile for numbers: overflow, underflow, not a number, decimal commas, more digits than any column.
NUMBER = st.sampled_from(
    ["1e999999999", "-1e999999999", "1e-999999999", "NaN", "sNaN", "-Infinity", "0,5", "20000,50", "9" * 60,
     "-" + "9" * 60, "0x10"]
)  # fmt: skip
# Hostile for dates: outside years 1 to 9999 once in UTC, or no date at all.
DATE = st.sampled_from(
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-05:00", "99999-01-01T00:00:00Z", "2023-02-30T10:00:00",
     "0000-00-00"]
)  # fmt: skip
BY_KIND = {
    "text": TEXT,
    "choice": st.one_of(TEXT, NUMBER, DATE),
    "number": st.one_of(TEXT, NUMBER),
    "date": st.one_of(TEXT, DATE),
    # Binance writes the unit after the number, so "1e999999999" is 1 of a coin called E999999999.
    "amount": st.one_of(TEXT, NUMBER.filter(lambda v: v not in ("1e999999999", "0x10"))),
}
# Query strings select and page rather than store, so edge values that are valid somewhere join in.
QUERY = st.one_of(
    TEXT, NUMBER, DATE, st.sampled_from(["²", "٣", "-1", "1.5", str(2**63), "0001-01-01", "9999-12-31"])
)
# JSON also carries lone surrogates (as \ud800 escapes), containers, and numbers no column holds.
surrogates = st.sampled_from(["\ud800", "a\udfffb"])
containers = st.sampled_from([[], {}, [["nested"]], {"a": {"b": 1}}])
huge = st.sampled_from([2**63, -(2**63) - 1, 10**400, -(10**400), 1e308, -1e308])
API_BY_KIND = {
    "text": st.one_of(TEXT, surrogates, containers),
    "choice": st.one_of(TEXT, NUMBER, DATE, surrogates, containers, huge),
    "number": st.one_of(TEXT, NUMBER, surrogates, containers, huge),
    "date": st.one_of(TEXT, DATE, surrogates, containers, huge),
    "id": st.one_of(TEXT, NUMBER, surrogates, containers, huge, st.just(None)),
    "boolean": st.one_of(TEXT, NUMBER, surrogates, containers, huge),
    # DRF reads an integer below 2**128 as a UUID.
    "uuid": st.one_of(TEXT, NUMBER, surrogates, containers, st.sampled_from([-1, 2**128, 1e308])),
}

# --- What a request may have written ----------------------------------------------------------------------

WATCHED = [User, EmailAddress, Portfolio, Transaction, Watchlist, WatchlistItem, Alert, ExchangeConnection, Bot,
           Order, ReplayRun, AuditLog]  # fmt: skip


def row_counts() -> dict[str, int]:
    with system_context(reason="hostile-input test: counting rows"):
        return {model.__name__: model.objects.count() for model in WATCHED}


def assert_refused(response, before: dict[str, int]) -> None:
    assert response.status_code < 500
    assert row_counts() == before, "a refused request wrote rows"


# --- The world the requests act in: {p} a portfolio, {pp} a paper one, {c} its connection, {w} a watchlist --


@pytest.fixture
def ids(user_a) -> dict[str, int]:
    instruments_seed()
    set_quote("BTC/USDT", "20000", bid="19999", ask="20001")
    paper_portfolio, connection = paper_setup(user_a)
    with tenant(user_a.pk):
        portfolio = portfolio_create(user=user_a, name="Main", base_currency="USDT")
        watchlist = watchlist_create(user=user_a, name="Majors")
    return {"p": portfolio.pk, "pp": paper_portfolio.pk, "c": connection.pk, "w": watchlist.pk}


def resolve(template: dict | str, ids: dict[str, int]):
    if isinstance(template, dict):
        return {resolve(key, ids): resolve(value, ids) for key, value in template.items()}
    return template.format(**ids)


@pytest.fixture
def browser(client, user_a, ids):
    client.force_login(user_a)
    return client


@pytest.fixture
def api(client, user_a, ids):
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {api_token_for(user_a)}"
    return client


def unthrottled() -> None:
    """Many examples in a row would pass the plan's API requests per minute, and then meet only a 429."""
    cache.clear()


# --- Forms: url, a payload the form accepts, each field's kind ---------------------------------------------

FORMS = {
    "portfolio": (
        "/portfolios/",
        {"name": "Long term", "base_currency": "USDT", "kind": "manual"},
        {"name": "text", "base_currency": "choice", "kind": "choice"},
    ),
    "transaction": (
        "/portfolios/{p}/transactions/add/",
        {"kind": "deposit", "instrument": "", "currency": "USDT", "quantity": "100", "price": "", "fee": "",
         "fee_currency": "", "executed_at": "2023-03-01T10:00:00", "note": "salary"},
        {"kind": "choice", "instrument": "text", "currency": "text", "quantity": "number", "price": "number",
         "fee": "number", "fee_currency": "text", "executed_at": "date", "note": "text"},
    ),
    "watchlist": ("/watchlists/", {"name": "Alts"}, {"name": "text"}),
    "watchlist item": ("/watchlists/{w}/add/", {"w{w}-instrument": "ETH/USDT"}, {"w{w}-instrument": "choice"}),
    "profile": (
        "/settings/",
        {"display_name": "Alice", "time_zone": "Europe/Paris", "base_currency": "EUR"},
        {"display_name": "text", "time_zone": "choice", "base_currency": "choice"},
    ),
    "alert": (
        "/alerts/",
        {"kind": "price_above", "symbol": "BTC/USDT", "threshold": "30000", "portfolio": "", "pnl_unit": "",
         "window_minutes": "", "venue": "", "cooldown_minutes": "15", "expires_at": "", "note": "moon"},
        {"kind": "choice", "symbol": "text", "threshold": "number", "portfolio": "choice", "pnl_unit": "choice",
         "window_minutes": "choice", "venue": "text", "cooldown_minutes": "number", "expires_at": "date",
         "note": "text"},
    ),
    "connection": (
        "/trading/connections/",
        {"label": "Second paper", "venue": "paper", "api_key": "", "api_secret": "", "passphrase": ""},
        {"label": "text", "venue": "choice", "api_key": "text", "api_secret": "text", "passphrase": "text"},
    ),
    "order": (
        "/trading/orders/",
        {"connection": "{c}", "portfolio": "{pp}", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
         "quantity": "0.1", "price": "19000", "stop_price": "", "playbook_tag": "breakout"},
        {"connection": "choice", "portfolio": "choice", "symbol": "choice", "side": "choice", "type": "choice",
         "quantity": "number", "price": "number", "stop_price": "number", "playbook_tag": "text"},
    ),
    "replay": (
        "/trading/tracker/replays/",
        {"name": "Trend", "symbol": "BTC/USDT", "strategy": "sma_crossover", "timeframe": "1m", "fast": "9",
         "slow": "21", "allocation": "250", "max_position": "0.1", "daily_loss_limit": "150",
         "source": "recording", "start": "", "end": ""},
        {"name": "text", "symbol": "choice", "strategy": "choice", "timeframe": "choice", "fast": "number",
         "slow": "number", "allocation": "number", "max_position": "number", "daily_loss_limit": "number",
         "source": "choice", "start": "date", "end": "date"},
    ),
    "bot": (
        "/trading/bots/",
        {"name": "Trend", "portfolio": "{pp}", "connection": "{c}", "symbol": "BTC/USDT",
         "strategy": "sma_crossover", "timeframe": "1m", "fast": "5", "slow": "20", "allocation": "200",
         "max_position": "0.05", "daily_loss_limit": "40"},
        {"name": "text", "portfolio": "choice", "connection": "choice", "symbol": "choice", "strategy": "choice",
         "timeframe": "choice", "fast": "number", "slow": "number", "allocation": "number",
         "max_position": "number", "daily_loss_limit": "number"},
    ),
    "add email": ("/accounts/email/", {"email": "alice.work@example.com", "action_add": ""}, {"email": "text"}),
    "change password": (
        "/accounts/password/change/",
        {"oldpassword": DEFAULT_PASSWORD, "password1": "another-horse-7", "password2": "another-horse-7"},
        {"oldpassword": "text", "password1,password2": "text"},
    ),
    "sign up": (
        "/accounts/signup/",
        {"email": "newcomer@example.com", "password1": "a-strong-pass-2026", "password2": "a-strong-pass-2026"},
        {"email": "text", "password1,password2": "text"},
    ),
    # Forms that write nothing even when valid: only "no 500" can be shown for them.
    "order check": (
        "/trading/orders/check/",
        {"connection": "{c}", "portfolio": "{pp}", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
         "quantity": "0.1", "price": "19000", "stop_price": ""},
        {"connection": "choice", "portfolio": "choice", "symbol": "choice", "side": "choice", "type": "choice",
         "quantity": "number", "price": "number", "stop_price": "number"},
    ),
    "checkout": ("/billing/checkout/", {"plan": "pro"}, {"plan": "choice"}),
    "notification settings": ("/notifications/settings/", {"on": "alert.price:in_app"}, {"on": "choice"}),
    "password reset": ("/accounts/password/reset/", {"email": "alice@example.com"}, {"email": "text"}),
}  # fmt: skip
ANONYMOUS = {"sign up", "password reset"}
WRITES_NOTHING = {"order check", "checkout", "notification settings", "password reset"}


def _post(client, name: str, ids: dict[str, int], changes: dict):
    url, payload, _ = FORMS[name]
    sender = Client() if name in ANONYMOUS else client
    return sender.post(resolve(url, ids), {**resolve(payload, ids), **changes})


@pytest.mark.parametrize("name", sorted(set(FORMS) - WRITES_NOTHING))
def test_the_untouched_form_payloads_are_accepted(browser, ids, name):
    before = row_counts()
    response = _post(browser, name, ids, {})
    assert response.status_code in (200, 302), response.content[:2000]
    assert row_counts() != before, f"the {name} form's untouched payload wrote nothing"


@pytest.mark.parametrize(
    ("name", "fields"), [(name, f) for name, (_, _, kinds) in FORMS.items() for f in kinds]
)
@HOSTILE
@given(data=st.data())
def test_every_form_field_refuses_hostile_values(browser, ids, name, fields, data):
    value = data.draw(BY_KIND[FORMS[name][2][fields]], label="value")
    before = row_counts()
    response = _post(browser, name, ids, {resolve(f, ids): value for f in fields.split(",")})
    assert_refused(response, before)


@pytest.mark.parametrize("value", ["\x00", "a\x00b@example.com", "x" * 140_000, "é" * 5_000])
def test_logging_in_with_hostile_values_fails_cleanly(client, user_a, value):
    for data in ({"login": value, "password": DEFAULT_PASSWORD}, {"login": user_a.email, "password": value}):
        response = client.post("/accounts/login/", data)
        assert response.status_code == 200 and response.context["form"].errors
        assert "_auth_user_id" not in client.session


# --- Query strings ------------------------------------------------------------------------------------------

PAGES = {
    "/dashboard/": ["portfolio"],
    "/portfolios/{p}/transactions/": ["page"],
    "/alerts/": ["symbol", "kind", "threshold", "portfolio", "pnl_unit"],
    "/markets/BTC-USDT": ["tf"],
    "/trading/orders/history/": ["status", "symbol", "side", "source", "since", "until", "page"],
    "/trading/blocked/": ["page"],
    "/billing/return/": ["result", "session_id"],
}


@pytest.mark.parametrize(
    ("url", "param"), [(url, param) for url, params in PAGES.items() for param in params]
)
@HOSTILE
@given(value=QUERY)
def test_every_query_parameter_refuses_hostile_values(browser, ids, url, param, value):
    before = row_counts()
    assert_refused(browser.get(resolve(url, ids), {param: value}), before)


@pytest.mark.parametrize(
    "path", ["/markets/%00", "/markets/a%00b", "/markets/" + "X" * 5000, "/markets/%ED%A0%80"]
)
def test_market_pages_for_hostile_symbols_are_not_found(client, db, path):
    instruments_seed()
    assert client.get(path).status_code == 404


# --- CSV import: header, a row the import accepts, each column's kind -----------------------------------------

CSV_FORMATS = {
    "nexus": (
        "date,type,symbol,currency,quantity,price,fee,fee_currency,note,external_id",
        ["2023-03-01T10:00:00Z", "deposit", "", "USDT", "1000", "", "1", "USDT", "first", "ext-1"],
        {"date": "date", "type": "choice", "symbol": "text", "currency": "text", "quantity": "number",
         "price": "number", "fee": "number", "fee_currency": "text", "note": "text", "external_id": "text"},
    ),
    "binance": (
        "Date(UTC),Pair,Side,Price,Executed,Amount,Fee",
        ["2023-03-01 10:00:00", "BTCUSDT", "BUY", "20000", "0.01BTC", "200USDT", "0.00001BTC"],
        {"date(utc)": "date", "pair": "choice", "side": "choice", "price": "number", "executed": "amount",
         "amount": "amount", "fee": "amount"},
    ),
    "binance legacy": (
        "Date(UTC),Market,Type,Price,Amount,Total,Fee,Fee Coin",
        ["2023-03-01 10:00:00", "BTCUSDT", "BUY", "20000", "0.01", "200", "0.00001", "BTC"],
        {"date(utc)": "date", "market": "choice", "type": "choice", "price": "number", "amount": "number",
         "total": "text", "fee": "number", "fee coin": "text"},
    ),
}  # fmt: skip
FUNDING = "2023-02-01T00:00:00Z,deposit,,USDT,100000,,,,,funding"


def _csv(header: str, cells: list[str]) -> bytes:
    quoted = ['"' + cell.replace('"', '""') + '"' for cell in cells]
    return f"{header}\n{','.join(quoted)}\n".encode()


def _import(client, ids: dict[str, int], content: bytes, **extra):
    upload = SimpleUploadedFile("hostile.csv", content, content_type="text/csv")
    return client.post(f"/portfolios/{ids['p']}/import/", {"file": upload, **extra})


@pytest.mark.parametrize("fmt", sorted(CSV_FORMATS))
def test_the_untouched_csv_rows_are_accepted(browser, ids, fmt):
    header, row, _ = CSV_FORMATS[fmt]
    funding = _import(browser, ids, f"{CSV_FORMATS['nexus'][0]}\n{FUNDING}\n".encode())
    browser.post(f"/portfolios/{ids['p']}/import/", {"token": funding.context["token"]})  # USDT to buy with
    preview = _import(browser, ids, _csv(header, row))
    assert preview.status_code == 200 and preview.context["token"], preview.context["preview"].rows


@pytest.mark.parametrize(
    ("fmt", "column"), [(fmt, c) for fmt, (_, _, kinds) in CSV_FORMATS.items() for c in kinds]
)
@HOSTILE
@given(data=st.data())
def test_every_csv_column_refuses_hostile_values(browser, ids, fmt, column, data):
    header, row, kinds = CSV_FORMATS[fmt]
    value = data.draw(BY_KIND[kinds[column]], label="value")
    names = [name.strip().lower() for name in header.split(",")]
    cells = [value if name == column else cell for name, cell in zip(names, row, strict=True)]
    before = row_counts()
    response = _import(browser, ids, _csv(header, cells))
    assert_refused(response, before)
    assert response.status_code == 400 and "token" not in response.context
    preview = response.context["preview"]
    assert preview.file_errors or [row.message for row in preview.rows if row.status == "error"]


# --- REST API: method, path, a body it accepts, each field's kind --------------------------------------------

ENDPOINTS = {
    "portfolio": (
        "post", "/api/v1/portfolios/", {"name": "API", "base_currency": "USDT"},
        {"name": "text", "base_currency": "choice", "kind": "choice", "allow_short": "boolean"},
    ),
    "transaction": (
        "post", "/api/v1/portfolios/{p}/transactions/",
        {"kind": "deposit", "currency": "USDT", "quantity": "100", "executed_at": "2023-03-01T09:00:00Z",
         "note": "n", "external_id": "api-1"},
        {"kind": "choice", "symbol": "text", "currency": "text", "quantity": "number", "price": "number",
         "fee": "number", "fee_currency": "text", "executed_at": "date", "external_id": "text", "note": "text"},
    ),
    "me": (
        "patch", "/api/v1/accounts/me/", {"display_name": "Al"},
        {"display_name": "text", "time_zone": "choice", "base_currency": "choice"},
    ),
    "order": (
        "post", "/api/v1/trading/orders/",
        {"connection": "{c}", "portfolio": "{pp}", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
         "quantity": "0.1", "price": "19000"},
        {"connection": "id", "portfolio": "id", "symbol": "text", "side": "choice", "type": "choice",
         "quantity": "number", "price": "number", "stop_price": "number", "client_order_id": "uuid",
         "playbook_tag": "text"},
    ),
    "replay": (
        "post", "/api/v1/trading/tracker/replays/",
        {"name": "Trend", "symbol": "BTC/USDT", "strategy": "sma_crossover", "params": {"fast": "9", "slow": "21"},
         "timeframe": "1m", "allocation": "250", "max_position": "0.1", "daily_loss_limit": "150"},
        {"name": "text", "symbol": "text", "strategy": "choice", "timeframe": "choice", "allocation": "number",
         "max_position": "number", "daily_loss_limit": "number", "source": "choice", "start": "date",
         "end": "date", "bot": "id"},
    ),
}  # fmt: skip


def _send(client, name: str, ids: dict[str, int], body) -> object:
    method, path, _, _ = ENDPOINTS[name]
    raw = body if isinstance(body, str) else json.dumps(body)
    return getattr(client, method)(resolve(path, ids), raw, content_type="application/json")


def _body(name: str, ids: dict[str, int]) -> dict:
    body = resolve(ENDPOINTS[name][2], ids)
    return {key: int(value) if key in ("connection", "portfolio") else value for key, value in body.items()}


def assert_problem(response, before: dict[str, int]) -> None:
    assert_refused(response, before)
    assert 400 <= response.status_code < 500 and response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_the_untouched_api_bodies_are_accepted(api, ids, name):
    before = row_counts()
    response = _send(api, name, ids, _body(name, ids))
    assert response.status_code in (200, 201), response.content
    assert row_counts() != before


@pytest.mark.parametrize(
    ("name", "field"), [(name, f) for name, (_, _, _, kinds) in ENDPOINTS.items() for f in kinds]
)
@HOSTILE
@given(data=st.data())
def test_every_api_field_refuses_hostile_values(api, ids, name, field, data):
    value = data.draw(API_BY_KIND[ENDPOINTS[name][3][field]], label="value")
    unthrottled()
    before = row_counts()
    assert_problem(_send(api, name, ids, {**_body(name, ids), field: value}), before)


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
@HOSTILE
@given(
    body=st.one_of(
        st.integers(min_value=33, max_value=20_000).map(lambda n: "[" * n + "]" * n),
        st.integers(min_value=33, max_value=20_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.sampled_from(["[]", '"x"', "1", "null", "{", '{"name": NaN}', '{"name": "\\ud800"}', "\x00"]),
        # Anything but an object or nothing at all (an empty PATCH is a valid request that changes nothing).
        st.text(max_size=50).filter(lambda text: text.strip()[:1] not in ("", "{")),
    )
)
def test_every_api_write_endpoint_refuses_malformed_bodies(api, ids, name, body):
    unthrottled()
    before = row_counts()
    assert_problem(_send(api, name, ids, body), before)


@pytest.mark.parametrize("path", ["/api/v1/trading/orders/", "/api/v1/portfolios/{p}/transactions/"])
@pytest.mark.parametrize("param", ["limit", "offset", "status", "symbol", "side", "open"])
@HOSTILE
@given(value=st.one_of(TEXT, NUMBER, st.sampled_from([str(2**63), str(10**30), "-1", "0", "²"])))
def test_list_query_parameters_are_refused_or_bounded(api, ids, path, param, value):
    unthrottled()
    response = api.get(resolve(path, ids), {param: value})
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert len(response.json()["results"]) <= 500
