"""Billing over the API: plan and subscription, plans on offer, usage per feature, invoices, and the
account's usage this month. Reads only; another user's invoice is a 404."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from core.rls import tenant
from tests.api import more
from tests.api.more import problem, results
from tests.factories import AlertFactory, InvoiceFactory, SubscriptionFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db

# Fixtures (tests/api/more.py)
api_a = more.api_a
api_b = more.api_b


def _usage(rows: list[dict]) -> dict[str, tuple]:
    return {r["feature"]: (r["limit"], r["used"], r["remaining"]) for r in rows}


def test_free_plan_without_a_subscription(api_a, user_a):
    with tenant(user_a.pk):
        AlertFactory(user=user_a)
        UsageRecordFactory(user=user_a)
        UsageRecordFactory(user=user_a, occurred_at=timezone.now() - timedelta(days=40))  # an earlier month
    body = api_a.get("/api/v1/billing/").json()
    assert (body["status"], body["plan"]["code"], body["payment_failed"]) == ("none", "free", False)
    usage = _usage(body["usage"])
    assert usage["alerts"] == (5, 1, 4)
    assert usage["ai_queries"] == (25, 1, 24)
    assert usage["api_requests_per_minute"][1] is None
    assert _usage(api_a.get("/api/v1/billing/usage/").json()) == usage


def test_a_pro_subscription(api_a, user_a):
    end = timezone.now() + timedelta(days=20)
    with tenant(user_a.pk):
        SubscriptionFactory(user=user_a, current_period_end=end)
    body = api_a.get("/api/v1/billing/").json()
    assert (body["status"], body["status_label"], body["plan"]["code"]) == ("active", "Active", "pro")
    assert body["plan"]["monthly_price"] == "29.00"
    limits = {row["feature"]: row["limit"] for row in body["plan"]["limits"]}
    assert limits["alerts"] == 100
    assert body["current_period_end"] is not None
    assert _usage(body["usage"])["ai_queries"] == (1000, 0, 1000)


def test_plans_on_offer(api_a):
    plans = api_a.get("/api/v1/billing/plans/").json()
    assert [p["code"] for p in plans] == ["free", "pro", "enterprise"]
    enterprise = {row["feature"]: row["limit"] for row in plans[2]["limits"]}
    assert enterprise["alerts"] is None


def test_invoices_list_and_get(api_a, api_b, user_a, user_b):
    now = timezone.now()
    with tenant(user_a.pk):
        older = InvoiceFactory(user=user_a, created_at=now - timedelta(days=31))
        newer = InvoiceFactory(user=user_a, created_at=now)
        InvoiceFactory(user=user_a, status="draft")  # drafts are not shown
    with tenant(user_b.pk):
        theirs = InvoiceFactory(user=user_b)
    rows = results(api_a.get("/api/v1/billing/invoices/"))
    assert [r["number"] for r in rows] == [newer.number, older.number]
    got = api_a.get(f"/api/v1/billing/invoices/{older.pk}/")
    assert got.status_code == 200 and got.json()["total"] == "29.000"
    problem(api_a.get(f"/api/v1/billing/invoices/{theirs.pk}/"), 404)
    assert api_b.get(f"/api/v1/billing/invoices/{theirs.pk}/").status_code == 200


def test_account_usage_this_month(api_a, user_a):
    with tenant(user_a.pk):
        for _ in range(3):
            UsageRecordFactory(user=user_a)
    body = api_a.get("/api/v1/accounts/me/usage/").json()
    assert body["plan"] == "free"
    assert body["ai_queries"] == {"included": 25, "used": 3, "remaining": 22}
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert body["period_start"].startswith(start.date().isoformat())
    assert body["period_end"] > body["period_start"]
    assert {r["feature"] for r in body["features"]} >= {"alerts", "bots", "ai_queries"}


def test_unauthenticated_is_401(client):
    for url in ["/api/v1/billing/", "/api/v1/billing/usage/", "/api/v1/accounts/me/usage/"]:
        response = client.get(url)
        assert response.status_code == 401
        assert response["Content-Type"].startswith("application/problem+json")


def test_billing_is_read_only(api_a):
    for url in ["/api/v1/billing/", "/api/v1/billing/plans/", "/api/v1/billing/invoices/"]:
        problem(api_a.post(url, {}, content_type="application/json"), 405)


def test_invoice_links_are_urls_or_null(api_a, user_a):
    with tenant(user_a.pk):
        linked = InvoiceFactory(
            user=user_a,
            hosted_invoice_url="https://invoice.stripe.com/i/acct_1/test",
            invoice_pdf="https://pay.stripe.com/invoice/acct_1/test/pdf",
        )
        bare = InvoiceFactory(user=user_a)
    got = api_a.get(f"/api/v1/billing/invoices/{linked.pk}/").json()
    assert got["hosted_invoice_url"] == "https://invoice.stripe.com/i/acct_1/test"
    assert got["invoice_pdf"].endswith("/pdf")
    bare_json = api_a.get(f"/api/v1/billing/invoices/{bare.pk}/").json()
    assert (bare_json["hosted_invoice_url"], bare_json["invoice_pdf"]) == (None, None)
