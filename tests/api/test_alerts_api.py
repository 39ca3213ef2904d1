"""Alerts over the API: create, list, get, change, pause, resume, delete, firings, through the services
the alert pages use. Another user's alert is a 404; bad input a problem+json 400 naming the field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.rls import tenant
from portfolios.services import portfolio_create
from tests.api import more
from tests.api.more import patch, post, problem, results
from tests.factories import AlertFactory, AlertFiringFactory
from tests.portfolios.conftest import set_quote

pytestmark = pytest.mark.django_db

# Fixtures (tests/api/more.py)
api_a = more.api_a
api_b = more.api_b
instruments = more.instruments
read_only_a = more.read_only_a

URL = "/api/v1/alerts/"
BTC_ABOVE = {"kind": "price_above", "symbol": "BTC/USDT", "threshold": "70000"}


def test_create_list_get_change_delete(api_a, instruments):
    set_quote(instruments["BTC/USDT"], "65000")
    created = post(api_a, URL, {**BTC_ABOVE, "note": "breakout", "repeat": True, "cooldown_minutes": 60})
    assert created.status_code == 201, created.content
    alert = created.json()
    assert (alert["summary"], alert["state"], alert["cooldown_minutes"]) == (
        "BTC/USDT rises above 70,000.00",
        "armed",
        60,
    )
    assert [a["id"] for a in results(api_a.get(URL))] == [alert["id"]]
    assert api_a.get(f"{URL}{alert['id']}/").json()["note"] == "breakout"

    changed = patch(api_a, f"{URL}{alert['id']}/", {"threshold": "72000"})
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert (body["summary"], body["note"], body["repeat"], body["cooldown_minutes"]) == (
        "BTC/USDT rises above 72,000.00",
        "breakout",
        True,
        60,
    )
    assert api_a.delete(f"{URL}{alert['id']}/").status_code == 204
    assert api_a.get(f"{URL}{alert['id']}/").status_code == 404
    assert results(api_a.get(URL)) == []


def test_pause_resume_and_state_filter(api_a, instruments):
    alert = post(api_a, URL, BTC_ABOVE).json()
    paused = post(api_a, f"{URL}{alert['id']}/pause/")
    assert paused.status_code == 200 and paused.json()["state"] == "disabled"
    assert [a["id"] for a in results(api_a.get(URL, {"state": "disabled"}))] == [alert["id"]]
    assert results(api_a.get(URL, {"state": "armed"})) == []
    resumed = post(api_a, f"{URL}{alert['id']}/resume/")
    assert resumed.status_code == 200 and resumed.json()["state"] == "armed"
    problem(api_a.get(URL, {"state": "sleeping"}), 400, "state")


def test_resuming_an_expired_alert_is_refused(api_a, user_a, instruments):
    with tenant(user_a.pk):
        alert = AlertFactory(
            user=user_a,
            instrument=instruments["BTC/USDT"],
            state="expired",
            expires_at=timezone.now() - timedelta(hours=1),
        )
    problem(post(api_a, f"{URL}{alert.pk}/resume/"), 400, "expires_at")


def test_a_portfolio_alert_names_its_portfolio(api_a, user_a, user_b, instruments):
    with tenant(user_a.pk):
        mine = portfolio_create(user=user_a, name="Main", base_currency="USDT")
    with tenant(user_b.pk):
        theirs = portfolio_create(user=user_b, name="B", base_currency="USDT")
    created = post(api_a, URL, {"kind": "portfolio_above", "portfolio_id": mine.pk, "threshold": "20000"})
    assert created.status_code == 201, created.content
    assert created.json()["summary"] == "Main rises above 20,000.00 USDT"
    problem(
        post(api_a, URL, {"kind": "portfolio_above", "portfolio_id": theirs.pk, "threshold": "1"}),
        400,
        "portfolio_id",
    )
    problem(post(api_a, URL, {"kind": "portfolio_above", "threshold": "1"}), 400, "portfolio")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "kind"),
        ({**BTC_ABOVE, "kind": "moon"}, "kind"),
        ({**BTC_ABOVE, "symbol": 0}, "symbol"),
        ({**BTC_ABOVE, "symbol": "NOPE/USDT"}, "symbol"),
        ({**BTC_ABOVE, "threshold": "-5"}, "threshold"),
        ({**BTC_ABOVE, "threshold": "1e999"}, "threshold"),
        ({**BTC_ABOVE, "threshold": "60000"}, "threshold"),  # already past: the price is 65,000
        ({**BTC_ABOVE, "cooldown_minutes": -1}, "cooldown_minutes"),
        ({**BTC_ABOVE, "cooldown_minutes": 10**12}, "cooldown_minutes"),
        ({**BTC_ABOVE, "expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({**BTC_ABOVE, "note": "x" * 201}, "note"),
        (
            {"kind": "percent_move", "symbol": "BTC/USDT", "threshold": "5", "window_minutes": 7},
            "window_minutes",
        ),
        ({**BTC_ABOVE, "portfolio_id": "first"}, "portfolio_id"),
    ],
)
def test_bad_input_is_a_field_error(api_a, instruments, body, field):
    set_quote(instruments["BTC/USDT"], "65000")
    problem(post(api_a, URL, body), 400, field)
    assert results(api_a.get(URL)) == []


def test_the_plan_limit_is_a_clear_400(api_a, user_a, instruments):
    for level in range(70000, 70005):  # Free allows five active alerts
        assert post(api_a, URL, {**BTC_ABOVE, "threshold": str(level)}).status_code == 201
    body = problem(post(api_a, URL, {**BTC_ABOVE, "threshold": "80000"}), 400)
    assert "5" in str(body["errors"])


def test_firings_of_all_and_of_one_alert(api_a, user_a, instruments):
    with tenant(user_a.pk):
        first = AlertFactory(user=user_a, instrument=instruments["BTC/USDT"])
        second = AlertFactory(user=user_a, instrument=instruments["ETH/USDT"], threshold=2000)
        AlertFiringFactory(user=user_a, alert=first, message="BTC/USDT rose above 25,000.00.")
        AlertFiringFactory(user=user_a, alert=second, message="ETH/USDT rose above 2,000.00.")
    every = results(api_a.get(f"{URL}firings/"))
    assert [f["message"] for f in every] == [
        "ETH/USDT rose above 2,000.00.",
        "BTC/USDT rose above 25,000.00.",
    ]
    one = results(api_a.get(f"{URL}{first.pk}/firings/"))
    assert [(f["alert_id"], f["value"]) for f in one] == [(first.pk, "25001.00000000")]


def test_another_users_alert_is_404_everywhere(api_a, api_b, user_b, instruments):
    with tenant(user_b.pk):
        theirs = AlertFactory(user=user_b, instrument=instruments["BTC/USDT"])
        AlertFiringFactory(user=user_b, alert=theirs)
    for response in [
        api_a.get(f"{URL}{theirs.pk}/"),
        patch(api_a, f"{URL}{theirs.pk}/", {"note": "mine now"}),
        api_a.delete(f"{URL}{theirs.pk}/"),
        post(api_a, f"{URL}{theirs.pk}/pause/"),
        post(api_a, f"{URL}{theirs.pk}/resume/"),
        api_a.get(f"{URL}{theirs.pk}/firings/"),
    ]:
        problem(response, 404)
    assert results(api_a.get(f"{URL}firings/")) == []
    assert api_b.get(f"{URL}{theirs.pk}/").json()["state"] == "armed"


def test_a_read_token_cannot_write(read_only_a, instruments):
    problem(post(read_only_a, URL, BTC_ABOVE), 403)
    assert read_only_a.get(URL).status_code == 200


@pytest.mark.parametrize("big", [2**63, 10**30])
def test_ids_beyond_the_database_range_are_404s(api_a, instruments, big):
    for response in [
        api_a.get(f"{URL}{big}/"),
        post(api_a, f"{URL}{big}/pause/"),
        api_a.get(f"{URL}{big}/firings/"),
        post(api_a, f"/api/v1/notifications/{big}/read/"),
        api_a.get(f"/api/v1/billing/invoices/{big}/"),
        api_a.get(f"/api/v1/companion/conversations/{big}/"),
        api_a.get(f"/api/v1/portfolios/{big}/snapshots/"),
        api_a.get(f"/api/v1/watchlists/{big}/"),
        api_a.delete(f"/api/v1/watchlists/{big}/items/{big}/"),
    ]:
        problem(response, 404)


def test_an_alert_is_read_with_an_etag_and_a_changed_alert_gets_a_new_one(api_a, instruments):
    alert = post(api_a, URL, BTC_ABOVE).json()
    url = f"{URL}{alert['id']}/"
    first = api_a.get(url)
    etag = first["ETag"]
    unchanged = api_a.get(url, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304 and not unchanged.content
    post(api_a, f"{url}pause/")
    changed = api_a.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.json()["state"] == "disabled" and changed["ETag"] != etag
