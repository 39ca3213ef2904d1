"""`manage.py seed_demo` on an empty database: the demo trader shows what a paying trader gets."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from billing.choices import PlanCode, SubscriptionStatus
from billing.selectors import subscription_get, user_plan
from core.rls import system_context, tenant
from trading.models import Bot

pytestmark = pytest.mark.django_db


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, stderr=out)
    return out.getvalue()


def test_the_demo_trader_gets_a_pro_trial_and_both_bots_without_alarming_output():
    output = _seed()
    assert "not created" not in output and "allows" not in output
    with system_context(reason="tests: find the demo trader"):
        trader = User.objects.get(email="trader@nexus.demo")
    with tenant(trader.pk):
        assert sorted(Bot.objects.values_list("name", flat=True)) == ["BTC DCA", "BTC trend"]
    assert user_plan(user=trader).code == PlanCode.PRO
    subscription = subscription_get(user=trader)
    assert subscription.status == SubscriptionStatus.TRIALING
    # No Stripe customer or subscription invented: the billing pages offer nothing that would call Stripe.
    assert subscription.stripe_customer_id is None and subscription.stripe_subscription_id == ""
    assert subscription.trial_end - timezone.now() > timedelta(days=13)
    assert "Pro trial" in output

    # Seeding again changes nothing and still says nothing alarming.
    again = _seed()
    assert "not created" not in again
    with tenant(trader.pk):
        assert Bot.objects.count() == 2


def test_the_granted_trial_ends_by_itself_and_the_next_seed_starts_another():
    _seed()
    with system_context(reason="tests: find the demo trader"):
        trader = User.objects.get(email="trader@nexus.demo")
    trial_end = subscription_get(user=trader).trial_end
    assert user_plan(user=trader, now=trial_end - timedelta(minutes=1)).code == PlanCode.PRO
    assert user_plan(user=trader, now=trial_end).code == PlanCode.FREE

    with time_machine.travel(trial_end + timedelta(days=1), tick=False):
        output = _seed()
        assert "not created" not in output
        assert user_plan(user=trader).code == PlanCode.PRO
        assert subscription_get(user=trader).trial_end > trial_end
