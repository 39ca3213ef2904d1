"""Plan limits enforced on the server: the service (which every gated create goes through), the API rate
limit, the template tags, and concurrent use at the limit."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from billing.choices import SubscriptionStatus
from billing.models import Subscription, UsageRecord
from billing.selectors import entitlement_remaining, entitlement_summary, usage_counters, user_plan
from billing.services import (
    PlanLimitExceeded,
    entitlement_check,
    entitlement_consume,
    entitlement_counter_register,
)
from core.rls import tenant
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def counters():
    """Register counters for features other apps own, as their AppConfig.ready() would."""
    saved = dict(usage_counters)
    counts: dict[str, int] = {"bots": 0, "alerts": 0}
    entitlement_counter_register(feature="bots", counter=lambda user: counts["bots"])
    entitlement_counter_register(feature="alerts", counter=lambda user: counts["alerts"])
    yield counts
    usage_counters.clear()
    usage_counters.update(saved)


def _subscribe(user, plan: str = "pro", status: str = SubscriptionStatus.ACTIVE) -> None:
    with tenant(user.pk):
        Subscription.objects.update_or_create(
            user=user, defaults={"plan": plan, "status": status, "stripe_customer_id": f"cus_{user.pk}"}
        )


def test_a_free_user_over_a_limit_is_refused_with_what_the_plan_allows_and_how_to_upgrade(user_a, counters):
    counters["bots"] = 1
    with pytest.raises(PlanLimitExceeded) as refused:
        entitlement_check(user=user_a, feature="bots")
    assert str(refused.value) == (
        "Your Free plan allows 1 trading bot and you have 1. "
        "Upgrade to Pro for 10 trading bots on the billing page (/billing/)."
    )
    assert refused.value.upgrade.code == "pro"
    counters["bots"] = 0
    assert entitlement_check(user=user_a, feature="bots") == 0


def test_the_upgrade_suggested_is_the_cheapest_plan_that_fits(user_a, counters):
    _subscribe(user_a, "pro")
    counters["bots"] = 10
    with pytest.raises(PlanLimitExceeded, match="Upgrade to Enterprise for 100 trading bots"):
        entitlement_check(user=user_a, feature="bots")
    _subscribe(user_a, "enterprise")
    counters["bots"] = 100
    with pytest.raises(PlanLimitExceeded, match="Contact support to raise this limit"):
        entitlement_check(user=user_a, feature="bots")
    assert entitlement_check(user=user_a, feature="alerts", increment=10_000) is None  # unlimited


def test_ai_queries_are_counted_once_per_key_and_per_month(user_a):
    last_month = datetime(2020, 1, 31, 23, 59, tzinfo=UTC)
    entitlement_consume(user=user_a, idempotency_key="old", now=last_month)
    for n in range(24):
        entitlement_consume(user=user_a, idempotency_key=f"msg-{n}")
    assert entitlement_consume(user=user_a, idempotency_key="msg-0") == 1  # a retry counts nothing
    assert entitlement_remaining(user=user_a, feature="ai_queries") == 1
    assert entitlement_consume(user=user_a, idempotency_key="msg-24") == 0
    with pytest.raises(PlanLimitExceeded) as refused:
        entitlement_consume(user=user_a, idempotency_key="msg-25")
    assert str(refused.value) == (
        "Your Free plan allows 25 AI queries a month and you have used 25 this month. "
        "Upgrade to Pro for 1,000 AI queries a month on the billing page (/billing/)."
    )
    with tenant(user_a.pk):
        assert UsageRecord.objects.filter(user=user_a).count() == 26
        assert not UsageRecord.objects.filter(billable=True).exists()  # Free usage is never billed


def test_paid_usage_is_marked_billable_and_a_trial_counts_as_paid(user_a):
    _subscribe(user_a, "pro", SubscriptionStatus.TRIALING)
    entitlement_consume(user=user_a, idempotency_key="trial-1")
    with tenant(user_a.pk):
        assert UsageRecord.objects.get(user=user_a).billable is True
    assert user_plan(user=user_a).code == "pro"


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_concurrent_uses_at_the_limit_let_exactly_one_through():
    user = UserFactory()
    for n in range(24):
        entitlement_consume(user=user, idempotency_key=f"pre-{n}")
    barrier, results = threading.Barrier(6), []

    def attempt(n: int) -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                entitlement_consume(user=user, idempotency_key=f"race-{n}")
            results.append("ok")
        except PlanLimitExceeded:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok"] + ["refused"] * 5
    with tenant(user.pk):
        assert UsageRecord.objects.filter(user=user).count() == 25


def test_api_requests_per_minute_follow_the_plan(client, user_a, user_b):
    client.login(email=user_a.email, password=DEFAULT_PASSWORD)
    statuses = [client.get("/api/v1/accounts/me/").status_code for _ in range(61)]
    assert statuses[:60] == [200] * 60
    assert statuses[60] == 429
    refused = client.get("/api/v1/accounts/me/")
    assert refused["Content-Type"] == "application/problem+json" and int(refused["Retry-After"]) > 0

    _subscribe(user_b, "pro")
    client.logout()
    client.login(email=user_b.email, password=DEFAULT_PASSWORD)
    assert all(client.get("/api/v1/accounts/me/").status_code == 200 for _ in range(61))


def test_template_tags(user_a, counters):
    counters["bots"] = 1
    request = RequestFactory().get("/")
    request.user = user_a
    template = Template(
        "{% load billing %}{% user_plan as plan %}{% entitlement_remaining 'bots' as bots %}"
        "{% entitlement_remaining 'alerts' as alerts %}{% entitlement_allows 'bots' as can_add %}"
        "{{ plan.name }}|{{ bots }}|{{ alerts }}|{{ can_add }}|{{ plan.limits.alerts|limit_display }}"
    )
    assert template.render(Context({"request": request})) == "Free|0|5|False|5"
    _subscribe(user_a, "enterprise")
    assert template.render(Context({"request": request})) == "Enterprise|99|None|True|Unlimited"


def test_summary_lists_every_limit_with_usage(user_a, counters):
    counters["bots"] = 1
    entitlement_consume(user=user_a, idempotency_key="s-1")
    summary = {row.feature: (row.used, row.limit, row.exhausted) for row in entitlement_summary(user=user_a)}
    assert summary == {
        "bots": (1, 1, True),
        "alerts": (0, 5, False),
        "exchange_connections": (0, 1, False),
        "ai_queries": (1, 25, False),
        "api_requests_per_minute": (None, 60, False),
        "automation_rules": (0, 3, False),
        "webhook_triggers": (0, 1, False),
        "newsletter_issues": (0, 0, True),
        "newsletter_recipients": (None, 0, False),
        "published_notes": (0, 3, False),
    }


def test_the_summary_counts_in_one_block_of_the_callers_transaction(user_a):
    """Inside a request's transaction every tenant() block is a savepoint (two round trips): the summary's
    counts (bots, alerts, connections, AI queries, rules ...) share one, and still see only this user."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic(), tenant(user_a.pk), CaptureQueriesContext(connection) as captured:
        summary = {row.feature: row.used for row in entitlement_summary(user=user_a)}
    statements = [query["sql"] for query in captured.captured_queries]
    counts = [n for n, sql in enumerate(statements) if sql.startswith(("SELECT COUNT(*)", "SELECT SUM("))]
    assert len(counts) >= 5
    between = statements[counts[0] : counts[-1]]
    assert not [sql for sql in between if "SAVEPOINT" in sql]
    assert summary["alerts"] == 0 and summary["ai_queries"] == 0


def test_grace_period_applies_to_reads_without_any_job(user_a, settings):
    settings.BILLING_GRACE_PERIOD_DAYS = 7
    failed = timezone.now() - timezone.timedelta(days=8)
    with tenant(user_a.pk):
        Subscription.objects.create(
            user=user_a,
            plan="pro",
            status=SubscriptionStatus.ACTIVE,
            payment_failed_at=failed,
            failed_payment_times=[int(failed.timestamp())],
        )
    assert user_plan(user=user_a).code == "free"
    assert user_plan(user=user_a, now=failed + timezone.timedelta(days=6)).code == "pro"
