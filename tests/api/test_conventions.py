"""The shared behaviour of /api/v1: rate-limit headers, ETags, cursor pagination, problem+json errors with
field details, strict strings, the order detail and another user's objects (404, never 403)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache

from billing.choices import PlanCode
from billing.services import subscription_trial_grant
from core.rls import tenant
from portfolios.choices import TransactionKind
from portfolios.services import transaction_record
from tests.api.conftest import seed_trader, token_client
from tests.factories import UserFactory, api_token_for

pytestmark = pytest.mark.django_db

ME = "/api/v1/accounts/me/"


# --- Rate limits ---------------------------------------------------------------------------------------


def test_every_counted_answer_carries_the_rate_limit_and_the_61st_free_request_is_a_429(user_a):
    cache.clear()
    api = token_client(api_token_for(user_a))  # Free plan: 60 requests a minute
    first = api.get(ME)
    assert first["RateLimit-Limit"] == "60" and first["RateLimit-Remaining"] == "59"
    assert 0 < int(first["RateLimit-Reset"]) <= 60
    for _ in range(59):
        last = api.get(ME)
    assert last.status_code == 200 and last["RateLimit-Remaining"] == "0"
    refused = api.get(ME)
    assert refused.status_code == 429 and refused["Content-Type"] == "application/problem+json"
    assert 0 < int(refused["Retry-After"]) <= 60
    assert refused["RateLimit-Remaining"] == "0" and refused["RateLimit-Limit"] == "60"


def test_the_window_slides_and_a_refused_request_does_not_count(user_a, time_machine):
    """The limit is a sliding minute (as DRF's SimpleRateThrottle): a request counts for 60 s after it was
    let through, a refused one never counts, and Retry-After says when the window has room again."""
    cache.clear()
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    time_machine.move_to(start, tick=False)
    api = token_client(api_token_for(user_a))  # Free plan: 60 requests a minute
    for _ in range(30):
        assert api.get(ME).status_code == 200
    time_machine.move_to(start + timedelta(seconds=20), tick=False)
    for _ in range(30):
        assert api.get(ME).status_code == 200
    for _ in range(5):  # refused: not counted
        refused = api.get(ME)
        assert refused.status_code == 429 and refused["Retry-After"] == "40"
    time_machine.move_to(start + timedelta(seconds=59), tick=False)
    assert api.get(ME).status_code == 429
    # The first 30 leave the window at 60 s; the 30 of second 20 stay until 80 s.
    time_machine.move_to(start + timedelta(seconds=60), tick=False)
    allowed = api.get(ME)
    assert allowed.status_code == 200 and allowed["RateLimit-Remaining"] == "29"
    assert allowed["RateLimit-Reset"] == "20"
    for _ in range(29):
        assert api.get(ME).status_code == 200
    refused = api.get(ME)
    assert refused.status_code == 429 and refused["Retry-After"] == "20"
    time_machine.move_to(start + timedelta(seconds=80), tick=False)
    assert api.get(ME)["RateLimit-Remaining"] == "29"


def test_a_paid_plan_has_its_own_limit(trader):
    assert trader.api.get(ME)["RateLimit-Limit"] == "3000"


def test_the_limit_follows_a_plan_change_at_once_and_a_trials_end_on_the_clock(user_a, time_machine):
    # The plan the limit comes from is cached (billing.selectors.user_rate_plan): a subscription change
    # clears it, and a local trial's end is kept with it.
    time_machine.move_to(datetime(2026, 6, 1, 12, 0, tzinfo=UTC), tick=False)
    api = token_client(api_token_for(user_a))
    assert api.get(ME)["RateLimit-Limit"] == "60"
    subscription = subscription_trial_grant(user=user_a, plan_code=PlanCode.PRO)
    assert api.get(ME)["RateLimit-Limit"] == "600"
    time_machine.move_to(subscription.trial_end - timedelta(seconds=1), tick=False)
    assert api.get(ME)["RateLimit-Limit"] == "600"
    time_machine.move_to(subscription.trial_end, tick=False)
    assert api.get(ME)["RateLimit-Limit"] == "60"


# --- ETags and the order detail ------------------------------------------------------------------------


def test_an_order_is_read_with_an_etag_and_a_matching_if_none_match_is_a_304(trader):
    url = f"/api/v1/trading/orders/{trader.order_id}/"
    response = trader.api.get(url)
    assert response.status_code == 200
    order = response.json()
    assert order["id"] == trader.order_id and order["symbol"] == "BTC/USDT" and order["status"] == "open"
    assert order["side"] == "buy" and Decimal(order["quantity"]) == Decimal("0.1")
    assert order["portfolio"] == trader.portfolio.pk and order["connection"] == trader.connection.pk
    etag = response["ETag"]
    unchanged = trader.api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304 and not unchanged.content and unchanged["ETag"] == etag

    assert trader.api.post(f"{url}cancel/").status_code == 200
    changed = trader.api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.json()["status"] == "cancelled" and changed["ETag"] != etag


def test_another_users_objects_are_404_never_403(trader, other_trader):
    for url in (
        f"/api/v1/trading/orders/{other_trader.order_id}/",
        f"/api/v1/portfolios/{other_trader.portfolio.pk}/",
        f"/api/v1/portfolios/{other_trader.portfolio.pk}/transactions/",
        f"/api/v1/portfolios/{other_trader.portfolio.pk}/positions/",
        f"/api/v1/portfolios/{other_trader.portfolio.pk}/performance/",
    ):
        response = trader.api.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/problem+json"
    cancel = trader.api.post(f"/api/v1/trading/orders/{other_trader.order_id}/cancel/")
    assert cancel.status_code == 404


def test_a_path_that_matches_no_route_is_a_problem_404(trader):
    response = trader.api.get("/api/v1/trading/orders/not-a-uuid/")
    assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"


# --- Cursor pagination ---------------------------------------------------------------------------------


def test_transactions_are_cursor_paginated_newest_first(trader):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with tenant(trader.user.pk):
        for day in range(5):
            transaction_record(
                user=trader.user,
                portfolio=trader.portfolio,
                kind=TransactionKind.DEPOSIT,
                currency="USDT",
                quantity=Decimal(day + 1),
                executed_at=start + timedelta(days=day),
            )
    url = f"/api/v1/portfolios/{trader.portfolio.pk}/transactions/"
    seen, page = [], trader.api.get(url, {"page_size": 2}).json()
    assert set(page) == {"next", "previous", "results"} and len(page["results"]) == 2
    while True:
        seen += page["results"]
        if not page["next"]:
            break
        page = trader.api.get(page["next"]).json()
    times = [t["executed_at"] for t in seen]
    assert len(seen) == 6 and times == sorted(times, reverse=True)  # 5 here + the seed's deposit
    assert len({t["id"] for t in seen}) == 6


def test_a_cursor_that_does_not_decode_is_a_400_and_a_huge_page_is_cut(trader):
    url = f"/api/v1/portfolios/{trader.portfolio.pk}/transactions/"
    bad = trader.api.get(url, {"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and "cursor" in bad.json()["errors"]
    assert trader.api.get(url, {"page_size": 10**30}).status_code == 200


# --- Validation ----------------------------------------------------------------------------------------


def test_a_number_where_a_name_belongs_is_a_400_with_field_details(trader):
    response = trader.api.post("/api/v1/portfolios/", {"name": 0, "base_currency": "USD"}, format="json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Invalid request" and problem["status"] == 400
    assert problem["instance"] == "/api/v1/portfolios/"
    assert problem["errors"] == {"name": ["Not a valid string."]}
    assert (
        trader.api.post(
            "/api/v1/portfolios/", {"name": "   ", "base_currency": "USD"}, format="json"
        ).status_code
        == 400
    )


def test_the_profile_takes_only_known_time_zones_and_currencies_and_strings(trader):
    bad = trader.api.patch(
        ME, {"time_zone": "Mars/Olympus", "base_currency": "XYZ", "display_name": 7}, format="json"
    )
    assert bad.status_code == 400 and set(bad.json()["errors"]) == {
        "time_zone",
        "base_currency",
        "display_name",
    }
    good = trader.api.patch(ME, {"time_zone": "Europe/Berlin"}, format="json")
    assert good.status_code == 200 and good.json()["time_zone"] == "Europe/Berlin"


def test_the_schema_documents_problems_enums_and_the_patch_input(trader):
    schema = trader.api.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    assert {"type", "title", "status", "detail", "errors"} <= set(components["ProblemDetail"]["properties"])
    assert "Europe/Berlin" in components["TimeZoneEnum"]["enum"]
    patch = schema["paths"]["/api/v1/accounts/me/"]["patch"]
    body = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/PatchedMeUpdateInput")
    assert "application/problem+json" in patch["responses"]["400"]["content"]
    listing = schema["paths"]["/api/v1/portfolios/{id}/transactions/"]["get"]["responses"]["200"]
    assert listing["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PaginatedTransactionOutputList"
    )
    post = schema["paths"]["/api/v1/trading/orders/"]["post"]
    assert "Idempotency-Key" in [p["name"] for p in post["parameters"]]
    assert {"400", "401", "403", "422", "429"} <= set(post["responses"])


def test_a_user_without_objects_lists_nothing(db):
    api = token_client(api_token_for(UserFactory()))
    assert api.get("/api/v1/portfolios/").json() == []
    assert api.get("/api/v1/trading/orders/").json()["results"] == []


def test_the_seeded_trader_helper_gives_working_tokens(btc_quote):
    trader = seed_trader("third@example.com")
    assert trader.api.get(ME).json()["email"] == "third@example.com"
