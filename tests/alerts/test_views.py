"""The /alerts pages, through the full middleware stack (RLS included)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client

from alerts.choices import AlertKind, AlertState
from alerts.models import Alert
from alerts.services import alert_create
from billing.plans import FREE
from core.rls import system_context, tenant


@pytest.fixture
def client_a(user_a) -> Client:
    client = Client()
    client.force_login(user_a)
    return client


def _alerts(user) -> list[Alert]:
    with tenant(user.pk):
        return list(Alert.objects.all())


def test_alerts_page_requires_login(db):
    response = Client().get("/alerts/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_create_a_price_alert_from_the_page(client_a, user_a, btc):
    page = client_a.get("/alerts/?symbol=BTC-USDT&kind=price_below&threshold=23000")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'value="BTC/USDT"' in html and 'value="23000"' in html
    assert '<option value="price_below" selected>' in html
    assert '<a href="/alerts/" aria-current="page">Alerts</a>' in html
    response = client_a.post(
        "/alerts/",
        {
            "kind": "price_below",
            "symbol": "BTC/USDT",
            "threshold": "23000",
            "cooldown_minutes": "15",
            "note": "buy the dip",
        },
    )
    assert response.status_code == 302
    [alert] = _alerts(user_a)
    assert (alert.kind, alert.threshold, alert.note, alert.state) == (
        AlertKind.PRICE_BELOW,
        Decimal("23000"),
        "buy the dip",
        AlertState.ARMED,
    )
    listing = client_a.get("/alerts/").content.decode()
    assert "Alert created: BTC/USDT falls below 23,000.00." in listing
    assert "BTC/USDT falls below 23,000.00" in listing


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"threshold": "-1"}, "threshold", "The price must be greater than zero."),
        ({"symbol": "DOGE/EUR"}, "symbol", "Unknown instrument &#x27;DOGE/EUR&#x27;"),
        ({"threshold": "1.123456789"}, "threshold", "Ensure that there are no more than 8 decimal places."),
        ({"kind": "percent_move", "threshold": "-5"}, "window_minutes", "Choose a window for the move."),
    ],
)
def test_bad_input_is_shown_next_to_the_field(client_a, user_a, btc, data, field, error):
    response = client_a.post(
        "/alerts/",
        {
            "kind": "price_above",
            "symbol": "BTC/USDT",
            "threshold": "100",
            "cooldown_minutes": "15",
            **data,
        },
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert f'<p class="field-error" id="id_{field}_error">{error}' in html
    assert _alerts(user_a) == []


def test_over_the_plan_limit_is_a_form_error(client_a, user_a, btc):
    for n in range(FREE.limit("alerts")):
        alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold=str(100 + n))
    response = client_a.post(
        "/alerts/",
        {
            "kind": "price_above",
            "symbol": "BTC/USDT",
            "threshold": "999",
            "cooldown_minutes": "15",
        },
    )
    assert response.status_code == 422
    limit = FREE.limit("alerts")
    assert f"Your Free plan allows {limit} price alerts and you have {limit}." in response.content.decode()
    assert len(_alerts(user_a)) == limit


def test_pause_resume_and_delete_with_htmx(client_a, user_a, btc):
    alert = alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="100")
    row = client_a.post(f"/alerts/{alert.pk}/pause/", HTTP_HX_REQUEST="true")
    assert row.status_code == 200
    assert f'<tr id="alert-{alert.pk}">' in row.content.decode() and "Disabled" in row.content.decode()
    assert _alerts(user_a)[0].state == AlertState.DISABLED
    row = client_a.post(f"/alerts/{alert.pk}/resume/", HTTP_HX_REQUEST="true")
    assert "Armed" in row.content.decode() and _alerts(user_a)[0].state == AlertState.ARMED
    assert client_a.post(f"/alerts/{alert.pk}/delete/", HTTP_HX_REQUEST="true").content == b""
    assert _alerts(user_a) == []


def test_edit_page_rearms_and_shows_history(client_a, user_a, btc):
    alert = alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="100")
    with tenant(user_a.pk):
        Alert.objects.filter(pk=alert.pk).update(state=AlertState.TRIGGERED)
    page = client_a.get(f"/alerts/{alert.pk}/")
    assert page.status_code == 200 and "Fired 0 times" in page.content.decode()
    response = client_a.post(
        f"/alerts/{alert.pk}/",
        {
            "kind": "price_cross",
            "symbol": "BTC/USDT",
            "threshold": "150",
            "cooldown_minutes": "30",
            "repeat": "on",
        },
    )
    assert response.status_code == 302
    alert = _alerts(user_a)[0]
    assert (alert.kind, alert.threshold, alert.state, alert.repeat) == (
        "price_cross",
        Decimal("150"),
        "armed",
        True,
    )


def test_another_traders_alert_is_not_found(user_a, user_b, btc):
    alert = alert_create(user=user_a, kind=AlertKind.PRICE_ABOVE, symbol="BTC/USDT", threshold="100")
    client_b = Client()
    client_b.force_login(user_b)
    assert client_b.get(f"/alerts/{alert.pk}/").status_code == 404
    assert client_b.post(f"/alerts/{alert.pk}/delete/").status_code == 404
    assert len(_alerts(user_a)) == 1


def test_prices_now_link_to_a_prefilled_form(client_a, btc):
    from django.utils import timezone

    from marketdata.models import Quote

    now = timezone.now()
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Quote.objects.create(instrument=btc, price=Decimal("20398.24"), source="replay", at=now, updated_at=now)
    html = client_a.get("/alerts/").content.decode()
    assert '<a href="/alerts/?symbol=BTC-USDT&amp;threshold=20398.24000000">BTC/USDT</a>' in html
    prefilled = client_a.get("/alerts/?symbol=BTC-USDT&threshold=20398.24000000").content.decode()
    assert 'value="20398.24000000"' in prefilled


def test_an_instruments_market_page_links_to_the_alert_form_for_that_pair(client, client_a, btc):
    """Alerts adds the link through marketdata's action registry (marketdata imports no other app)."""
    html = client.get("/markets/BTC-USDT").content.decode()
    assert '<a class="button" href="/alerts/?symbol=BTC%2FUSDT">Set an alert</a>' in html
    form = client.get("/alerts/?symbol=BTC%2FUSDT")
    assert form.status_code == 302 and "/accounts/login/" in form["Location"], "a visitor signs in first"
    prefilled = client_a.get("/alerts/?symbol=BTC%2FUSDT").content.decode()
    [symbol_input] = re.findall(r'<input[^>]*name="symbol"[^>]*>', prefilled)
    assert 'value="BTC/USDT"' in symbol_input


def test_each_position_row_links_to_a_loss_alert_on_that_position(client_a, user_a, btc):
    """Alerts adds the link through portfolios' action registry (portfolios imports no alerts)."""
    from datetime import UTC, datetime

    from portfolios.services import portfolio_create, transaction_record

    with tenant(user_a.pk):
        portfolio = portfolio_create(user=user_a, name="Main", base_currency="USDT")
        transaction_record(
            user=user_a, portfolio=portfolio, kind="buy", instrument=btc, quantity=Decimal("0.5"),
            price=Decimal("20000"), executed_at=datetime(2026, 1, 2, tzinfo=UTC),
        )
    html = client_a.get("/dashboard/").content.decode()
    link = (
        f"/alerts/?symbol=BTC%2FUSDT&amp;kind=position_pnl_below&amp;portfolio={portfolio.pk}&amp;pnl_unit=percent"
    )
    assert f'<a class="row-action" href="{link}" aria-label="Alert: BTC/USDT">Alert</a>' in html
    form = client_a.get(link.replace("&amp;", "&")).content.decode()
    assert '<option value="position_pnl_below" selected>' in form
