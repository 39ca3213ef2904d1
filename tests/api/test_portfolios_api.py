"""Portfolio extras over the API: CSV import (as the import page), one transaction, snapshots,
performance for one period, watchlists. Another user's objects are 404s; bad input is a problem+json 400."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from core.rls import tenant
from portfolios.importing import MAX_IMPORT_BYTES
from portfolios.services import portfolio_create, transaction_record
from tests.api import more
from tests.api.more import post, problem, results
from tests.factories import SnapshotFactory, WatchlistFactory
from tests.portfolios.conftest import D, at, set_quote

pytestmark = pytest.mark.django_db

# Fixtures (tests/api/more.py)
api_a = more.api_a
api_b = more.api_b
instruments = more.instruments
read_only_a = more.read_only_a

NEXUS_FILE = b"""date,type,symbol,currency,quantity,price,fee,fee_currency,note,external_id
2023-03-01T09:00:00Z,deposit,,USDT,10000,,,,,d-1
2023-03-01T10:00:00Z,buy,BTC/USDT,,0.2,23140.48,4.628096,USDT,first,b-1
"""


@pytest.fixture
def portfolio(user_a, instruments):
    with tenant(user_a.pk):
        return portfolio_create(user=user_a, name="Main", base_currency="USDT")


@pytest.fixture
def other_portfolio(user_b, instruments):
    with tenant(user_b.pk):
        return portfolio_create(user=user_b, name="B's", base_currency="USDT")


def _upload(client, portfolio_id, content: bytes, **extra):
    return client.post(
        f"/api/v1/portfolios/{portfolio_id}/transactions/import/",
        {"file": SimpleUploadedFile("trades.csv", content, content_type="text/csv"), **extra},
    )


def test_import_dry_run_then_import_then_again_skips_duplicates(api_a, portfolio, instruments):
    url = f"/api/v1/portfolios/{portfolio.pk}/transactions/"
    dry = _upload(api_a, portfolio.pk, NEXUS_FILE, dry_run="true")
    assert dry.status_code == 200, dry.content
    assert dry.json()["dry_run"] is True and dry.json()["new_count"] == 2 and dry.json()["imported"] == 0
    assert [r["status"] for r in dry.json()["rows"]] == ["new", "new"]
    assert results(api_a.get(url)) == []  # a dry run writes nothing

    done = _upload(api_a, portfolio.pk, NEXUS_FILE)
    assert done.status_code == 201, done.content
    assert (done.json()["format"], done.json()["imported"]) == ("nexus", 2)
    assert [t["external_id"] for t in results(api_a.get(url))] == ["b-1", "d-1"]
    set_quote(instruments["BTC/USDT"], "25000")
    positions = api_a.get(f"/api/v1/portfolios/{portfolio.pk}/positions/").json()
    assert [(p["symbol"], p["quantity"]) for p in positions] == [("BTC/USDT", "0.200000000000")]

    again = _upload(api_a, portfolio.pk, NEXUS_FILE)
    assert again.status_code == 201
    assert (again.json()["imported"], again.json()["duplicate_count"]) == (0, 2)
    assert len(results(api_a.get(url))) == 2


def test_import_with_a_bad_row_writes_nothing_and_names_the_line(api_a, portfolio):
    content = NEXUS_FILE + b"2023-03-02T10:00:00Z,sell,BTC/USDT,,5,23000,,,,s-1\n"
    response = _upload(api_a, portfolio.pk, content)
    body = problem(response, 400, "file")
    assert any(message.startswith("Line 4:") for message in body["errors"]["file"]), body
    assert results(api_a.get(f"/api/v1/portfolios/{portfolio.pk}/transactions/")) == []


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"hello,world\n1,2\n", "header"),
        (b"x" * (MAX_IMPORT_BYTES + 1), "limit"),
    ],
)
def test_import_refuses_bad_files(api_a, portfolio, content, fragment):
    body = problem(_upload(api_a, portfolio.pk, content), 400, "file")
    assert fragment in " ".join(body["errors"]["file"])


def test_import_without_a_file_is_a_field_error(api_a, portfolio):
    problem(api_a.post(f"/api/v1/portfolios/{portfolio.pk}/transactions/import/", {}), 400, "file")


def test_transaction_get_and_delete(api_a, portfolio):
    with tenant(portfolio.user_id):
        deposit = transaction_record(
            user=portfolio.user,
            portfolio=portfolio,
            kind="deposit",
            currency="USDT",
            quantity=D(500),
            executed_at=at(1),
        )
    url = f"/api/v1/portfolios/{portfolio.pk}/transactions/{deposit.pk}/"
    got = api_a.get(url)
    assert got.status_code == 200 and got.json()["quantity"] == "500.000000000000"
    assert api_a.delete(url).status_code == 204
    assert api_a.get(url).status_code == 404
    detail = api_a.get(f"/api/v1/portfolios/{portfolio.pk}/").json()
    assert detail["valuation"]["cash_value"] == "0.000000000000"


def test_deleting_a_buy_a_later_sell_needs_is_refused(api_a, portfolio, instruments):
    _upload(api_a, portfolio.pk, NEXUS_FILE + b"2023-03-02T10:00:00Z,sell,BTC/USDT,,0.15,24000,,,,s-1\n")
    url = f"/api/v1/portfolios/{portfolio.pk}/transactions/"
    buy = next(t for t in results(api_a.get(url)) if t["kind"] == "buy")
    response = api_a.delete(f"{url}{buy['id']}/")
    body = problem(response, 400)
    assert "would break" in str(body), body
    assert len(results(api_a.get(url))) == 3


def test_snapshots_newest_first_and_filtered_by_day(api_a, portfolio):
    with tenant(portfolio.user_id):
        days = [
            SnapshotFactory(user=portfolio.user, portfolio=portfolio, value=D(1000 + n)) for n in range(3)
        ]
    url = f"/api/v1/portfolios/{portfolio.pk}/snapshots/"
    rows = results(api_a.get(url))
    assert [r["date"] for r in rows] == [s.date.isoformat() for s in reversed(days)]
    assert rows[0]["value"] == "1002.000000000000"
    since = results(api_a.get(url, {"since": days[1].date.isoformat()}))
    assert [r["date"] for r in since] == [days[2].date.isoformat(), days[1].date.isoformat()]
    problem(api_a.get(url, {"since": "yesterday"}), 400, "since")
    problem(
        api_a.get(url, {"since": days[2].date.isoformat(), "until": days[0].date.isoformat()}), 400, "until"
    )


def test_performance_for_one_period_with_its_curve(api_a, portfolio):
    _upload(api_a, portfolio.pk, NEXUS_FILE)
    response = api_a.get(f"/api/v1/portfolios/{portfolio.pk}/performance/ALL/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["period"] == "ALL"
    assert body["curve"] and body["curve"][-1]["invested"] == "10000.000000000000"
    assert api_a.get(f"/api/v1/portfolios/{portfolio.pk}/performance/2Y/").status_code == 404


def test_watchlists_create_add_remove_delete(api_a, instruments):
    created = post(api_a, "/api/v1/watchlists/", {"name": "Majors"})
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    set_quote(instruments["BTC/USDT"], "25000")
    added = post(api_a, f"/api/v1/watchlists/{pk}/items/", {"symbol": "BTC-USDT"})
    assert added.status_code == 201, added.content
    assert [(i["symbol"], i["price"]) for i in added.json()["items"]] == [("BTC/USDT", "25000.000000000000")]
    assert post(api_a, f"/api/v1/watchlists/{pk}/items/", {"symbol": "BTC/USDT"}).status_code == 201
    listed = api_a.get("/api/v1/watchlists/").json()
    assert [(w["name"], len(w["items"])) for w in listed] == [("Majors", 1)]

    btc_id = instruments["BTC/USDT"].pk
    assert api_a.delete(f"/api/v1/watchlists/{pk}/items/{btc_id}/").status_code == 204
    assert api_a.get(f"/api/v1/watchlists/{pk}/").json()["items"] == []
    assert api_a.delete(f"/api/v1/watchlists/{pk}/items/{btc_id}/").status_code == 404
    assert api_a.delete(f"/api/v1/watchlists/{pk}/").status_code == 204
    assert api_a.get(f"/api/v1/watchlists/{pk}/").status_code == 404


def test_watchlist_bad_input(api_a, instruments):
    problem(post(api_a, "/api/v1/watchlists/", {"name": 0}), 400, "name")
    problem(post(api_a, "/api/v1/watchlists/", {"name": ""}), 400, "name")
    problem(post(api_a, "/api/v1/watchlists/", {"name": "x" * 81}), 400, "name")
    post(api_a, "/api/v1/watchlists/", {"name": "Majors"})
    problem(post(api_a, "/api/v1/watchlists/", {"name": "majors"}), 400, "name")
    pk = api_a.get("/api/v1/watchlists/").json()[0]["id"]
    problem(post(api_a, f"/api/v1/watchlists/{pk}/items/", {"symbol": "NOPE/USDT"}), 400, "symbol")
    problem(post(api_a, f"/api/v1/watchlists/{pk}/items/", {"symbol": ["BTC/USDT"]}), 400, "symbol")


def test_another_users_objects_are_404(api_a, api_b, portfolio, other_portfolio, user_b, instruments):
    with tenant(user_b.pk):
        txn = transaction_record(
            user=user_b,
            portfolio=other_portfolio,
            kind="deposit",
            currency="USDT",
            quantity=D(5),
            executed_at=at(1),
        )
        watchlist = WatchlistFactory(user=user_b)
    mine = f"/api/v1/portfolios/{portfolio.pk}"
    theirs = f"/api/v1/portfolios/{other_portfolio.pk}"
    for response in [
        api_a.get(f"{theirs}/transactions/{txn.pk}/"),
        api_a.get(f"{mine}/transactions/{txn.pk}/"),  # their transaction through my portfolio
        api_a.delete(f"{theirs}/transactions/{txn.pk}/"),
        _upload(api_a, other_portfolio.pk, NEXUS_FILE),
        api_a.get(f"{theirs}/snapshots/"),
        api_a.get(f"{theirs}/performance/1M/"),
        api_a.get(f"/api/v1/watchlists/{watchlist.pk}/"),
        api_a.delete(f"/api/v1/watchlists/{watchlist.pk}/"),
        post(api_a, f"/api/v1/watchlists/{watchlist.pk}/items/", {"symbol": "BTC/USDT"}),
        api_a.delete(f"/api/v1/watchlists/{watchlist.pk}/items/{instruments['BTC/USDT'].pk}/"),
    ]:
        problem(response, 404)
    assert api_b.get(f"{theirs}/transactions/{txn.pk}/").status_code == 200
    assert api_b.get(f"/api/v1/watchlists/{watchlist.pk}/").status_code == 200


def test_a_read_token_cannot_write(read_only_a, portfolio):
    problem(_upload(read_only_a, portfolio.pk, NEXUS_FILE), 403)
    problem(post(read_only_a, "/api/v1/watchlists/", {"name": "Majors"}), 403)
    assert read_only_a.get(f"/api/v1/portfolios/{portfolio.pk}/snapshots/").status_code == 200
